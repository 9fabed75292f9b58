"""Train and export the bundled w1a1 BNNs (BNN-PYNQ style) with Brevitas.

Usage: ``python models/train.py --all`` or ``--model NAME``; needs the ``train`` extra.
Accuracy is measured by running each EXPORTED file with qonnx's ``execute_onnx``. The README
table and the command line are ``models/training_common.py``'s, shared with ``train_cnv.py``.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas.export import export_qonnx
from brevitas.inject.enum import RestrictValueType, ScalingImplType, ScalingPerOutputType
from brevitas.nn import QuantIdentity, QuantLinear
from brevitas.quant import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from brevitas.quant.base import IntQuant
from brevitas.quant.solver import ActQuantSolver
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.change_batchsize import ChangeBatchSize
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.util.cleanup import cleanup_model
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bnnhw, not installed
from training_common import (
    HERE,
    SEED,
    VARIANTS,
    check_export,
    cli,
    readme_row,
    readme_table,
)

from bnnhw import datasets

LR = 0.01
FAILURES: list[str] = []


@dataclass(frozen=True)
class Spec:
    """One bundled topology and its training recipe."""

    dataset: str  # "digits" or "mnist"
    input_shape: tuple[int, ...]  # per image, without the batch dimension
    hidden: tuple[int, ...]
    input_bits: tuple[int, ...]
    epochs: int
    batch: int


SPECS = {
    "digits_w1a1": Spec("digits", (1, 8, 8), (64, 64, 64), (1, 8), epochs=60, batch=64),
    "tfc_w1a1": Spec("mnist", (1, 28, 28), (64, 64, 64), (1, 8), epochs=20, batch=100),
    "sfc_w1a1": Spec("mnist", (1, 28, 28), (256, 256, 256), (1,), epochs=15, batch=100),
}


class Int8InputQuant(IntQuant, ActQuantSolver):
    """Signed 8-bit input quantizer with the constant scale 1/128 = 2^-7 (zero point 0)."""

    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    scaling_per_output_type = ScalingPerOutputType.TENSOR
    bit_width = 8
    min_val = -1.0
    max_val = 1.0  # scale = max_val / 2^(bit_width - 1)


class TensorNorm(nn.Module):
    """FINN's TensorNorm, a scalar batch norm: (x - mean) / sqrt(var + eps) * weight + bias."""

    def __init__(self, eps: float = 1e-4, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))
        self.register_buffer("running_mean", torch.zeros(1))
        self.register_buffer("running_var", torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean, var = x.mean(), x.var()
            with torch.no_grad():
                self.running_mean.lerp_(mean.reshape(1), self.momentum)
                self.running_var.lerp_(var.reshape(1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def binary_act() -> QuantIdentity:
    return QuantIdentity(act_quant=SignedBinaryActPerTensorConst)


def binary_linear(fan_in: int, fan_out: int) -> QuantLinear:
    binary = {"weight_quant": SignedBinaryWeightPerTensorConst, "weight_scaling_const": 1.0}
    return QuantLinear(fan_in, fan_out, bias=False, **binary)


class FC(nn.Module):
    """Flatten, [2x-1], input quant, (QuantLinear, BatchNorm1d, sign)*, QuantLinear, TensorNorm."""

    def __init__(self, fan_in: int, hidden: tuple[int, ...], classes: int, in_bits: int) -> None:
        super().__init__()
        self.in_bits = in_bits
        self.input_quant = QuantIdentity(act_quant=Int8InputQuant) if in_bits == 8 else binary_act()
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [binary_linear(fan_in, width), nn.BatchNorm1d(width), binary_act()]
            fan_in = width
        self.features = nn.Sequential(*layers, binary_linear(fan_in, classes), TensorNorm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        if self.in_bits == 1:
            x = 2.0 * x - 1.0  # FINN's bipolar input: pixel >= 0.5 -> +1
        return self.features(self.input_quant(x))


def load_data(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float32 images (N, C, H, W) in [0, 1] and labels, exactly as bnnhw.datasets gives them."""
    if dataset == "digits":
        return datasets.load_digits_split(seed=SEED)
    folder = datasets.default_mnist_folder()
    if folder is None:
        sys.exit("no MNIST folder: put it at ../shared/data/mnist or set BNNHW_MNIST")
    x_train, y_train = datasets.load_mnist(folder, "train")
    x_test, y_test = datasets.load_mnist(folder, "test")
    return datasets.mnist_to_float(x_train), y_train, datasets.mnist_to_float(x_test), y_test


def train(model: FC, spec: Spec, x: np.ndarray, y: np.ndarray) -> None:
    """Adam + cosine learning-rate decay, cross-entropy on the TensorNorm output."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    steps_per_epoch = math.ceil(len(x) / spec.batch)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=spec.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(SEED)
    tn_weight = model.features[-1].weight
    for epoch in range(spec.epochs):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=gen).split(spec.batch):
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tn_weight.data.clamp_(min=1e-3)  # one positive output scale for every class
            total += loss.item() * len(idx)
        print(f"    epoch {epoch + 1}/{spec.epochs} loss {total / len(x):.4f}", flush=True)


def export(model: FC, spec: Spec, variant: str, path: Path) -> None:
    """export_qonnx with a (1, C, H, W) input; re-saved so every weight is inside the file."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmp_path = Path(tmp) / path.name
        dummy = torch.zeros(1, *spec.input_shape)
        export_qonnx(
            model, dummy, export_path=str(tmp_path), dynamo=variant == "dynamo", verbose=False
        )
        proto = onnx.load(str(tmp_path))  # pulls in a .onnx.data file if the exporter wrote one
    for node in proto.graph.node:  # dynamo's stack traces hold this file's path and line numbers
        kept = [m for m in node.metadata_props if m.key != "pkg.torch.onnx.stack_trace"]
        node.ClearField("metadata_props")
        node.metadata_props.extend(kept)
    onnx.save(proto, str(path))
    path.with_name(path.name + ".data").unlink(missing_ok=True)
    inits = onnx.load(str(path), load_external_data=False).graph.initializer
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in inits), f"{path}: external"


def qonnx_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """Run the exported file with qonnx (cleanup_model, then the whole set as one batch)."""
    model = cleanup_model(ModelWrapper(str(path)))
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    singles = [execute_onnx(model, {iname: x[i : i + 1]})[oname] for i in range(4)]
    batched = model.transform(ChangeBatchSize(len(x))).transform(InferShapes())
    out = execute_onnx(batched, {iname: x})[oname]
    assert np.array_equal(np.concatenate(singles), out[:4]), f"{path}: batching changed outputs"
    return out


def run(name: str) -> list[dict[str, str]]:
    """Train every input variant of one topology, export both ways, evaluate; return README rows."""
    spec = SPECS[name]
    x_train, y_train, x_test, y_test = load_data(spec.dataset)
    topology = "-".join(map(str, (math.prod(spec.input_shape), *spec.hidden, 10)))
    rows = []
    for bits in spec.input_bits:
        torch.manual_seed(SEED)
        np.random.seed(SEED)
        model = FC(math.prod(spec.input_shape), spec.hidden, 10, bits)
        print(f"{name} in{bits}: {spec.epochs} epochs, {len(x_train)} images", flush=True)
        start = time.perf_counter()
        train(model, spec, x_train, y_train)
        minutes = (time.perf_counter() - start) / 60
        with torch.no_grad():
            ref = model.eval()(torch.from_numpy(x_test)).numpy()
        torch_acc = float(np.mean(ref.argmax(1) == y_test))
        for variant in VARIANTS:
            path = HERE / f"{name}_in{bits}_{variant}.onnx"
            export(model, spec, variant, path)
            out = qonnx_outputs(path, x_test)
            acc = float(np.mean(out.argmax(1) == y_test))
            check_export(path, out, ref, acc, torch_acc, FAILURES)
            command = f"python models/train.py --model {name}"
            rows.append(readme_row(path, spec, topology, bits, (acc, torch_acc), minutes, command))
    return rows


README = """# Bundled models

Written by `models/train.py` (Brevitas {brevitas}, torch {torch}, 1 CPU thread):

    pip install -e '.[train]'
    python models/train.py --all      # every file below, ~{total} min of training

"test acc. (QONNX exec)" runs the exported file with `qonnx.core.onnx_exec.execute_onnx`
after `qonnx.util.cleanup.cleanup_model`; "PyTorch" is the trained module in eval mode.
Each dynamo/classic pair holds one trained network; the time is its training loop.

{table}

- Topology (BNN-PYNQ w1a1): `QuantLinear(bias=False, SignedBinaryWeightPerTensorConst,
  scale 1.0)`, `BatchNorm1d`, `QuantIdentity(SignedBinaryActPerTensorConst)` (+-1, scale
  1.0) per hidden layer; the last `QuantLinear` feeds FINN's TensorNorm (scalar
  Sub, Div, Mul, Add with weight > 0: one positive scale for every class).
- Input: float32 in [0, 1], graph input (1, 1, 8, 8) for digits, (1, 1, 28, 28) for MNIST,
  flattened in the graph. in1: `2x - 1` (Mul, Sub) then `BipolarQuant` (+1 where x >= 0.5).
  in8: `Quant(x, 2^-7, 0, 8, signed=1, narrow=0)` on x: q = clip(round(128 x), -128, 127).
- Data (`bnnhw.datasets`): digits = `load_digits_split(seed=0)`, pixels / 16, 1,438 train /
  359 test; MNIST = 60,000 / 10,000 IDX splits from `../shared/data/mnist` (or
  `$BNNHW_MNIST`), pixels / 255.
- Training: Adam, lr {lr}, cosine decay to 0 over all steps, cross-entropy,
  batch {batch}, no dropout or augmentation,
  seed 0 (`torch.manual_seed`, shuffling generator); reruns give byte-identical files.
- Export: `export_qonnx(model, torch.zeros(1, C, H, W), export_path=..., dynamo=True|False)`,
  then `onnx.load` + `onnx.save` so every weight is embedded (no `.onnx.data`), dropping
  only the dynamo nodes' `pkg.torch.onnx.stack_trace` metadata (paths, line numbers). dynamo:
  Reshape to (1, N), Gemm transB=1. classic: Flatten, Transpose + MatMul. Both list the
  initializers as graph inputs too, and one 1.0 scale initializer feeds every BipolarQuant.
"""


def write_readme(rows: list[dict[str, str]]) -> None:
    """Rewrite models/README.md; rows of models not retrained this time are kept."""
    import brevitas

    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else ""
    marker = text.find("<!-- train_cnv.py: begin -->")
    tail = "\n" + text[marker:] if marker >= 0 else ""  # train_cnv.py's section, kept as is
    table, minutes, batch = readme_table(SPECS, rows, text[: marker if marker >= 0 else None])
    readme.write_text(README.format(
        brevitas=brevitas.__version__, torch=torch.__version__, total=f"{minutes:.0f}",
        table=table, lr=LR, batch=batch,
    ) + tail)  # fmt: skip


def main() -> None:
    cli(SPECS, run, write_readme, FAILURES)


if __name__ == "__main__":
    main()

"""Train and export the bundled convolutional w1a1 BNNs (BNN-PYNQ CNV style) with Brevitas.

Usage: ``python models/train_cnv.py --all`` or ``--model NAME``; needs the ``train`` extra.
Shares quantizers, the TensorNorm head, data loading, the training loop, the export and the
QONNX check with ``models/train.py``, and the README table and command line with
``models/training_common.py``. Accuracy is measured by running each EXPORTED file with
qonnx's ``execute_onnx``. Rewrites only its own section of ``models/README.md``.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from brevitas.nn import QuantConv2d, QuantIdentity
from brevitas.quant import SignedBinaryWeightPerTensorConst
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import training_common as common  # noqa: E402
from train import (  # noqa: E402
    Int8InputQuant,
    TensorNorm,
    binary_act,
    binary_linear,
    export,
    load_data,
    qonnx_outputs,
    train,
)

FAILURES: list[str] = []


@dataclass(frozen=True)
class Conv:
    """A 3x3 stride-1 binary convolution, optionally followed by a 2x2 max pool."""

    channels: int
    padding: int  # 0 or 1
    pool: bool = False


@dataclass(frozen=True)
class CnvSpec:
    """One bundled convolutional topology and its training recipe (duck-types train.Spec)."""

    dataset: str  # "digits" or "mnist"
    input_shape: tuple[int, ...]  # (C, H, W), without the batch dimension
    convs: tuple[Conv, ...]
    hidden: tuple[int, ...]
    input_bits: tuple[int, ...]
    epochs: int
    batch: int

    def conv_output_shape(self) -> tuple[int, int, int]:
        """(C, H, W) after the last conv / pool stage, i.e. before the flatten."""
        channels, height, width = self.input_shape
        for conv in self.convs:
            channels = conv.channels
            height, width = height + 2 * conv.padding - 2, width + 2 * conv.padding - 2
            if conv.pool:
                height, width = height // 2, width // 2
        return channels, height, width

    def topology(self) -> str:
        """e.g. 1x8x8-16C3-16C3-MP2-64-64-10: C3p1 is a 3x3 conv with padding 1, then the
        flattened width, the hidden widths and the 10 classes."""
        parts = ["x".join(map(str, self.input_shape))]
        for conv in self.convs:
            parts.append(f"{conv.channels}C3" + ("p1" if conv.padding else ""))
            parts += ["MP2"] if conv.pool else []
        dense = (math.prod(self.conv_output_shape()), *self.hidden, 10)
        return "-".join([*parts, *map(str, dense)])


SPECS = {
    "cnv_digits_nopad_w1a1": CnvSpec(
        "digits", (1, 8, 8), (Conv(16, 0), Conv(16, 0, pool=True)), (64,), (1,), 60, 64
    ),
    "cnv_digits_pad_w1a1": CnvSpec(
        "digits", (1, 8, 8), (Conv(16, 1, pool=True), Conv(32, 1, pool=True)), (64,), (8,), 60, 64
    ),
    "cnv_mnist_pad_w1a1": CnvSpec(
        "mnist", (1, 28, 28), (Conv(16, 1, pool=True), Conv(32, 1, pool=True)), (64,), (1,), 5, 100
    ),
    "cnv_mnist_nopad_w1a1": CnvSpec(
        "mnist", (1, 28, 28), (Conv(16, 0, pool=True), Conv(32, 0, pool=True)), (64,), (8,), 4, 100
    ),
}


def binary_conv(in_channels: int, out_channels: int, padding: int) -> QuantConv2d:
    binary = {"weight_quant": SignedBinaryWeightPerTensorConst, "weight_scaling_const": 1.0}
    return QuantConv2d(in_channels, out_channels, 3, padding=padding, bias=False, **binary)


class CNV(nn.Module):
    """[2x-1], input quant, (QuantConv2d, BatchNorm2d, sign[, MaxPool2d])*, flatten,
    (QuantLinear, BatchNorm1d, sign)*, QuantLinear, TensorNorm (last of ``features``)."""

    def __init__(self, spec: CnvSpec, classes: int, in_bits: int) -> None:
        super().__init__()
        self.in_bits = in_bits
        self.input_quant = QuantIdentity(act_quant=Int8InputQuant) if in_bits == 8 else binary_act()
        layers: list[nn.Module] = []
        channels = spec.input_shape[0]
        for conv in spec.convs:
            layers += [binary_conv(channels, conv.channels, conv.padding)]
            layers += [nn.BatchNorm2d(conv.channels), binary_act()]
            layers += [nn.MaxPool2d(2)] if conv.pool else []
            channels = conv.channels
        layers.append(nn.Flatten())
        fan_in = math.prod(spec.conv_output_shape())
        for width in spec.hidden:
            layers += [binary_linear(fan_in, width), nn.BatchNorm1d(width), binary_act()]
            fan_in = width
        self.features = nn.Sequential(*layers, binary_linear(fan_in, classes), TensorNorm())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_bits == 1:
            x = 2.0 * x - 1.0  # FINN's bipolar input: pixel >= 0.5 -> +1
        return self.features(self.input_quant(x))


def build(name: str, bits: int) -> CNV:
    """The untrained network, seeded like every other bundled model."""
    torch.manual_seed(common.SEED)
    np.random.seed(common.SEED)
    return CNV(SPECS[name], 10, bits)


def export_checked(
    model: CNV, name: str, bits: int, spec: CnvSpec, folder: Path, x: np.ndarray, y: np.ndarray
) -> list[tuple[Path, float, np.ndarray]]:
    """Export both variants to ``folder``; (path, QONNX accuracy, QONNX outputs) per file."""
    results = []
    for variant in common.VARIANTS:
        path = folder / f"{name}_in{bits}_{variant}.onnx"
        export(model, spec, variant, path)
        out = qonnx_outputs(path, x)
        results.append((path, float(np.mean(out.argmax(1) == y)), out))
    return results


def run(name: str) -> list[dict[str, str]]:
    """Train every input variant of one topology, export both ways, evaluate; return README rows."""
    spec = SPECS[name]
    x_train, y_train, x_test, y_test = load_data(spec.dataset)
    rows = []
    for bits in spec.input_bits:
        model = build(name, bits)
        print(f"{name} in{bits}: {spec.epochs} epochs, {len(x_train)} images", flush=True)
        start = time.process_time()  # CPU time: wall time depends on other jobs
        train(model, spec, x_train, y_train)
        minutes = (time.process_time() - start) / 60
        with torch.no_grad():
            ref = model.eval()(torch.from_numpy(x_test)).numpy()
        torch_acc = float(np.mean(ref.argmax(1) == y_test))
        for path, acc, out in export_checked(model, name, bits, spec, HERE, x_test, y_test):
            common.check_export(path, out, ref, acc, torch_acc, FAILURES)
            command = f"python models/train_cnv.py --model {name}"
            rows.append(
                common.readme_row(
                    path, spec, spec.topology(), bits, (acc, torch_acc), minutes, command
                )
            )
    return rows


BEGIN, END = "<!-- train_cnv.py: begin -->", "<!-- train_cnv.py: end -->"

SECTION = """{begin}
## Convolutional models (CNV style)

Written by `models/train_cnv.py` (Brevitas {brevitas}, torch {torch}, 1 CPU thread), which
reuses the quantizers, TensorNorm, data, training loop, export and QONNX check of `train.py`:

    python models/train_cnv.py --all      # every file below, ~{total} min of training

"training time" here is the CPU (process) time of the training loop: the wall time is longer
on a shared machine; exporting and the QONNX runs add well under a minute (CPU) per model.

{table}

- Topology: per conv stage `QuantConv2d(k=3, stride 1, padding 0 or 1 (p1), bias=False,
  SignedBinaryWeightPerTensorConst, scale 1.0)`, `BatchNorm2d`,
  `QuantIdentity(SignedBinaryActPerTensorConst)`, then `MaxPool2d(2)` (MP2: kernel 2,
  stride 2, no padding, floor) AFTER the sign where the topology says so; `nn.Flatten()`
  (C, H, W order) into the dense part, which is built like the MLPs above (hidden
  `QuantLinear` + `BatchNorm1d` + sign, last `QuantLinear` + TensorNorm). The number after
  the last stage is the flattened width. Padding is zero padding: a padded conv sees 0
  (neither +1 nor -1) outside the image.
- Input, data, optimiser, learning rate and export: as for the MLPs (above); the graph input
  (1, 1, H, W) is NOT flattened; batch {batch}.
- Exported nodes, in graph order (no Pad, Transpose on activations or Constant nodes; every
  BipolarQuant shares one scale-1.0 initializer): in1 `Mul, Sub` (2x - 1), `BipolarQuant`;
  in8 `Quant` (scale 2^-7, zero point 0, 8 bits, signed, narrow 0). Per conv stage
  `BipolarQuant` (weights), `Conv` (kernel 3x3, strides 1, dilations 1, group 1, pads
  [0,0,0,0] or [1,1,1,1], no bias input), `BatchNormalization`, `BipolarQuant`, then `MaxPool`
  (kernel 2x2, strides 2, pads 0, ceil_mode 0) reading the BipolarQuant output. Then dynamo:
  `Reshape` to the constant shape (1, N) (allowzero 1), `Gemm` transB=1; classic: `Flatten`
  axis 1, `Transpose` (of the binarized weight) + `MatMul`. Dense layers as above, then the
  TensorNorm `Sub, Div, Mul, Add`.
{end}
"""


def write_readme(rows: list[dict[str, str]]) -> None:
    """Replace (or append) this script's section of models/README.md; other rows are kept."""
    import brevitas

    readme = HERE / "README.md"
    text = readme.read_text() if readme.exists() else "# Bundled models\n"
    before, _, rest = text.partition(BEGIN)
    old, _, after = rest.partition(END)
    table, minutes, batch = common.readme_table(SPECS, rows, old)
    section = SECTION.format(
        begin=BEGIN, end=END, brevitas=brevitas.__version__, torch=torch.__version__,
        total=f"{minutes:.0f}", table=table, batch=batch,
    )  # fmt: skip
    before = before.rstrip("\n") + "\n\n"
    readme.write_text(before + section + after.lstrip("\n"))


def main() -> None:
    common.cli(SPECS, run, write_readme, FAILURES)


if __name__ == "__main__":
    main()

"""Test vectors shared by every simulator: the words that go in, what must come out.

One ``.npz`` of NumPy arrays plus a small JSON header beside it. A bench running inside a
simulator reads them with NumPy alone, so it never imports the compiler or Amaranth, and
every simulator checks exactly the same frames against exactly the same golden values.

Wide words are stored as little-endian byte rows (``uint8``), since NumPy has no integer
type wider than 64 bits and input words or output words often are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bnnhw.port_format import PortFormat, unpack_fields
from bnnhw.sim.header import FORMAT, Header, LayerHeader

if TYPE_CHECKING:
    from bnnhw.build import Build
    from bnnhw.ir import InputSpec


def header_path(path: str | Path) -> Path:
    """The JSON header that sits beside a vectors ``.npz``."""
    return Path(path).with_suffix(".json")


def to_bytes(values: list[int], bits: int) -> np.ndarray:
    """Python ints -> (len, ceil(bits/8)) little-endian uint8 rows."""
    nbytes = max(1, (bits + 7) // 8)
    data = b"".join(v.to_bytes(nbytes, "little") for v in values)
    return np.frombuffer(data, np.uint8).reshape(len(values), nbytes).copy()


def pack_words(fmt: PortFormat, codes: np.ndarray) -> np.ndarray:
    """Input codes (N, input_elements) -> uint8 (N, frame_words, in_bytes), little-endian.

    The same words as ``fmt.pack_frames`` then ``to_bytes``, with array operations: that
    path spends seconds in Python ints on a test split of 784-word frames.
    """
    codes = np.asarray(codes, dtype=np.int64)
    n, bits = len(codes), fmt.input_bits
    # bit b of element e (two's complement) is bit e * bits + b of the frame
    planes = ((codes[:, :, None] >> np.arange(bits)) & 1).reshape(n, -1)
    sent = np.zeros((n, fmt.sent_bits), np.uint8)  # the last word zero-padded at the top
    sent[:, : fmt.frame_bits] = planes
    frame = sent.reshape(n, fmt.frame_words, fmt.in_word)
    nbytes = max(1, (fmt.in_word + 7) // 8)
    padded = np.zeros((n, fmt.frame_words, 8 * nbytes), np.uint8)
    padded[:, :, : fmt.in_word] = frame
    return np.packbits(padded, axis=-1, bitorder="little")


def from_bytes(row: np.ndarray) -> int:
    return int.from_bytes(np.ascontiguousarray(row, np.uint8).tobytes(), "little")


@dataclass
class Vectors:
    """Inputs and golden outputs of ``frames`` frames for one build."""

    header: Header
    words: np.ndarray  # uint8 (N, frame_words, in_bytes): the input words of each frame
    expected: np.ndarray  # uint8 (N, out_bytes): the output word each frame must produce
    classes: np.ndarray  # int64 (N,)
    scores: np.ndarray  # int64 (N, classes)
    layers: list[np.ndarray]  # per layer: bits uint8 (N, out_size), last layer scores int64

    @property
    def frames(self) -> int:
        return len(self.classes)

    def frame_words(self, n: int) -> list[int]:
        return [from_bytes(w) for w in self.words[n]]

    def expected_word(self, n: int) -> int:
        return from_bytes(self.expected[n])

    @property
    def port_format(self) -> PortFormat:
        return self.header.port_format

    def layer_beats(self, k: int) -> int:
        """Beats layer ``k`` sends per frame: 1, or a convolution's output pixels."""
        return self.header.layers[k].beats

    def decode_layer(self, k: int, payloads: list[int]) -> np.ndarray:
        """One frame of a layer's ``o__payload`` beats -> its bits or signed scores.

        A convolution sends a pixel (``neurons`` channel bits) per beat, in stream order,
        so the frame's bits are the beats' bits one after another.
        """
        layer = self.header.layers[k]
        if layer.score_bits is not None:
            return np.array(
                unpack_fields(payloads[0], layer.score_bits, layer.neurons, signed=True)
            )
        n, nbytes = layer.neurons, (layer.neurons + 7) // 8
        raw = np.frombuffer(b"".join(p.to_bytes(nbytes, "little") for p in payloads), np.uint8)
        bits = np.unpackbits(raw.reshape(len(payloads), nbytes), axis=1, bitorder="little")
        return bits[:, :n].reshape(-1)

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.npz) and its JSON header; returns the .npz path."""
        path = Path(path).with_suffix(".npz")
        arrays = {"words": self.words, "expected": self.expected}
        arrays |= {"classes": self.classes, "scores": self.scores}
        arrays |= {f"layer{k}": v for k, v in enumerate(self.layers)}
        np.savez_compressed(path, **arrays)
        header_path(path).write_text(json.dumps(self.header.to_json(), indent=1) + "\n")
        return path


def load_vectors(path: str | Path) -> Vectors:
    """Read what :meth:`Vectors.save` wrote."""
    path = Path(path)
    header = json.loads(header_path(path).read_text())
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: vectors format {header.get('format')}, expected {FORMAT}")
    parsed = Header.from_json(header)
    with np.load(path, allow_pickle=False) as z:
        layers = [z[f"layer{k}"] for k in range(len(parsed.layers))]
        return Vectors(parsed, z["words"], z["expected"], z["classes"], z["scores"], layers)


def random_inputs(spec: InputSpec, frames: int, seed: int = 0) -> np.ndarray:
    """Float frames whose codes spread over the whole input code range (seeded).

    Drawn in code space and mapped back through the host's preprocessing when it is
    affine, so an 8-bit input reaches its negative codes too, not only what images give.
    """
    from bnnhw.ir.elementwise import affine_coefficients

    rng = np.random.default_rng(seed)
    lo, hi = spec.code_range
    scale = 1.0 if spec.bits == 1 else spec.scale
    y = rng.uniform((lo - 0.5) * scale, (hi + 0.5) * scale, (frames, spec.size))
    try:
        a, b = affine_coefficients(spec.preprocess, spec.size)
    except ValueError:
        a, b = np.ones(spec.size), np.zeros(spec.size)
    ok = np.isfinite(a) & np.isfinite(b) & (a != 0)
    x = np.where(ok, (y - b) / np.where(ok, a, 1), rng.uniform(-1, 1, y.shape))
    return x.astype(np.float32).reshape(frames, *spec.shape)


#: frames per golden-model call: a CNV's whole test split at once makes gigabyte-sized
#: im2col temporaries and runs several times slower than in blocks that stay in cache
GOLDEN_BLOCK = 256


def _layer_outputs(net, x: np.ndarray) -> list[np.ndarray]:
    """``golden.layer_outputs`` block by block, on a thread per core (NumPy drops the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from bnnhw import golden

    blocks = [x[i : i + GOLDEN_BLOCK] for i in range(0, len(x), GOLDEN_BLOCK)]
    if len(blocks) == 1:
        return golden.layer_outputs(net, x)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        parts = list(pool.map(lambda block: golden.layer_outputs(net, block), blocks))
    return [np.concatenate(layer) for layer in zip(*parts, strict=True)]


def make_vectors(
    build: Build, x: np.ndarray | None = None, *, frames: int = 100, seed: int = 0
) -> Vectors:
    """Vectors for ``build`` from float frames ``x``, or ``frames`` random ones."""
    from bnnhw import golden
    from bnnhw.errors import InputError
    from bnnhw.reports import HardwareSummary

    net, hardware = build.net, HardwareSummary.from_report(build.report)
    source = "inputs"
    if x is None:
        x, source = random_inputs(net.input, frames, seed), f"random(seed={seed})"
    x = golden.check_inputs(net.input, x)
    if len(x) == 0:
        raise InputError("no frames to simulate")
    outputs = _layer_outputs(net, x)
    codes, hidden, scores = outputs[0], outputs[1:-1], outputs[-1].astype(np.int64)
    classes = np.argmax(scores, axis=1).astype(np.int64)
    fmt = build.port_format()
    words = pack_words(fmt, codes)
    results = [fmt.pack_result(c, s.tolist()) for c, s in zip(classes, scores, strict=True)]
    expected = to_bytes(results, fmt.out_word)
    last = len(net.layers) - 1
    layers = tuple(
        LayerHeader(
            name=layer.name,
            neurons=layer.neurons,
            beats=hw.out_beats,
            cycles_per_frame=hw.cycles_per_frame,
            score_bits=fmt.score_bits if k == last else None,
        )
        for k, (layer, hw) in enumerate(zip(net.layers, hardware.layers, strict=True))
    )
    header = Header(
        top=build.top,
        model=str(build.model),
        frames=len(classes),
        source=source,
        port_format=fmt,
        initiation_interval=hardware.initiation_interval,
        latency_cycles=hardware.latency_cycles,
        layers=layers,
    )
    layer_values = [bits.astype(np.uint8) for bits in hidden] + [scores]
    return Vectors(header, words, expected, classes, scores, layer_values)


def compare(vectors: Vectors, run, *, visible_layers: bool, vcd: str | None = None) -> dict:
    """Check a bench run frame by frame: the output word and each layer's output.

    ``run`` has ``order`` (frame indices streamed), ``outputs`` (output words) and
    ``layer_outputs`` (each layer's raw payloads, in order). A frame is bad if its output
    word or any visible layer output differs; the first bad frame is localised to the first
    layer whose output differs, with the neurons that do.
    """
    bad, per_layer = [], [0] * len(vectors.layers)
    for pos, frame in enumerate(run.order):
        top_ok = pos < len(run.outputs) and run.outputs[pos] == vectors.expected_word(frame)
        layers_ok = True
        for k, outs in enumerate(run.layer_outputs if visible_layers else []):
            if _layer_diff(vectors, k, outs, pos, frame) is not None:
                per_layer[k] += 1
                layers_ok = False
        if not (top_ok and layers_ok):
            bad.append(pos)
    names = [layer.name for layer in vectors.header.layers]
    return {
        "frames": len(run.order),
        "received": len(run.outputs),
        "matched": len(run.order) - len(bad),
        "mismatch_count": len(bad),
        "bad_frames": [run.order[p] for p in bad],
        "layer_mismatches": {n: c for n, c in zip(names, per_layer, strict=True) if c},
        "first_mismatch": _localise(vectors, run, bad[0], visible_layers, vcd) if bad else None,
    }


def _layer_diff(vectors: Vectors, k: int, outs: list[int], pos: int, frame: int):
    """None if layer ``k``'s output at ``pos`` is right, else the differing output indices.

    An index is a neuron for a dense layer and ``pixel * channels + channel`` for a map.
    """
    beats = vectors.layer_beats(k)
    mine = outs[pos * beats : (pos + 1) * beats]
    expected = vectors.layers[k][frame]
    if len(mine) < beats or min(mine) < 0:
        return np.arange(expected.size)
    diff = np.flatnonzero(vectors.decode_layer(k, mine) != expected)
    return diff if diff.size else None


def _localise(vectors: Vectors, run, pos: int, visible_layers: bool, vcd: str | None) -> dict:
    frame = run.order[pos]
    exp_scores = vectors.scores[frame].tolist() if vectors.port_format.with_scores else []
    report = {
        "frame": frame,
        "position": pos,
        "cycle": run.out_cycles[pos] if pos < len(run.out_cycles) else None,
        "time_ns": run.out_times[pos] if pos < len(run.out_times) else None,
        "expected": {"class": int(vectors.classes[frame]), "scores": exp_scores},
        "got": None,
        "stage": "output",
        "layer": None,
        "layer_name": None,
        "neurons": [],
        "neurons_differing": 0,
        "vcd": vcd,
    }
    if pos < len(run.outputs):
        word = run.outputs[pos]
        cls, scores = vectors.port_format.unpack_result(word) if word >= 0 else (None, [])
        report["got"] = {"class": cls, "scores": scores, "raw": None if word >= 0 else "X/Z"}
    else:
        report["stage"] = "missing"
    for k, outs in enumerate(run.layer_outputs if visible_layers else []):
        diff = _layer_diff(vectors, k, outs, pos, frame)
        if diff is not None:
            name = vectors.header.layers[k].name
            report |= {"stage": "layer", "layer": k, "layer_name": name}
            report |= {"neurons": diff[:32].tolist(), "neurons_differing": int(diff.size)}
            report["layer_output_missing"] = pos >= len(outs)
            return report
    if visible_layers and report["stage"] == "output":
        report["stage"] = "argmax"  # every layer was right: the output stage is not
    return report

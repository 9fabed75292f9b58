"""Convolutional models' Verilog against the golden model, on Verilator and Icarus.

The bench taps every layer's output stream (a convolution sends one pixel per beat), so a
mismatch is located to a layer and a pixel/channel; the throughput test checks that the
window generators do not starve the MVTUs (within 5 % of the ideal cycles per frame).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bnnhw import golden
from bnnhw.build import compile_model, load_build
from bnnhw.frontend.reference import ReferenceExecutor
from bnnhw.rtl_gen import to_verilog
from bnnhw.sim import runner
from bnnhw.sim.vectors import make_vectors

from conftest import ROOT, split_frames

# a padded 8-bit-input model (ternary second layer, pools) and an unpadded 1-bit one
MODELS = ("cnv_digits_pad_w1a1_in8_classic", "cnv_digits_nopad_w1a1_in1_dynamo")
# bits of each hidden layer's output map, by hand from the 8x8 digits through the layers:
# pad: 3x3 pad 1 keeps 8x8, pool 2 -> 16 x 4x4; again -> 32 x 2x2; dense 64.
# nopad: 3x3 -> 16 x 6x6; 3x3 -> 4x4, pool 2 -> 16 x 2x2; dense 64.
HAND_MAP_BITS = {MODELS[0]: [16 * 4 * 4, 32 * 2 * 2, 64], MODELS[1]: [16 * 6 * 6, 16 * 2 * 2, 64]}


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Each model compiled once for the module, on first use."""
    cache = {}

    def get(name: str):
        if name not in cache:
            path = ROOT / "models" / f"{name}.onnx"
            cache[name] = compile_model(path, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


def _check(result, frames: int) -> None:
    assert result.mismatches == [], result.mismatches
    assert (result.matched, result.frames) == (frames, frames)
    assert result.cycles_per_frame <= 1.05 * result.ideal


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "simulator"),
    # one Verilator build (minutes in CI) is enough; Icarus compiles in seconds
    [(MODELS[0], "verilator"), (MODELS[0], "icarus"), (MODELS[1], "icarus")],
)
def test_conv_model_matches_golden_under_backpressure(builds, model, simulator):
    build = builds(model)
    path = ROOT / "models" / f"{model}.onnx"
    x, _ = split_frames(path, limit=60)
    x = x.reshape(len(x), *build.net.input.shape)
    vectors = make_vectors(build, x)
    # the classes the hardware must give: qonnx's executor on the ONNX file
    assert np.array_equal(vectors.classes, np.argmax(ReferenceExecutor(path)(x), axis=1))
    # every layer's golden output is a whole map per frame, in stream order
    assert [bits.shape for bits in vectors.layers[:-1]] == [
        (len(x), size) for size in HAND_MAP_BITS[model]
    ]
    result = runner.simulate(build, vectors, simulator=simulator, in_gap=0.2, out_gap=0.2, seed=5)
    _check(result, len(x))


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_conv_mismatch_names_the_layer_and_channel(builds, model, tmp_path):
    """A flipped weight bit in the first convolution shows in that layer's output map,
    at the flipped channel only; the IR (and so the vectors) stay right."""
    shutil.copytree(builds(model).folder, tmp_path / "bad", ignore=shutil.ignore_patterns("sim_*"))
    bad = load_build(tmp_path / "bad")
    x, _ = split_frames(ROOT / "models" / f"{bad.net.name}.onnx", limit=20)
    x = x.reshape(len(x), *bad.net.input.shape)
    vectors = make_vectors(bad, x)
    weights, before = bad.net.layers[0].weights, golden.layer_outputs(bad.net, x)[1]
    for channel, i in np.ndindex(*weights.shape):
        weights[channel, i] ^= 1
        if (golden.layer_outputs(bad.net, x)[1] != before).any():
            break
        weights[channel, i] ^= 1
    bad.verilog.write_text(to_verilog(bad.accelerator(), bad.top))
    result = runner.simulate(bad, vectors, simulator="icarus", tests=("stream",))
    assert not result.ok
    first = result.tests["stream"]["first_mismatch"]
    assert first["stage"] == "layer" and first["layer"] == 0
    channels = weights.shape[0]
    assert first["neurons"] and all(k % channels == channel for k in first["neurons"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "simulator"),
    [(MODELS[0], "icarus"), (MODELS[1], "icarus"), (MODELS[1], "verilator")],
)
def test_ecp5_conv_build_matches_golden_under_backpressure(tmp_path, model, simulator):
    """Built for the ULX3S (read registers) at 256 lanes: the first convolution's line
    buffer is read two columns ahead into registers (both models), the padded model's
    second one too, the unpadded model's second reads its windows from a row buffer with
    its read register; every pool's line buffer is read ahead. Every layer's output
    matches golden under random backpressure."""
    from bnnhw.rtl_gen.window_reader import WindowReader

    path = ROOT / "models" / f"{model}.onnx"
    build = compile_model(path, tmp_path / "b", max_lanes=256, board="ulx3s-85f")
    assert build.read_register
    stages = build.accelerator().stages[:2]
    windows = [stage.window for stage in stages]
    pools = [stage.pool for stage in stages if stage.pool is not None]
    assert pools and all(pool.read_register for pool in pools)
    assert windows[0].reads_ahead
    if model == MODELS[0]:
        assert windows[1].reads_ahead
    else:
        assert isinstance(windows[1], WindowReader) and windows[1].read_register
    x, _ = split_frames(path, limit=30)
    vectors = make_vectors(build, x.reshape(len(x), *build.net.input.shape))
    result = runner.simulate(build, vectors, simulator=simulator, in_gap=0.3, out_gap=0.3, seed=8)
    _check(result, len(x))

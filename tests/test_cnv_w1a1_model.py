"""models/make_cnv_w1a1.py: FINN's CNV-w1a1 topology imports as that topology and is exact."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bnnhw import golden
from bnnhw.frontend import import_onnx
from bnnhw.frontend.reference import ReferenceExecutor
from bnnhw.passes import streamline

from conftest import ROOT


@pytest.fixture(scope="module")
def cnv_path(tmp_path_factory):
    spec = importlib.util.spec_from_file_location(
        "make_cnv_w1a1", ROOT / "models" / "make_cnv_w1a1.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    path = tmp_path_factory.mktemp("cnv") / "cnv_w1a1.onnx"
    import onnx

    onnx.save(module.cnv_w1a1(seed=3), path)
    return path


def test_the_topology_is_finns_cnv_w1a1(cnv_path):
    net = streamline(import_onnx(cnv_path))
    # 64C3-64C3-MP2-128C3-128C3-MP2-256C3-256C3-512-512-10 on 3x32x32, no padding:
    # maps 30, 28 (pooled 14), 12, 10 (pooled 5), 3, 1; fan-ins 3x3 x channels
    assert [la.neurons for la in net.layers] == [64, 64, 128, 128, 256, 256, 512, 512, 10]
    assert [la.fan_in for la in net.layers] == [27, 576, 576, 1152, 1152, 2304, 256, 512, 512]
    sizes = [(la.window.height, la.window.width) for la in net.layers[:6]]
    assert sizes == [(32, 32), (30, 30), (14, 14), (12, 12), (5, 5), (3, 3)]
    assert [la.pool is not None for la in net.layers[:6]] == [0, 1, 0, 1, 0, 0]
    assert net.input.bits == 8


def test_golden_agrees_with_the_reference_executor(cnv_path):
    net = streamline(import_onnx(cnv_path))
    rng = np.random.default_rng(0)
    # random images, and images on the 8-bit quantizer's steps and ends
    x = rng.uniform(-1, 1, (4, 3, 32, 32)).astype(np.float32)
    steps = rng.integers(-128, 128, (2, 3, 32, 32)).astype(np.float32) / 128
    ends = np.stack([np.full((3, 32, 32), -1.0), np.full((3, 32, 32), 127 / 128)])
    x = np.concatenate([x, steps, ends.astype(np.float32)])
    reference = ReferenceExecutor(cnv_path)(x)
    assert golden.predict(net, x).tolist() == reference.argmax(axis=1).tolist()


def test_the_ulx3s_folding_file_takes_10368_cycles_a_frame(cnv_path):
    """``bench/foldings/cnv_w1a1_ulx3s_10k.json``, the folding built for 10,000 frames/s
    on the ULX3S (docs/qor.md): positions x NF x SF per layer, worked out by hand -- layer
    0: 900 x 1 x 9 = 8,100; 1: 784 x 4 x 3 = 9,408; 2: 144 x 8 x 9 = 10,368; 3: 100 x 8 x
    12 = 9,600; 4: 9 x 128 x 9 = 10,368; 5: 256 x 36 = 9,216; 6: 512 x 16 = 8,192; 7: 512
    x 20 = 10,240 (512 inputs in words of 26, the last padded); 8: 10 x 512 = 5,120. At
    115 MHz that is 11,092 frames/s."""
    from bnnhw.passes.folding import fold_explicit, load_folding

    path = ROOT / "bench" / "foldings" / "cnv_w1a1_ulx3s_10k.json"
    net = fold_explicit(streamline(import_onnx(cnv_path)), load_folding(path), str(path))
    cycles = [la.cycles_at(la.pe, la.simd) for la in net.layers]
    assert cycles == [8100, 9408, 10368, 9600, 10368, 9216, 8192, 10240, 5120]
    assert round(115e6 / max(cycles)) == 11_092

"""The fast harness's host side, no simulator: chunks, injected faults, packing."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from bnnhw.port_format import PortFormat
from bnnhw.sim.fast import _chunk_faults, chunks, default_jobs
from bnnhw.sim.vectors import pack_words, to_bytes


def test_chunks_cover_every_frame_once_in_order():
    assert chunks(10, 3) == [(0, 3), (3, 3), (6, 4)]
    assert chunks(10_000, 2) == [(0, 5000), (5000, 5000)]
    assert chunks(2, 4) == [(0, 1), (1, 1)]  # never an empty chunk
    assert chunks(7, 1) == [(0, 7)]


def test_a_fault_lands_in_the_chunk_holding_its_word_or_beat():
    fmt = SimpleNamespace(frame_words=49, out_beats=2)
    faults = {"drop_word": 10 * 49 + 5, "dup_beat": 3}
    # chunk of frames 0-9: words 0-489, beats 0-19
    assert _chunk_faults(faults, 0, 10, fmt) == {"dup_beat": 3}
    # frames 10-19: word 495 is its word 5
    assert _chunk_faults(faults, 10, 10, fmt) == {"drop_word": 5}
    assert _chunk_faults(faults, 20, 10, fmt) == {}


@pytest.mark.parametrize(
    ("elements", "bits", "word"), [(784, 1, 16), (784, 1, 1), (64, 8, 8), (30, 8, 24), (12, 3, 36)]
)
def test_array_packing_matches_the_port_format(elements, bits, word):
    """pack_words against PortFormat.pack_frames (Python ints), on signed random codes."""
    fmt = PortFormat(elements, bits, word, classes=10, class_bits=4, score_bits=8, with_scores=True)
    rng = np.random.default_rng(elements + bits)
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if bits > 1 else (0, 2)
    codes = rng.integers(lo, hi, (5, elements))
    expected = np.stack([to_bytes(f, word) for f in fmt.pack_frames(codes)])
    assert np.array_equal(pack_words(fmt, codes), expected)


def test_golden_values_in_blocks_are_the_whole_batch_values(tmp_path, monkeypatch):
    """make_vectors runs the golden model in blocks on threads: same values as one call."""
    from bnnhw import datasets, golden
    from bnnhw.build import compile_model
    from bnnhw.sim import vectors

    from conftest import ROOT

    build = compile_model(ROOT / "models" / "cnv_digits_pad_w1a1_in8_classic.onnx", tmp_path)
    x = datasets.load_digits_split()[2][:23].reshape(23, *build.net.input.shape)
    monkeypatch.setattr(vectors, "GOLDEN_BLOCK", 5)
    v = vectors.make_vectors(build, x)
    whole = golden.layer_outputs(build.net, x)
    assert np.array_equal(v.scores, whole[-1])
    assert all(np.array_equal(a, b) for a, b in zip(v.layers[:-1], whole[1:-1], strict=True))
    fmt = build.port_format()
    assert np.array_equal(
        v.words, np.stack([to_bytes(f, fmt.in_word) for f in fmt.pack_frames(whole[0])])
    )


def test_icarus_splits_runs_a_verilator_run_would_keep_whole(monkeypatch):
    """200 TFC frames (196 cycles each, 39,200 cycles) are ~10 s of Icarus but ~40 ms of
    Verilator: only Icarus gets a process per core."""
    monkeypatch.delenv("BNNHW_FAST_JOBS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    tfc = SimpleNamespace(
        frames=200,
        header=SimpleNamespace(initiation_interval=196),
        port_format=SimpleNamespace(frame_words=49),
    )
    assert default_jobs(tfc, "icarus") == 2
    assert default_jobs(tfc, "verilator") == 1
    assert default_jobs(SimpleNamespace(**{**vars(tfc), "frames": 50}), "icarus") == 1  # 9,800
    monkeypatch.setenv("BNNHW_FAST_JOBS", "3")
    assert default_jobs(tfc, "verilator") == 3

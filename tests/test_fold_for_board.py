"""Folding chosen for a board (boards/fit.py): fastest folding whose estimate fits."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest

from bnnhw.boards import BoardError, get_board
from bnnhw.boards.fit import LOGIC_BUDGET, estimate, fold_for_board, lane_ladder
from bnnhw.boards.memories import BlockRamError
from bnnhw.cli.main import main
from bnnhw.frontend import import_onnx
from bnnhw.passes import streamline
from bnnhw.passes.folding import cheapest_folding, fold_explicit

from conftest import ROOT

TFC = ROOT / "models" / "tfc_w1a1_in1_classic.onnx"
DIGITS = ROOT / "models" / "digits_w1a1_in1_classic.onnx"
SFC = ROOT / "models" / "sfc_w1a1_in1_classic.onnx"
CNV_DIGITS = ROOT / "models" / "cnv_digits_nopad_w1a1_in1_classic.onnx"
CNV_MNIST = ROOT / "models" / "cnv_mnist_pad_w1a1_in1_classic.onnx"


@pytest.fixture(scope="module")
def tfc():
    return streamline(import_onnx(TFC))


def _folded(net, folding: str):
    pairs = [tuple(int(v) for v in f.split("x")) for f in folding.split()]
    spec = {str(i): {"pe": pe, "simd": simd} for i, (pe, simd) in enumerate(pairs)}
    return fold_explicit(net, spec, "test")


def test_lane_ladder_steps_by_about_root_two_up_to_the_unrolled_layer(tfc):
    ladder = lane_ladder(tfc)
    assert {1, 2, 3, 4, 6, 8, 11, 16, 23} <= set(ladder)  # the x1.4 rungs
    assert ladder[-1] == 784 * 64  # TFC's first layer fully unrolled
    assert all(b / a <= 1.5 for a, b in itertools.pairwise(ladder[4:]))


def test_lane_ladder_holds_the_budget_of_every_interval_a_layer_reaches(tfc):
    # layer 0 (784 = 2^4 x 7^2 inputs, 64 neurons) at PE 16 x SIMD 16 takes 4 x 49 = 196
    # cycles: the budget 50176 / 196 = 256 lanes asks for exactly that; the x1.4 rungs
    # either side (187, 264) ask for 268 and 190 cycles and would skip it
    ladder = lane_ladder(tfc)
    assert 256 in ladder
    assert 784 * 64 // 4 in ladder  # layer 0 at PE 32 x SIMD 392: 2 x 2 cycles


def test_port_wide_words_cost_lanes_but_save_the_input_buffer(tfc):
    layer0 = tfc.layers[0]  # 784 inputs, 64 neurons
    # 256 cycles a frame needs 784 * 64 / 256 = 196 lanes: PE 1 x SIMD 196 (a 196-bit
    # input word). With words of at most 16 bits: PE 8 would need 32 words (SIMD 25);
    # PE 16 needs 64 words, SIMD 13 (784 padded to 61 words, 4 x 61 = 244 cycles, 208
    # lanes; the best divisor, 14, takes 224); PE 32 needs SIMD 7 (224), PE 64 SIMD 4
    assert cheapest_folding(layer0, 256) == (1, 196)
    assert cheapest_folding(layer0, 256, word_bits=16) == (16, 13)


def test_block_count_worked_by_hand(tfc):
    # PE x SIMD 4x16, 1x8, 1x8, 1x1 on the UP5K (SB_RAM40_4K: 16 x 256 ... 2 x 2048).
    # Yosys takes by itself: layer 0 weights 64 x 784 -> 4 x 4 = 16 blocks; layers 1-2
    # weights 8 x 512 -> 1 each; the input buffers (layer 0: 16 bits x 98, two frames of
    # 49 words; layers 1-2: 8 x 16; layer 3: 1 x 128; each more flip-flops than one
    # block's cost) -> 1 each; the link's frame store -> 1: 23 blocks. The planner then
    # moves what Yosys leaves in logic into the 7 left, most logic saved per block
    # first: layer 3 weights (1 x 640, 40 LUTs) -> 1, layers 1-2 thresholds (7 x 64,
    # 28 LUTs) -> 1 each, layer 0's thresholds (40 x 16 bits, 40 LUTs) -> 3: 29 blocks.
    # The output FIFOs have no memory to place: each layer's two frame credits are its
    # vector register and the FIFO's output register (flip-flops), so no ROM is left in
    # logic.
    result = estimate(_folded(tfc, "4x16 1x8 1x8 1x1"), get_board("icebreaker"), share=1.0)
    assert result.blocks == 29 and result.rom_bits_in_logic == 0 and result.fits


def test_tfc_on_the_icebreaker_is_folded_to_its_fastest_fit(tfc):
    board = get_board("icebreaker")
    net, fit = fold_for_board(tfc, board)
    assert fit.fits and fit.blocks <= board.ram_blocks
    assert fit.logic_cells <= LOGIC_BUDGET["ice40"] * board.luts
    assert [(la.pe, la.simd) for la in net.layers] == list(fit.folding)
    # every faster folding the search considered was over budget: the next rung of
    # the ladder above the chosen one does not fit
    faster = [lanes for lanes in lane_ladder(tfc) if lanes > fit.max_lanes]
    from bnnhw.passes.folding import fold_auto

    for word_bits in (None, 16):
        over = estimate(fold_auto(tfc, faster[0], word_bits), board, faster[0])
        assert over.interval >= fit.interval or not over.fits


def test_sfc_is_refused_on_the_icebreaker_for_its_rom_bits():
    net = streamline(import_onnx(SFC))
    with pytest.raises(BlockRamError, match=r"need 3\d\d kbit of ROM.*120 kbit of block RAM"):
        fold_for_board(net, get_board("icebreaker"))


def test_compile_for_a_board_records_the_fit(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["compile", str(DIGITS), "-o", str(out), "--board", "icebreaker"]) == 0
    report = json.loads((out / "report.json").read_text())
    fit = report["fit"]
    assert fit["board"] == "icebreaker" and fit["problem"] is None
    folding = [f"{layer['pe']}x{layer['simd']}" for layer in report["layers"]]
    assert folding == fit["folding"]
    assert report["initiation_interval"] == fit["interval"]
    md = (out / "report.md").read_text()
    assert f"an estimated {fit['logic_cells']} of 5280 logic cells" in md
    assert "fit max lanes" in capsys.readouterr().out  # the candidates tried, as progress


def test_a_folding_that_cannot_fit_is_refused_before_synthesis(tmp_path, capsys):
    out = tmp_path / "b"
    args = ["compile", str(TFC), "-o", str(out), "--board", "icestick", "--max-lanes", "4096"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bnnhw: error: icestick: ") and "does not fit" in err
    assert "\n" not in err


def test_a_model_too_big_for_any_folding_is_refused_with_numbers():
    net = streamline(import_onnx(DIGITS))
    tiny = dataclasses.replace(get_board("icestick"), name="tiny", luts=600)
    with pytest.raises(BoardError, match=r"even its smallest folding needs an estimated \d+"):
        fold_for_board(net, tiny)


SWEEP = ROOT / "bench" / "results" / "sweep" / "sweep.json"


@pytest.mark.parametrize("model", ["digits_w1a1_in1_classic", "digits_w1a1_in8_classic"])
def test_the_board_folding_is_the_fastest_the_sweep_placed_with_room(model):
    """Against real builds: bench/results/sweep/sweep.json holds nextpnr's logic cells for
    10 or 11 foldings of each digits MLP on the iCEBreaker (the packer's count for those that
    did not fit). The folding the pass picks was built there, within the 80 % of the cells
    where nextpnr still places reliably, and no faster folding built within that.

    The hand-set cell model alone fails both ways: it kept the binary-input MLP at 64
    cycles a frame although 8x16 8x16 8x16 5x4 (32 cycles) placed at 79 %, and picked for
    the 8-bit-input MLP 32x2 4x16 4x16 5x2, placed at 94 % (8-bit lanes priced ~25 % low).
    """
    board = get_board("icebreaker")
    records = [
        r
        for r in json.loads(SWEEP.read_text())["points"]
        if r["model"] == f"{model}.onnx" and r["board"] == board.name
    ]
    net = streamline(import_onnx(ROOT / "models" / f"{model}.onnx"))
    _, fit = fold_for_board(net, board)
    picked = " ".join(f"{pe}x{simd}" for pe, simd in fit.folding)
    built = {r["folding"]: r for r in records}
    assert built[picked]["status"] == "ok"
    assert built[picked]["logic_cells"] <= 0.8 * board.luts
    roomy = [r for r in records if r["status"] == "ok" and r["logic_cells"] <= 0.8 * board.luts]
    assert min(r["interval"] for r in roomy) == built[picked]["interval"] == fit.interval


@pytest.mark.slow
def test_the_estimate_holds_against_nextpnr(tmp_path):
    """digits, folded for the iCEBreaker, placed and routed: the block count is exact and
    the logic-cell estimate is within 10 % of nextpnr's count (the model's fit is 5 %)."""
    from bnnhw.boards import synthesize
    from bnnhw.build import compile_model

    board = get_board("icebreaker")
    build = compile_model(DIGITS, tmp_path, max_lanes=None, board=board.name)
    report = synthesize(build, board)
    assert report["bram"] == build.fit["blocks"]
    assert abs(report["logic_cells"] - build.fit["logic_cells"]) <= 0.1 * report["logic_cells"]
    assert report["logic_cells"] <= 0.8 * board.luts  # placed where nextpnr still can


@pytest.mark.slow
def test_a_convolutional_pick_places_within_its_estimate(tmp_path):
    """The binary-digits CNV folded for the iCEBreaker: nextpnr packs no more cells than
    the (scaled) estimate, placing it (its earlier pick, 4x9 16x12 2x16 1x4, failed at
    4,499 cells against 4,066 estimated)."""
    from bnnhw.boards import synthesize
    from bnnhw.build import compile_model

    board = get_board("icebreaker")
    build = compile_model(CNV_DIGITS, tmp_path, max_lanes=None, board=board.name)
    report = synthesize(build, board)
    assert report["bram"] == build.fit["blocks"]
    assert report["logic_cells"] <= build.fit["logic_cells"] <= LOGIC_BUDGET["ice40"] * board.luts


def test_a_model_short_of_block_ram_is_refused_for_the_blocks():
    # MNIST CNV: both the block RAM and the logic are short on the iCEBreaker; the message
    # gives the blocks, a count, before the logic, an estimate
    net = streamline(import_onnx(CNV_MNIST))
    with pytest.raises(BoardError) as refused:
        fold_for_board(net, get_board("icebreaker"))
    message = str(refused.value)
    assert message.startswith("icebreaker: no folding of cnv_mnist_pad_w1a1_in1_classic fits")
    assert "with the fewest weight blocks" in message and "the device has 30" in message
    assert "logic cells" not in message


def test_no_folding_within_the_block_ram_is_refused_without_lane_advice():
    net = streamline(import_onnx(DIGITS))
    # 4 blocks hold the 13 kbit of ROM (16 kbit), but no folding maps into so few; with
    # 5,280 cells one does, every weight ROM in logic (~4,300 cells, 82 %): 4,600 do not
    # hold it
    small = dataclasses.replace(get_board("icestick"), name="small", luts=4600, ram_blocks=4)
    with pytest.raises(BoardError) as refused:
        fold_for_board(net, small)
    message = str(refused.value)
    assert message.startswith("small: no folding of digits_w1a1_in1_classic fits (the last tried")
    assert "need" in message and "the device has 4" in message
    assert "--max-lanes" not in message  # the user gave none: the board chose


def test_a_model_over_the_unrolling_budget_still_gets_its_smallest_foldings():
    # ECP5 foldings unroll to 38 % of the cells; digits needs ~2,500 at its smallest, over
    # 38 % of 6,000 (2,280) but within the 75 % any model may use: built, not refused
    net = streamline(import_onnx(DIGITS))
    small_ecp5 = dataclasses.replace(get_board("ulx3s-85f"), name="small", luts=6000)
    _, fit = fold_for_board(net, small_ecp5)
    assert fit.fits and 2280 < fit.logic_cells <= 0.75 * 6000


def test_an_ecp5_folding_leaves_some_block_ram_free(monkeypatch):
    """On an ECP5 of 60 blocks an automatic folding fills at most 85 % of them (51): the
    fastest digits folding, whose memory plan fills more when it may use all 60, keeps
    its speed within 51, the memories past them left in logic (more cells)."""
    from bnnhw.boards import fit

    net = streamline(import_onnx(DIGITS))
    board = dataclasses.replace(get_board("ulx3s-85f"), name="small", ram_blocks=60)
    _, kept = fold_for_board(net, board)
    monkeypatch.setitem(fit.BLOCK_BUDGET, "ecp5", 1.0)
    _, full = fold_for_board(net, board)
    assert full.blocks > 51 >= kept.blocks
    assert kept.interval == full.interval and kept.folding == full.folding
    assert kept.logic_cells > full.logic_cells

"""The whole accelerator in Amaranth's simulator against the golden model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bnnhw
from bnnhw import golden
from bnnhw.ir import InputSpec, Layer, Network
from bnnhw.passes.folding import divisors, fold_auto, fold_explicit
from bnnhw.rtl_gen import Accelerator
from bnnhw.rtl_gen.argmax import SerialArgmax
from bnnhw.rtl_gen.width import Gearbox
from bnnhw.sim.amaranth_streams import run_streams

from conftest import ROOT
from ir_networks import random_frames, random_network


def _run(net, x, *, in_word=None, gap=0.0, seed=0, read_register=False, bank_words=None, late=()):
    acc = Accelerator(
        net, in_word=in_word, read_register=read_register, bank_words=bank_words, late_slices=late
    )
    fmt = acc.port_format
    words = [w for frame in fmt.pack_frames(golden.encode_inputs(net.input, x)) for w in frame]
    run = run_streams(acc, words, len(x), in_gap=gap, out_gap=gap, seed=seed)
    results = [fmt.unpack_result(w) for w in run.outputs]
    return acc, run, np.array([r[0] for r in results]), np.array([r[1] for r in results])


def _assert_matches_golden(net, x, classes, scores):
    assert np.array_equal(scores, golden.scores(net, x))
    assert np.array_equal(classes, golden.predict(net, x))


@pytest.mark.parametrize("name", ["digits_w1a1_in1_classic", "digits_w1a1_in8_dynamo"])
@pytest.mark.parametrize("lanes", [128, 1024])
def test_bundled_digits_models_with_stalls(name, lanes):
    net = fold_auto(bnnhw.load(ROOT / "models" / f"{name}.onnx"), max_lanes=lanes)
    x = random_frames(np.random.default_rng(lanes), net.input, 12)
    _, _, classes, scores = _run(net, x, gap=0.4, seed=lanes)
    _assert_matches_golden(net, x, classes, scores)


@pytest.mark.parametrize("lanes", [64, 256, 1024])
@pytest.mark.parametrize("in_word", [None, 8, 64])
def test_latency_formula_and_steady_state(lanes, in_word):
    net = fold_auto(bnnhw.load(ROOT / "models" / "digits_w1a1_in8_classic.onnx"), lanes)
    x = random_frames(np.random.default_rng(0), net.input, 8)
    acc, run, classes, scores = _run(net, x, in_word=in_word)
    _assert_matches_golden(net, x, classes, scores)
    # run_streams counts edges from 1, the first input word's handshake being edge 1
    assert run.out_cycles[0] - 1 == acc.latency_cycles
    interval = max(acc.ideal_cycles, acc.port_format.frame_words)  # the host port may bind
    steady = (run.out_cycles[-1] - run.out_cycles[2]) / (len(x) - 3)
    assert steady <= 1.05 * interval


@pytest.mark.parametrize("register_every", [0, 1, 2])
def test_latency_formula_for_each_register_spacing(register_every):
    """The 8-bit input layer's +-code register comes and goes with the tree's registers;
    the latency the formula gives is the one simulated, and the results stay exact."""
    net = fold_auto(bnnhw.load(ROOT / "models" / "digits_w1a1_in8_classic.onnx"), 256)
    x = random_frames(np.random.default_rng(register_every), net.input, 6)
    acc = Accelerator(net, register_every=register_every)
    fmt = acc.port_format
    words = [w for frame in fmt.pack_frames(golden.encode_inputs(net.input, x)) for w in frame]
    run = run_streams(acc, words, len(x), in_gap=0.3, out_gap=0.3, seed=register_every)
    results = [fmt.unpack_result(w) for w in run.outputs]
    classes = np.array([r[0] for r in results])
    _assert_matches_golden(net, x, classes, np.array([r[1] for r in results]))
    quiet = Accelerator(net, register_every=register_every)
    first = run_streams(quiet, words[: fmt.frame_words], 1)
    assert first.out_cycles[0] - 1 == quiet.latency_cycles


@pytest.mark.parametrize("name", ["digits_w1a1_in1_classic", "digits_w1a1_in8_classic"])
@pytest.mark.parametrize(
    ("lanes", "later", "late"), [(256, 4, ()), (1024, 7, ()), (1024, 7, (0, 1, 2)), (2048, 7, ())]
)
def test_read_register_costs_one_cycle_a_layer_and_stays_exact(name, lanes, later, late):
    """The ECP5 boards' register after every MVTU's memory reads: exact under stalls,
    and each layer's result one cycle later, as the latency formula says. At 1024 lanes
    (16x64 16x64 16x64 5x32) the three 16-PE layers copy their input word, one copy per
    8 PEs, a cycle more each: 4 + 3 cycles later (and the argmax's difference). Their
    weight ROMs (1,024 bits x 4 words, in logic) are sliced by copy, each slice read at
    its own address copy: no cycle more. At 2048 (32x64 x3 5x64) the slices are 512 bits
    x 2 words, wired: read at address copies two cycles late instead of registering the
    word twice, no cycle more either; and so at 1024 with the 4-word slices read late, as
    a board whose blocks are full has them."""
    net = fold_auto(bnnhw.load(ROOT / "models" / f"{name}.onnx"), lanes)
    x = random_frames(np.random.default_rng(7), net.input, 6)
    acc = Accelerator(net, read_register=True, late_slices=late)
    slices = {256: [1, 1, 1, 1], 1024: [2, 2, 2, 1], 2048: [4, 4, 4, 1]}[lanes]
    assert [stage.weight_slices for stage in acc.stages] == slices
    read_late = lanes == 2048 or late != ()
    assert [stage.slices_read_late for stage in acc.stages] == [read_late] * 3 + [False]
    fmt = acc.port_format
    words = [w for frame in fmt.pack_frames(golden.encode_inputs(net.input, x)) for w in frame]
    run = run_streams(acc, words, len(x), in_gap=0.3, out_gap=0.4, seed=7)
    results = [fmt.unpack_result(w) for w in run.outputs]
    classes = np.array([r[0] for r in results])
    _assert_matches_golden(net, x, classes, np.array([r[1] for r in results]))
    first, argmax = {}, {}
    for registered in (False, True):
        quiet = Accelerator(net, read_register=registered, late_slices=late)
        edge = run_streams(quiet, words[: fmt.frame_words], 1).out_cycles[0] - 1
        assert edge == quiet.latency_cycles
        first[registered], argmax[registered] = edge, quiet.argmax.latency
    # with read registers the argmax is the tree (4 levels for 10 classes) even where the
    # serial one (10 cycles) would keep up: its compare is not in front of an enable
    assert not isinstance(acc.argmax, SerialArgmax)
    assert first[True] - first[False] == later + argmax[True] - argmax[False]
    # the credits cover the longer pipeline: frames still follow at the interval
    steady_run = run_streams(Accelerator(net, read_register=True), words, len(x))
    steady = (steady_run.out_cycles[-1] - steady_run.out_cycles[2]) / (len(x) - 3)
    assert steady <= 1.05 * max(acc.ideal_cycles, fmt.frame_words)


def _digits_folded(folding: dict[str, tuple[int, int]]):
    """The bundled digits MLP (1-bit input) folded as ``{layer: (PE, SIMD)}``."""
    net = bnnhw.load(ROOT / "models" / "digits_w1a1_in1_classic.onnx")
    layers = {name: {"pe": pe, "simd": simd} for name, (pe, simd) in folding.items()}
    return fold_explicit(net, layers, "test")


def test_read_register_cuts_a_word_of_many_pieces_with_a_register():
    """With read registers (the ECP5's 125 MHz) a hidden layer's 64-bit output cut into
    seven 10-bit words (the last padded) goes through a registered Downsizer, not a
    7-way selector; a 4-piece cut is still read in place. Exact under stalls, the first
    result on the edge the latency formula gives, frames at the layers' interval."""
    from bnnhw.rtl_gen.width import Downsizer, WordSelector

    net = _digits_folded({"0": (8, 16), "1": (8, 10), "2": (8, 16), "3": (5, 16)})
    x = random_frames(np.random.default_rng(11), net.input, 8)
    acc, _, classes, scores = _run(net, x, gap=0.4, seed=11, read_register=True)
    assert [type(c) for c in acc.converters[1:]] == [Downsizer, WordSelector, WordSelector]
    _assert_matches_golden(net, x, classes, scores)
    fmt = acc.port_format
    words = [w for frame in fmt.pack_frames(golden.encode_inputs(net.input, x)) for w in frame]
    quiet = Accelerator(net, read_register=True)
    first = run_streams(quiet, words[: fmt.frame_words], 1).out_cycles[0] - 1
    assert first == quiet.latency_cycles
    steady_run = run_streams(Accelerator(net, read_register=True), words, len(x))
    steady = (steady_run.out_cycles[-1] - steady_run.out_cycles[2]) / (len(x) - 3)
    assert steady <= 1.05 * acc.ideal_cycles


@pytest.mark.parametrize("registered", [False, True])
def test_a_layer_of_one_group_compares_with_constant_thresholds(registered):
    """PE = neurons (one group, NF 1): no threshold ROM, the thresholds are constants in
    the comparators; the results are golden's, with and without read registers."""
    from amaranth.hdl import Fragment

    net = _digits_folded({"0": (64, 16), "1": (64, 8), "2": (16, 16), "3": (5, 16)})
    x = random_frames(np.random.default_rng(12), net.input, 6)
    _, _, classes, scores = _run(net, x, gap=0.3, seed=12, read_register=registered)
    _assert_matches_golden(net, x, classes, scores)
    memories = [
        [sub[1] for sub in Fragment.get(stage, None).subfragments]  # (fragment, name, ...)
        for stage in Accelerator(net, read_register=registered).stages[:3]
    ]
    assert ["thresholds" in names for names in memories] == [False, False, True]


def test_thresholds_past_a_decreasing_neurons_reach():
    """A neuron that fires for ``acc <= t`` (direction -1) with ``t`` below anything its
    accumulator reaches never fires; one with ``t`` at or past its top always does.
    (Found by Hypothesis: the hardware once clipped a flipped threshold into the
    unflipped neurons' reach, so ``t = -8`` acted as ``-4``.)"""
    # every neuron: acc = -x0 - x1 over 2-bit codes, so acc in [-6, 0]
    thresholds = np.array([-8, -7, -6, -4, 0, 1])
    hidden = Layer(
        name="fc0",
        weights=np.zeros((6, 2), np.uint8),
        in_bits=2,
        in_range=(0, 3),
        thresholds=thresholds,
        directions=np.full(6, -1, np.int8),
        pe=2,
        simd=1,
    )
    # output k+1 flips the sign of hidden neuron k: (score_0 - score_k+1) / 2 = its +-1
    probe = np.vstack([np.ones((1, 6)), 1 - np.eye(6)]).astype(np.uint8)
    out = Layer(
        name="fc1",
        weights=probe,
        in_bits=1,
        is_output=True,
        out_scale=np.ones(7),
        out_bias=np.zeros(7),
        pe=1,
        simd=2,
    )
    spec = InputSpec(shape=(2,), bits=2, signed=False)
    net = Network(name="reach", input=spec, layers=[hidden, out])
    x = np.array([[a, b] for a in range(4) for b in range(4)], np.float32)
    _, _, _, scores = _run(net, x, gap=0.3, seed=3)
    fired = (scores[:, :1] - scores[:, 1:]) // 2
    acc = -x.sum(axis=1, keepdims=True)
    assert np.array_equal(fired, np.where(acc <= thresholds, 1, -1))
    assert (fired[:, 0] == -1).all() and (fired[:, 4] == 1).all()


@st.composite
def networks_and_foldings(draw):
    bits = draw(st.sampled_from([1, 1, 2, 3, 8]))
    widths = draw(st.lists(st.integers(1, 24), min_size=2, max_size=4))
    spec = InputSpec(shape=(widths[0],), bits=bits, signed=bits > 1 and draw(st.booleans()))
    seed = draw(st.integers(0, 2**16))
    net = random_network(
        np.random.default_rng(seed), widths, spec, per_class_scores=draw(st.booleans())
    )
    for layer in net.layers:
        layer.pe = draw(st.sampled_from(divisors(layer.neurons)))
        # any SIMD: one that does not divide the fan-in zero-pads the vector's last word
        layer.simd = draw(st.integers(1, layer.fan_in))
    return net, seed


@settings(max_examples=25, deadline=None)
@given(
    case=networks_and_foldings(),
    gap=st.sampled_from([0.0, 0.3]),
    registered=st.booleans(),
    bank_words=st.sampled_from([None, 1, 2, 4]),
    late=st.booleans(),
)
def test_random_networks_and_foldings_match_golden(case, gap, registered, bank_words, late):
    """Any network and folding, with or without the ECP5's read registers (and, past 8
    PEs, the input word's copies and weight ROM slices, read late or not; with small
    ``bank_words``, weight ROMs in banks): golden's results under stalls."""
    net, seed = case
    x = random_frames(np.random.default_rng(seed + 1), net.input, 6)
    layers = range(len(net.layers)) if late else ()
    _, _, classes, scores = _run(
        net, x, gap=gap, seed=seed, read_register=registered, bank_words=bank_words, late=layers
    )
    _assert_matches_golden(net, x, classes, scores)


@pytest.mark.parametrize(("bank_words", "banks", "later"), [(64, 8, 1), (16, 32, 2)])
def test_banked_weight_roms_cost_a_cycle_a_level_and_stay_exact(bank_words, banks, later):
    """With read registers the 1x8 layers' 64 x 8 = 512-word ROMs in banks: 8 banks of 64
    words (one multiplexer, a cycle more a layer) or 32 of 16 (four groups of 8, each
    chosen into a register, then the group: two cycles more), while the 5x16 output
    layer's 4 x 2 = 8 words stay one ROM. The results are golden's under stalls, the
    first comes 3 x ``later`` cycles later than with one bank a layer, and frames still
    follow at the interval."""
    net = _digits_folded({"0": (1, 8), "1": (1, 8), "2": (1, 8), "3": (5, 16)})
    banked = Accelerator(net, read_register=True, bank_words=bank_words)
    assert [stage.weight_banks for stage in banked.stages] == [banks, banks, banks, 1]
    x = random_frames(np.random.default_rng(5), net.input, 6)
    _, _, classes, scores = _run(net, x, gap=0.4, seed=5, read_register=True, bank_words=bank_words)
    _assert_matches_golden(net, x, classes, scores)
    fmt = banked.port_format
    words = [w for frame in fmt.pack_frames(golden.encode_inputs(net.input, x)) for w in frame]
    first = {}
    for depth in (bank_words, 1024):  # 1024: one bank each, as without banks
        quiet = Accelerator(net, read_register=True, bank_words=depth)
        edge = run_streams(quiet, words[: fmt.frame_words], 1).out_cycles[0] - 1
        assert edge == quiet.latency_cycles
        first[depth] = edge
    assert first[bank_words] - first[1024] == 3 * later
    steady_run = run_streams(banked, words, len(x))
    steady = (steady_run.out_cycles[-1] - steady_run.out_cycles[2]) / (len(x) - 3)
    assert steady <= 1.05 * banked.ideal_cycles


@pytest.mark.parametrize("out_beat", [8, 13])
def test_results_in_narrow_output_words(out_beat):
    """A host can read each result in words of a chosen width, low bits first."""
    net = fold_auto(bnnhw.load(ROOT / "models" / "digits_w1a1_in1_classic.onnx"), 256)
    x = random_frames(np.random.default_rng(out_beat), net.input, 6)
    acc = Accelerator(net, out_beat=out_beat)
    fmt = acc.port_format
    assert len(acc.o.payload) == out_beat and fmt.out_beats == -(-fmt.out_word // out_beat)
    words = [w for frame in fmt.pack_frames(golden.encode_inputs(net.input, x)) for w in frame]
    run = run_streams(acc, words, len(x) * fmt.out_beats, in_gap=0.3, out_gap=0.3)
    beats = [run.outputs[i : i + fmt.out_beats] for i in range(0, len(run.outputs), fmt.out_beats)]
    results = [fmt.unpack_result(fmt.join_beats(b)) for b in beats]
    _assert_matches_golden(
        net, x, np.array([r[0] for r in results]), np.array([r[1] for r in results])
    )
    single = Accelerator(net, out_beat=out_beat)
    fast = run_streams(single, words[: fmt.frame_words], fmt.out_beats)
    assert fast.out_cycles[-1] - 1 == single.latency_cycles


@pytest.mark.parametrize("in_word", [None, 8, 32])
def test_padded_first_layer_latency_and_steady_state(in_word):
    """SIMD 12 does not divide the 64 inputs: the host sends six 12-bit words, the last
    zero-padded, or 8- or 32-bit words that a Gearbox repacks so; the hidden layer's 10 of
    32 pads likewise. The results are golden's, the latency is the formula's and frames
    still stream at the slowest layer's interval."""
    net = bnnhw.load(ROOT / "models" / "digits_w1a1_in1_classic.onnx")
    net = fold_explicit(
        net,
        {
            "0": {"pe": 4, "simd": 12},
            "1": {"pe": 4, "simd": 10},
            "2": {"pe": 4, "simd": 32},
            "3": {"pe": 5, "simd": 16},
        },
        "test",
    )
    assert [layer.pad for layer in net.layers] == [8, 6, 0, 0]
    x = random_frames(np.random.default_rng(7), net.input, 8)
    acc, run, classes, scores = _run(net, x, in_word=in_word)
    assert acc.port_format.in_word == (in_word or 12)  # by default the SIMD word
    assert acc.port_format.frame_words == {None: 6, 8: 8, 32: 2}[in_word]
    assert isinstance(acc.converters[0], Gearbox) == (in_word is not None)
    _assert_matches_golden(net, x, classes, scores)
    assert run.out_cycles[0] - 1 == acc.latency_cycles
    interval = max(acc.ideal_cycles, acc.port_format.frame_words)
    steady = (run.out_cycles[-1] - run.out_cycles[2]) / (len(x) - 3)
    assert steady <= 1.05 * interval
    _, _, classes, scores = _run(net, x, in_word=in_word, gap=0.4, seed=3)
    _assert_matches_golden(net, x, classes, scores)


@pytest.mark.parametrize(("seed", "read_register"), [(1, False), (2, False), (3, True)])
def test_one_cycle_layers_under_heavy_backpressure(seed, read_register):
    """Fully unrolled layers (NF = SF = 1) start a frame every cycle and hold several
    credits, so their FIFOs fill and drain under stalls while the next frame's vector is
    already assembled; every output is still golden's (a vector overwritten before its
    push would show as a wrong or missing result)."""
    rng = np.random.default_rng(seed)
    net = random_network(rng, [12, 9, 6, 4], InputSpec(shape=(12,), bits=1))
    for layer in net.layers:
        layer.pe, layer.simd = layer.neurons, layer.fan_in
    x = random_frames(rng, net.input, 60)
    _, _, classes, scores = _run(net, x, gap=0.6, seed=seed, read_register=read_register)
    _assert_matches_golden(net, x, classes, scores)

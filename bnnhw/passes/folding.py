"""Pass: choose each layer's folding (PE neurons x SIMD inputs per cycle).

A layer takes ``Layer.cycles_at(PE, SIMD)`` = positions * (neurons / PE) * (fan_in / SIMD)
cycles per frame (positions is 1 for a dense layer, the output pixels of a convolution),
and the slowest layer sets the throughput of the whole pipeline, so ``auto`` first fixes a
target number of cycles (the largest layer spread over ``max_lanes`` XNOR lanes) and then
gives every layer the fewest lanes (PE x SIMD) that meet it. Faster layers would only cost
area.

A convolution's window generator walks its padded map one pixel per cycle and a pool
walks its map likewise, whatever the folding (``Layer.walk_cycles``): those walks are a
floor on the target.
A dense layer after a convolution receives one pixel per beat, so its SIMD must divide,
or be a multiple of, the pixel's channels.

An unpadded convolution whose SIMD divides its channels reads its windows' words from a
row buffer in block RAM (``window_readable``, ``rtl_gen/window_reader.py``); any other
holds each window in registers, about half a lane's logic per window bit
(``bench/windows.py``). The cheapest folding counts that cost against its lanes.

SIMD need not divide the fan-in of a dense layer fed by the host or by another dense
layer: its input vector is zero-padded to SF = ceil(fan_in / SIMD) words (``Layer.pad``),
which lets a fan-in such as TFC's 784 = 2^4 x 7^2 take intervals its divisors miss (SIMD
20: 40 words, where 16 gives 49 and 28 gives 28). A convolution's window and a dense layer
after a map arrive pixel by pixel, so there SIMD must divide the fan-in.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
from pathlib import Path

from bnnhw.errors import InputError
from bnnhw.ir import Layer, Network

DEFAULT_MAX_LANES = 256  # auto folding: XNOR lanes (PE x SIMD) of the largest layer
# Adder-tree levels between pipeline registers. One level (a LUT4 and a short carry chain)
# per stage: on iCE40 the registers pack into the logic cells of the LUTs they follow, so
# this costs no cells over every second level, and a 256-lane popcount clocks at ~90 MHz
# instead of ~60 with 2.5 instead of 3.1 LUT4 per lane (bench/lanes.py).
DEFAULT_REGISTER_EVERY = 1
# the logic of a register window's bit (window, output register, the word multiplexer),
# in XNOR lanes (bench/windows.py: ~1 LUT4 and ~2.4 flip-flops a bit against a binary
# lane's ~3 LUT4 and ~5 flip-flops)
LANES_PER_WINDOW_BIT = 0.5


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def simd_fits(simd: int, pixel: int | None) -> bool:
    """A SIMD word can be cut from (or built of) the incoming pixels."""
    return pixel is None or pixel % simd == 0 or simd % pixel == 0


def window_readable(layer: Layer, simd: int) -> bool:
    """A convolution whose SIMD words a ``WindowReader`` reads from its row buffer:
    unpadded (the buffer holds the map's own rows), SIMD dividing the channels (a word
    is part of one pixel)."""
    win = layer.window
    return win is not None and not win.padded and win.channels % simd == 0


def window_lanes(layer: Layer, simd: int) -> float:
    """A convolution's window logic at this SIMD, in lanes: a register window's bits, or
    nothing much for a row buffer's (its counters are a layer's fixed cost)."""
    if layer.window is None or window_readable(layer, simd):
        return 0.0
    return LANES_PER_WINDOW_BIT * layer.window.elements * layer.in_bits


def may_pad(layer: Layer, pixel: int | None) -> bool:
    """Can ``layer``'s input vector be zero-padded to whole SIMD words (see the module)?"""
    return layer.window is None and pixel is None


def simd_choices(layer: Layer, pixel: int | None) -> list[int]:
    """The SIMD widths ``layer`` may take, smallest first."""
    if may_pad(layer, pixel):
        return list(range(1, layer.fan_in + 1))
    return [d for d in divisors(layer.fan_in) if simd_fits(d, pixel)]


def upstream_pixels(net: Network) -> list[int | None]:
    """Per layer: channels of the pixels it receives when it is a dense layer after a map."""
    pixels: list[int | None] = []
    previous = None
    for layer in net.layers:
        pixels.append(previous if layer.window is None else None)
        previous = layer.neurons if layer.window is not None else None
    return pixels


def cheapest_folding(
    layer: Layer, target_cycles: int, pixel: int | None = None, word_bits: int | None = None
) -> tuple[int, int]:
    """Fewest lanes meeting the target (a register window's logic counted as lanes:
    ``window_lanes``); among equals no padding, then the fewest PEs (smaller muxes).

    ``word_bits``: first of all, input words (SIMD x input bits) of at most this many
    bits where any meets the target, so the layer's input buffer stays as narrow as a
    block RAM port (a wide, shallow buffer wastes blocks).
    """
    best = None
    readable_later = layer.window is not None and not layer.window.padded
    for pe in divisors(layer.neurons):
        for simd in simd_choices(layer, pixel):
            if layer.cycles_at(pe, simd) <= target_cycles:
                wide = word_bits is not None and simd * layer.in_bits > word_bits
                cost = pe * simd + window_lanes(layer, simd)
                key = (wide, cost, layer.fan_in % simd != 0, pe)
                if best is None or key < best[0]:
                    best = (key, pe, simd)
                if window_readable(layer, simd) or not readable_later:
                    break  # larger SIMD only adds lanes (a readable one may save a window)
    if best is None:  # only a window walk can be slower than every folding
        return layer.neurons, layer.fan_in
    return best[1], best[2]


def _positive_int(value: object) -> bool:
    """An integer >= 1; not a bool, float or string that int() would quietly accept."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and bool(value >= 1)


def check_max_lanes(max_lanes: object) -> None:
    """The auto folding budget must be a positive lane count (0 divides by zero)."""
    if not _positive_int(max_lanes):
        raise InputError(
            f"--max-lanes {max_lanes}: give at least 1 XNOR lane (PE x SIMD of the largest layer)"
        )


def fold_auto(
    net: Network, max_lanes: int = DEFAULT_MAX_LANES, word_bits: int | None = None
) -> Network:
    """Every layer as fast as the largest one on ``max_lanes`` lanes, on the fewest lanes."""
    check_max_lanes(max_lanes)
    net = copy.deepcopy(net)
    largest = max(layer.cycles_at(1, 1) for layer in net.layers)  # on a single lane
    target = max(1, math.ceil(largest / max_lanes), *(la.walk_cycles for la in net.layers))
    for layer, pixel in zip(net.layers, upstream_pixels(net), strict=True):
        layer.pe, layer.simd = cheapest_folding(layer, target, pixel, word_bits)
    return net


def fold_explicit(net: Network, folding: dict[str, dict[str, int]], source: str) -> Network:
    """Folding from a mapping ``{layer name or index: {"pe": P, "simd": S}}``."""
    net = copy.deepcopy(net)
    names = {layer.name: layer for layer in net.layers}
    names.update({str(i): layer for i, layer in enumerate(net.layers)})
    unknown = sorted(set(folding) - set(names))
    if unknown:
        raise InputError(
            f"{source}: no layer named {unknown[0]!r}; layers are "
            + ", ".join(layer.name for layer in net.layers)
        )
    for key, choice in folding.items():
        layer = names[key]
        if not isinstance(choice, dict) or set(choice) != {"pe", "simd"}:
            raise InputError(f'{source}: layer {key!r} needs {{"pe": P, "simd": S}}')
        for what in ("pe", "simd"):
            value = choice[what]
            if not _positive_int(value):
                raise InputError(
                    f"{source}: layer {key!r}: {what!r} is "
                    f"{json.dumps(value, default=str)}; give a positive integer"
                )
        layer.pe, layer.simd = int(choice["pe"]), int(choice["simd"])
        check_layer_folding(layer, source)
    missing = [layer.name for layer in net.layers if layer.pe is None]
    if missing:
        raise InputError(f"{source}: no folding given for layer(s) {', '.join(missing)}")
    check_folding(net, source)
    return net


def check_folding(net: Network, source: str = "folding") -> None:
    """PE must divide the neurons of every layer; SIMD the fan-in of every layer that
    cannot be padded (:func:`may_pad`), and be at most the fan-in of the others."""
    for layer, pixel in zip(net.layers, upstream_pixels(net), strict=True):
        check_layer_folding(layer, source)
        if layer.fan_in % layer.simd and not may_pad(layer, pixel):
            why = "a convolution's window" if layer.window else "a layer after a convolution"
            raise InputError(
                f"{source}: layer {layer.name!r}: SIMD={layer.simd} does not divide its "
                f"fan-in {layer.fan_in}, and {why} cannot be zero-padded; choose one of "
                f"{[d for d in divisors(layer.fan_in) if simd_fits(d, pixel)]}"
            )
        if not simd_fits(layer.simd, pixel):
            fits = [d for d in divisors(layer.fan_in) if simd_fits(d, pixel)]
            raise InputError(
                f"{source}: layer {layer.name!r}: SIMD={layer.simd} does not divide, and is "
                f"not a multiple of, the {pixel} channels of the pixels it receives; "
                f"choose one of {fits}"
            )


def check_layer_folding(layer: Layer, source: str) -> None:
    if layer.pe is None or layer.simd is None or layer.pe < 1 or layer.simd < 1:
        raise InputError(f"{source}: layer {layer.name!r} has no valid PE/SIMD")
    if layer.neurons % layer.pe:
        raise InputError(
            f"{source}: layer {layer.name!r}: PE={layer.pe} does not divide its "
            f"{layer.neurons} neurons; choose one of {divisors(layer.neurons)}"
        )
    if layer.simd > layer.fan_in:
        raise InputError(
            f"{source}: layer {layer.name!r}: SIMD={layer.simd} is more than its fan-in "
            f"{layer.fan_in}; choose at most {layer.fan_in}"
        )


def load_folding(path: str | Path) -> dict[str, dict[str, int]]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON folding file ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f'{path}: expected {{"layer": {{"pe": P, "simd": S}}, ...}}')
    return data

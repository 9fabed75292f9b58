"""A resource model fitted to sweep results: LUT4, FF, logic cells, EBR and Fmax of a folding.

Each quantity is a non-negative linear combination of a few features of the folded layers
(``features``), fitted per FPGA family with ``scipy.optimize.nnls`` to what Yosys and
nextpnr reported in sweeps. Why these features (docs/qor.md): a binary lane's XNOR-popcount
costs about one LUT4 plus a carry-chain share that grows with the tree's depth
(``lanes x log2 SIMD``); a multi-bit input lane is an adder of its code width; each PE
has an accumulator and a compare; weight ROMs left in logic cost a LUT4 per 16 bits; each
layer's input vector (its double-buffered input memory), input word (the SIMD x bits
read from it each cycle) and output vector (the shift register assembling it) cost logic
per bit; the board link and control are a constant. Fmax is fitted as the clock period,
which grows with the adder tree's depth and the fan-out of one input word to the PEs. The
fit minimises the relative error (each row weighted by 1/measured), the figure the model
is judged by, so small designs count as much as large ones.

The coefficients live in ``coefficients.json`` beside this file, written by
``bench/fit_resources.py`` (or ``bnnhw sweep --fit`` into the sweep's folder).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bnnhw.ir import Network

COEFFICIENTS = Path(__file__).with_name("coefficients.json")
MIN_POINTS = 3  # built points of a family needed to fit a quantity
TARGETS = ("luts", "ffs", "logic_cells", "bram", "period_ns")
LANES = ("bin_lanes", "bin_lanes_log", "wide_lanes", "wide_lanes_log")
VECTORS = ("in_vector_bits", "in_word_bits", "out_vector_bits")
FEATURES = {
    "luts": ("one", *LANES, "acc_bits", "rom_luts", *VECTORS),
    "ffs": ("one", *LANES, "acc_bits"),
    "logic_cells": ("one", *LANES, "acc_bits", "rom_luts"),
    "bram": ("one", "weight_blocks"),
    "period_ns": ("one", "tree_depth", "pe_fanout_log"),
}


def features(net: Network, family: str, rom_bits_in_logic: int = 0) -> dict[str, float]:
    """The model's inputs for a folded network (PE and SIMD set on every layer)."""
    from bnnhw.boards.fit import weight_blocks
    from bnnhw.rtl_gen.layer_params import layer_hw, signed_width

    sums = (*LANES, "acc_bits", "tree_depth", "pe_fanout_log", *VECTORS)
    f = dict.fromkeys(sums, 0.0)
    f["one"] = 1.0
    for layer in net.layers:
        hw = layer_hw(layer)
        lanes = hw.pe * hw.simd
        if hw.in_bits == 1:
            f["bin_lanes"] += lanes
            f["bin_lanes_log"] += lanes * math.log2(hw.simd)
        else:
            f["wide_lanes"] += lanes * hw.in_bits
            f["wide_lanes_log"] += lanes * hw.in_bits * math.log2(hw.simd)
        f["acc_bits"] += hw.pe * signed_width(*hw.acc_range)
        f["in_vector_bits"] += hw.fan_in * hw.in_bits
        f["in_word_bits"] += hw.simd * hw.in_bits
        f["out_vector_bits"] += hw.neurons
        depth = math.log2(hw.simd) + (math.log2(hw.in_bits) if hw.in_bits > 1 else 0)
        f["tree_depth"] = max(f["tree_depth"], depth)
        f["pe_fanout_log"] = max(f["pe_fanout_log"], math.log2(hw.pe))
    f["rom_luts"] = rom_bits_in_logic / 16
    f["weight_blocks"] = float(weight_blocks(net, family))
    return f


@functools.lru_cache(maxsize=8)
def load_coefficients(path: Path = COEFFICIENTS) -> dict:
    """The stored fit (read once per process: the folding pass asks for every candidate)."""
    return json.loads(Path(path).read_text())


def predict(
    net: Network, family: str, rom_bits_in_logic: int = 0, coefficients: dict | None = None
) -> dict[str, float]:
    """LUT4, FF, logic cells, EBR blocks and Fmax (MHz) of a folded ``net`` on ``family``.

    The function the folding pass can call instead of its hand-set logic-cell model.
    """
    coefficients = coefficients or load_coefficients()
    fam = coefficients["families"][family]
    f = features(net, family, rom_bits_in_logic)
    out = {
        target: sum(fam[target]["coef"][name] * f[name] for name in FEATURES[target])
        for target in TARGETS
        if target in fam
    }
    if "period_ns" in out:
        out["fmax_mhz"] = 1000 / out.pop("period_ns")
    return out


def _target(record: dict, target: str) -> float | None:
    if target == "period_ns":
        return 1000 / record["fmax_mhz"] if record.get("fmax_mhz") else None
    return record.get(target)


def fit_family(rows: list[dict]) -> dict:
    """NNLS coefficients of every quantity with at least ``MIN_POINTS`` measured rows."""
    import numpy as np
    from scipy.optimize import nnls

    fam: dict = {}
    for target in TARGETS:
        names = FEATURES[target]
        usable = [r for r in rows if _target(r, target) is not None]
        if len(usable) < MIN_POINTS:  # NNLS copes with fewer points than features
            continue
        a = np.array([[r["features"][n] for n in names] for r in usable])
        b = np.array([_target(r, target) for r in usable])
        scale = np.maximum(np.abs(a).max(axis=0), 1e-9)  # columns of similar size
        weight = 1 / np.abs(b)[:, None]  # relative error: each row divided by its target
        x, _ = nnls(a / scale * weight, b * weight[:, 0])
        coef = dict(zip(names, (x / scale).tolist(), strict=True))
        fam[target] = {"coef": coef, "points": len(usable)}
    return fam


def fit(records: list[dict], held_out_every: int | None = None) -> tuple[dict, list[dict]]:
    """Coefficients per family from the built points, and errors on held-out points.

    Default: leave-one-out, every point predicted by the model fitted to all the others
    of its family (the stored coefficients are fitted to all). ``held_out_every`` N:
    points ordered by key (a hash), every N-th left out of the one fit instead.
    ``records`` need ``family`` and ``features`` (see :func:`record_features`); points
    that did not fit count for the logic cells the packer found, and nothing else.
    """
    ok = sorted((r for r in records if measured(r)), key=lambda r: r["key"])
    coefficients: dict = {"families": {}}
    errors: list[dict] = []
    for family in sorted({r["family"] for r in ok}):
        rows = [r for r in ok if r["family"] == family]
        if held_out_every:
            test = rows[held_out_every - 1 :: held_out_every]
            fam = fit_family([r for r in rows if r not in test])
            trials = [(r, fam) for r in test]
        else:
            fam = fit_family(rows)
            trials = [(r, fit_family([q for q in rows if q is not r])) for r in rows]
        coefficients["families"][family] = fam
        for r, model in trials:
            row = {"model": Path(r["model"]).stem, "board": r["board"], "folding": r["folding"]}
            for target in TARGETS:
                real = _target(r, target)
                if target not in model or real is None:
                    continue
                coef = model[target]["coef"]
                guess = sum(coef[n] * r["features"][n] for n in FEATURES[target])
                if target == "period_ns":
                    real, guess, target = 1000 / real, 1000 / guess, "fmax_mhz"
                row[target] = (real, guess, (guess - real) / real if real else None)
            errors.append(row)
    return coefficients, errors


def measured(record: dict) -> bool:
    """A record the fit can learn from: a built point, or one nextpnr's packer counted
    before placement failed (its logic cells only: a too-large design is data too)."""
    return record.get("status") == "ok" or record.get("logic_cells") is not None


def record_features(records: list[dict]) -> None:
    """Add ``family`` and ``features`` to each measured sweep record (its folding rebuilt)."""
    import bnnhw
    from bnnhw.boards import get_board
    from bnnhw.passes.folding import fold_explicit

    nets: dict[str, Network] = {}
    for r in records:
        if not measured(r):
            continue
        if r["model"] not in nets:
            nets[r["model"]] = bnnhw.load(r["model"])
        folding = {
            str(i): {"pe": int(pe), "simd": int(simd)}
            for i, (pe, simd) in enumerate(f.split("x") for f in r["folding"].split())
        }
        net = fold_explicit(nets[r["model"]], folding, "sweep")
        r["family"] = get_board(r["board"]).family
        r["features"] = features(net, r["family"], r.get("rom_bits_in_logic") or 0)


def error_table(errors: list[dict]) -> str:
    """Markdown: measured, predicted and error per held-out point."""
    names = [t for t in ("luts", "ffs", "logic_cells", "bram", "fmax_mhz") if t]
    head = "| model | board | folding | " + " | ".join(f"{n} (real/model/err)" for n in names)
    lines = [head + " |", "|" + "---|" * (3 + len(names))]
    for e in errors:
        cells = []
        for n in names:
            if n not in e:
                cells.append("-")
                continue
            real, guess, err = e[n]
            cells.append(f"{real:.4g} / {guess:.4g} / {err:+.1%}" if err is not None else "-")
        lines.append(f"| {e['model']} | {e['board']} | {e['folding']} | {' | '.join(cells)} |")
    if errors:
        lines.append("")
        for n in names:
            errs = [abs(e[n][2]) for e in errors if n in e and e[n][2] is not None]
            if errs:
                lines.append(
                    f"- {n}: max |error| {max(errs):.1%}, mean {sum(errs) / len(errs):.1%} "
                    f"over {len(errs)} held-out points"
                )
    return "\n".join(lines) + "\n"

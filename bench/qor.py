"""Quality of results: frames/s against logic cells, per model x board, beside FINN's.

    .venv/bin/python bench/qor.py                       # the default points (~15-25 min)
    .venv/bin/python bench/qor.py --points tfc_w1a1_in1_classic:icebreaker
    .venv/bin/python bench/qor.py --table-only          # re-print from bench/results
    .venv/bin/python bench/qor.py --smoke -o /tmp/qor   # one build at 12 MHz (CI)

Each point is ``bnnhw build MODEL --board BOARD`` as a user runs it (the board's folding,
the clock search), through ``bench/boards.py``. The table gives, per point: folding, XNOR
lanes, LUT4, FF, logic cells, block RAM, Fmax and the clock the build chose, the
initiation interval (the ideal cycles per frame; ``bnnhw verify`` measures the simulated
ones and the tests hold them within 5 %), frames/s at that clock, latency, LUT4 per lane
and the share of the block-RAM bandwidth limit used (every block read at its widest port
every cycle). The PNG plots frames/s against logic cells (log-log), with the published
points below. Results go to ``bench/results/qor.md``, ``qor.json`` and ``qor.png``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
POINTS = [
    ("digits_w1a1_in1_classic", "icebreaker"),
    ("tfc_w1a1_in1_classic", "icebreaker"),
    ("tfc_w1a1_in1_classic", "ulx3s-85f"),
    ("sfc_w1a1_in1_classic", "ulx3s-85f"),
    ("cnv_w1a1_random", "ulx3s-85f"),
]
# FINN's CNV-w1a1 topology with random weights: too big to bundle, written on use
GENERATED = {"cnv_w1a1_random": "make_cnv_w1a1.py"}
SMOKE = ("digits_w1a1_in1_classic", "icebreaker")
# Published figures (other tools, other FPGAs): frames/s and LUTs where the source gives both.
ANCHORS = [
    ("FINN tfc_w1a1, PYNQ-Z1, 100 MHz (finn-examples notebook 0)", 837_019, None),
    ("FINN cnv_w1a1, PYNQ-Z1 (finn-examples)", 3_020, None),
    ("FINN SFC-max, ZC706 (FPGA'17)", 12_300_000, 91_131),
    ("FINN CNV-max, ZC706 (FPGA'17)", 21_906, None),
    ("Lattice sensAI BNN IP, iCE40 UP5K, 31.6-41.8 MHz", None, 2_700),
    ("pocket-bnn, ULX3S-85F, yosys/nextpnr, 25 MHz", None, 17_276),
]


def _board_matrix():
    """``bench/boards.py``, which runs one build and reads its report back."""
    spec = importlib.util.spec_from_file_location("bench_boards", HERE / "boards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _generated(model: str, scratch: Path) -> str:
    """The .onnx file of a model a script in models/ writes (once)."""
    path = scratch / f"{model}.onnx"
    if not path.is_file():
        script = HERE.parent / "models" / GENERATED[model]
        subprocess.run([sys.executable, str(script), "-o", str(path)], check=True)
    return str(path)


def point_row(row: dict) -> dict:
    """The QoR figures of one build row (``bench/boards.py``'s)."""
    b = row.get("board_report")
    out = {"model": row["model"], "board": row["board"], "folding": row.get("folding", "-")}
    if not b:
        return out | {"error": row.get("error", "no report")}
    return out | {
        "lanes": b.get("xnor_lanes"),
        "luts": b["luts"],
        "ffs": b["ffs"],
        "logic_cells": b["logic_cells"],
        "logic_cells_available": b["logic_cells_available"],
        "bram": b["bram"],
        "bram_available": b["bram_available"],
        "fmax_mhz": b["fmax_mhz"],
        "clock_mhz": b["clock_mhz"],
        "interval": b["initiation_interval_cycles"],
        "frames_per_s": b["accelerator_frames_per_s"],
        "latency_us": b["latency_us"],
        "lut4_per_lane": b.get("lut4_per_lane"),
        "ebr_share": b.get("ebr_bandwidth_share"),
        "error": row.get("error"),
    }


def table(points: list[dict]) -> str:
    head = (
        "| model | board | folding (PExSIMD) | lanes | LUT4 | FF | logic cells | block RAM | "
        "Fmax / clock (MHz) | cycles/frame (ideal) | frames/s | latency | LUT4/lane | "
        "EBR bandwidth used | result |"
    )
    lines = [head, "|" + "---|" * 15]
    for p in points:
        if "luts" not in p:
            lines.append(
                f"| {p['model']} | {p['board']} | {p['folding']} |"
                + " - |" * 11
                + f" {p['error']} |"
            )
            continue
        share = f"{p['ebr_share']:.1%}" if p["ebr_share"] is not None else "-"
        lines.append(
            f"| {p['model']} | {p['board']} | {p['folding']} | {p['lanes']} | {p['luts']} | "
            f"{p['ffs']} | {p['logic_cells']}/{p['logic_cells_available']} | "
            f"{p['bram']}/{p['bram_available']} | {p['fmax_mhz']} / {p['clock_mhz']:g} | "
            f"{p['interval']} | {p['frames_per_s']:,} | {p['latency_us']} us | "
            f"{p['lut4_per_lane']} | {share} | {p['error'] or 'ok'} |"
        )
    lines += ["", "Published points (other tools and FPGAs, for scale):", ""]
    lines += ["| design | frames/s | LUTs |", "|---|---|---|"]
    for name, fps, luts in ANCHORS:
        lines.append(
            f"| {name} | {(fps and f'{fps:,}') or '-'} | {(luts and f'{luts:,}') or '-'} |"
        )
    return "\n".join(lines) + "\n"


def short_name(model: str) -> str:
    """``cnv_digits_pad_w1a1_in8_classic`` -> ``cnv_digits_pad in8``: what tells points apart."""
    words = model.removesuffix("_classic").split("_")
    return " ".join(w for w in words if w != "w1a1")


# where a point's label goes, tried in turn until it is inside the axes and overlaps no
# label placed before it: beside the point above or below, right or left, then a line
# further up or down (offset points, alignment)
LABEL_SPOTS = tuple(
    ((dx, dy), ha) for dy in (4, -11, 14, -21) for dx, ha in ((4, "left"), (-4, "right"))
)


def annotate_clear(ax, text: str, xy: tuple[float, float], placed: list, **style) -> None:
    """``ax.annotate`` at the first of ``LABEL_SPOTS`` whose box is inside the axes and
    overlaps none in ``placed``, or else at the one overlapping least (display
    coordinates: the axes' scales, limits and layout must be final); its box is appended."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)

    def overlap(a: Bbox, b: Bbox) -> float:
        cut = Bbox.intersection(a, b)
        return 0.0 if cut is None else cut.width * cut.height

    best = None
    for offset, ha in LABEL_SPOTS:
        label = ax.annotate(text, xy, xytext=offset, textcoords="offset points", ha=ha, **style)
        box = label.get_window_extent(renderer)
        outside = box.width * box.height - overlap(box, frame)
        cost = outside + sum(overlap(box, other) for other in placed)
        label.remove()
        if best is None or cost < best[0]:
            best = (cost, offset, ha)
        if cost == 0:
            break
    _, offset, ha = best
    # a label a line away from its point gets a thin line to it
    far = (
        {"arrowprops": {"arrowstyle": "-", "lw": 0.5, "color": "grey"}}
        if abs(offset[1]) > 11
        else {}
    )
    label = ax.annotate(text, xy, xytext=offset, textcoords="offset points", ha=ha, **far, **style)
    placed.append(label.get_window_extent(renderer))


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ours = [p for p in points if "luts" in p]
    for p in ours:
        ax.scatter(p["logic_cells"], p["frames_per_s"], s=40)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("logic cells (iCE40 LC / ECP5 LUT4; FINN: LUT6)")
    ax.set_ylabel("frames/s at the build's clock")
    ax.set_title("bnnhw: frames/s against logic cells (x: published)")
    ax.grid(True, which="both", alpha=0.3)
    placed: list = []  # label boxes, in display coordinates
    for _name, fps, luts in ANCHORS:
        if fps and luts:
            ax.scatter(luts, fps, marker="x", color="black")
        elif fps:  # no LUT count published: a level to compare frames/s with
            ax.axhline(fps, ls="--", lw=0.8, color="grey")
    # the limits (and the layout) final before any label is placed by its box
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    fig.tight_layout()
    fig.canvas.draw()
    for name, fps, luts in ANCHORS:
        if fps and luts:
            annotate_clear(ax, name, (luts, fps), placed, fontsize=7)
        elif fps:
            label = ax.annotate(
                f"{name} (LUTs not given)",
                (0.01, fps),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                color="grey",
                xytext=(0, 3),
                textcoords="offset points",
            )
            placed.append(label.get_window_extent(fig.canvas.get_renderer()))
    for p in sorted(ours, key=lambda p: p["logic_cells"]):
        xy = (p["logic_cells"], p["frames_per_s"])
        annotate_clear(ax, f"{short_name(p['model'])} / {p['board']}", xy, placed, fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _point(text: str) -> tuple[str, str, str | None, str | None]:
    """``MODEL:BOARD[@MHZ][:FOLDING]`` -> (model, board, clock or None, folding or None)."""
    model, _, rest = text.partition(":")
    rest, _, folding = rest.partition(":")
    board, _, clock = rest.partition("@")
    return model, board, clock or None, folding or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--points",
        help="comma-separated MODEL:BOARD[@MHZ][:FOLDING] (@MHZ: one build at that clock, "
        "no clock search, for builds of many minutes; FOLDING: a --folding file instead of "
        "the board's fit, its name added to the model's in the table; default: "
        + ", ".join(f"{m}:{b}" for m, b in POINTS)
        + ")",
    )
    parser.add_argument("-o", "--output", default=str(RESULTS), help="results folder")
    parser.add_argument("--scratch", default="/tmp/bnnhw_qor", help="build folders")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per build")
    parser.add_argument("--table-only", action="store_true", help="re-print OUT/qor.json")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE} at 12 MHz only")
    args = parser.parse_args(argv)
    points: list[tuple[str, str, str | None, str | None]] = [(m, b, None, None) for m, b in POINTS]
    if args.points:
        points = [_point(p) for p in args.points.split(",")]
    if args.smoke:
        points = [(*SMOKE, "12", None)]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "qor.json"
    rows = json.loads(saved.read_text()) if saved.is_file() else []
    if not args.table_only:
        matrix = _board_matrix()
        for model, board, clock, folding in points:
            print(f"{model} x {board} ...", file=sys.stderr, flush=True)
            extra = ("--clock", clock) if clock else ()
            name = model
            if folding:
                extra += ("--folding", str(Path(folding).resolve()))
                name = f"{model} ({Path(folding).stem})"
            folder = Path(args.scratch) / f"{name}--{board}".replace(" ", "")
            folder.parent.mkdir(parents=True, exist_ok=True)
            source = _generated(model, Path(args.scratch)) if model in GENERATED else model
            row = point_row(matrix.build_one(source, board, folder, args.timeout, None, extra))
            row["model"] = name
            same = [i for i, r in enumerate(rows) if (r["model"], r["board"]) == (name, board)]
            if same:  # a rebuilt point keeps its place in the table
                rows[same[0]] = row
            else:
                rows.append(row)
            saved.write_text(json.dumps(rows, indent=1) + "\n")
    text = table(rows)
    (out / "qor.md").write_text(text)
    plot(rows, out / "qor.png")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

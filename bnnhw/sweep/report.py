"""A sweep's results: DIR/sweep.json, sweep.csv, pareto.md and pareto.png.

The Pareto front, per model and board, is the built points that no other built point
beats on both logic cells (fewer) and frames/s (more); the point ``bnnhw build`` would
pick for the board is marked in the table and ringed in the plot.
"""

from __future__ import annotations

import csv
import json
from itertools import groupby
from pathlib import Path

COLUMNS = [
    "model",
    "board",
    "folding",
    "picked",
    "status",
    "reason",
    "estimated_cells",
    "logic_cells",
    "luts",
    "ffs",
    "bram",
    "fmax_mhz",
    "interval",
    "frames_per_s",
    "pareto",
    "cached",
    "seconds",
    "verilog_hash",
    "key",
]


def pareto(records: list[dict]) -> set[str]:
    """Keys of the ok points no other ok point of the same group dominates."""
    front = set()
    ok = [r for r in records if r.get("status") == "ok"]
    for r in ok:
        dominated = any(
            q["model"] == r["model"]
            and q["board"] == r["board"]
            and q["logic_cells"] <= r["logic_cells"]
            and q["frames_per_s"] >= r["frames_per_s"]
            and (q["logic_cells"], q["frames_per_s"]) != (r["logic_cells"], r["frames_per_s"])
            for q in ok
        )
        if not dominated:
            front.add(r["key"])
    return front


def _group(r: dict) -> tuple[str, str]:
    return Path(r["model"]).stem, r["board"]


def write_all(records: list[dict], out: Path, meta: dict) -> None:
    out = Path(out)
    front = pareto(records)
    for r in records:
        r["pareto"] = r["key"] in front
    (out / "sweep.json").write_text(json.dumps({"meta": meta, "points": records}, indent=1))
    with (out / "sweep.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow(r | {"model": Path(r["model"]).stem})
    (out / "pareto.md").write_text(markdown(records, meta))
    plot(records, out / "pareto.png")


def markdown(records: list[dict], meta: dict) -> str:
    ok = sum(r.get("status") == "ok" for r in records)
    lines = [
        "# Design-space sweep",
        "",
        f"{len(records)} points, {ok} built, {len(records) - ok} failed; "
        f"{meta.get('wall_seconds', '?')} s on {meta.get('workers', '?')}. "
        "frames/s at the Fmax nextpnr reports for a placement at the board's clock. "
        "P: on the Pareto front; B: the folding `bnnhw build` picks.",
    ]
    head = (
        "| folding (PExSIMD) | | est. cells | logic cells | LUT4 | FF | EBR | Fmax MHz | "
        "cycles/frame | frames/s | result |"
    )
    for (model, board), group in groupby(sorted(records, key=_group), key=_group):
        lines += ["", f"## {model} on {board}", "", head, "|" + "---|" * 11]
        for r in sorted(group, key=lambda r: (r.get("logic_cells") or 1e9, r["folding"])):
            mark = ("P" if r.get("pareto") else "") + ("B" if r.get("picked") else "")
            fps = f"{r['frames_per_s']:,}" if r.get("frames_per_s") else "-"
            result = "ok" if r.get("status") == "ok" else str(r.get("reason")).replace("|", "/")
            cells = [
                r["folding"],
                mark,
                r.get("estimated_cells"),
                r.get("logic_cells"),
                r.get("luts"),
                r.get("ffs"),
                r.get("bram"),
                r.get("fmax_mhz"),
                r.get("interval"),
                fps,
                result[:160],
            ]
            lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot(records: list[dict], path: Path) -> None:
    """frames/s against logic cells, one panel per model x board, front joined by a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [(k, list(g)) for k, g in groupby(sorted(records, key=_group), key=_group)]
    cols = min(2, max(1, len(groups)))
    rows = -(-max(1, len(groups)) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    for ax, ((model, board), group) in zip(axes.flat, groups, strict=False):
        ok = [r for r in group if r.get("status") == "ok"]
        ax.scatter(
            [r["logic_cells"] for r in ok],
            [r["frames_per_s"] for r in ok],
            s=18,
            color="tab:blue",
            label="built",
        )
        front = sorted((r for r in ok if r.get("pareto")), key=lambda r: r["logic_cells"])
        ax.plot(
            [r["logic_cells"] for r in front],
            [r["frames_per_s"] for r in front],
            "o-",
            color="tab:red",
            ms=5,
            label="Pareto front",
        )
        for r in ok:
            if r.get("picked"):
                ax.scatter(
                    r["logic_cells"],
                    r["frames_per_s"],
                    s=160,
                    facecolors="none",
                    edgecolors="green",
                    linewidths=2,
                    label="bnnhw build's pick",
                )
        failed = len(group) - len(ok)
        ax.set_title(f"{model} on {board} ({len(ok)} built, {failed} failed)", fontsize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("logic cells (nextpnr)")
        ax.set_ylabel("frames/s at Fmax")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

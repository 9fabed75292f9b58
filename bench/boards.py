"""Bitstreams for every bundled MLP model x supported board, as one markdown table.

    .venv/bin/python bench/boards.py                        # the whole matrix (~1-2 h)
    .venv/bin/python bench/boards.py --models digits_w1a1_in1_classic --boards icebreaker
    .venv/bin/python bench/boards.py --table-only -o /tmp/board_matrix   # re-print
    .venv/bin/python bench/boards.py --smoke -o /tmp/smoke   # one refusal, no synthesis (CI)

Each cell runs ``bnnhw build MODEL --board BOARD`` (the board's default folding unless
``--max-lanes``) in its own folder under ``-o``, one at a time, with a timeout, and reads
the board report back, or the one-line reason the build was refused. The table is printed
and written to ``OUT/boards.md`` (the raw rows to ``OUT/boards.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = [
    "digits_w1a1_in1_classic",
    "digits_w1a1_in8_classic",
    "tfc_w1a1_in1_classic",
    "tfc_w1a1_in8_classic",
    "sfc_w1a1_in1_classic",
]
BOARDS = ["icebreaker", "icesugar", "ulx3s-85f", "icestick"]
# a cell refused before synthesis (its ROMs exceed the board's block RAM): seconds, not minutes
SMOKE = ("sfc_w1a1_in1_classic", "icestick")


def build_one(
    model: str,
    board: str,
    folder: Path,
    timeout: float,
    lanes: int | None,
    extra: tuple[str, ...] = (),
) -> dict:
    """``bnnhw build`` of one cell (``extra``: more of its options); the row for the table.

    ``model``: a bundled model's name, or the path of an .onnx file (named by its stem).
    """
    path = Path(model) if model.endswith(".onnx") else ROOT / "models" / f"{model}.onnx"
    model = path.stem
    command = [
        str(Path(sys.executable).parent / "bnnhw"),
        "build",
        str(path),
        "--board",
        board,
        "-o",
        str(folder),
        "--force",
    ]
    if lanes:
        command += ["--max-lanes", str(lanes)]
    command += extra
    start = time.perf_counter()
    row = {"model": model, "board": board}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return row | {"error": f"no result within {timeout:.0f} s", "seconds": timeout}
    row["seconds"] = round(time.perf_counter() - start)
    (folder.parent / f"{folder.name}.log").write_text(done.stdout + done.stderr)
    report_path = folder / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if report.get("layers"):
        row["folding"] = " ".join(f"{la['pe']}x{la['simd']}" for la in report["layers"])
        row["lanes"] = max(la["pe"] * la["simd"] for la in report["layers"])
        row["ii"] = report["initiation_interval"]
    if done.returncode == 0 and "board" in report:
        row["board_report"] = report["board"]
    else:
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        row["error"] = (errors or done.stderr.strip().splitlines()[-1:] or ["failed"])[-1]
        row["error"] = row["error"].removeprefix("bnnhw: error: ")
        if "board" in report:  # built, then refused (timing)
            row["board_report"] = report["board"]
    return row


def _cell(used, total) -> str:
    if used is None:
        return "-"
    return f"{used}/{total} ({used / total:.0%})" if total else str(used)


def table(rows: list[dict]) -> str:
    head = (
        "| model | board | folding (PExSIMD per layer) | LC | FF | BRAM | SPRAM | "
        "Fmax / clock (MHz) | frames/s at clock | latency | frames/s over UART | result |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        b = r.get("board_report")
        folding = r.get("folding", "-")
        if b:
            fmax = f"{b['fmax_mhz']} / {b['clock_mhz']:g}"
            fps = f"{b['accelerator_frames_per_s']:,}"
            latency = f"{b['latency_cycles']} cyc = {b['latency_us']} us"
            cells = [
                _cell(b["logic_cells"], b["logic_cells_available"]),
                str(b["ffs"]),
                _cell(b["bram"], b["bram_available"]),
                "-" if b.get("spram") is None else str(b["spram"]),
                fmax,
                fps,
                latency,
                f"{b['uart_frames_per_s']} ({b['uart_bytes_per_frame']} B at {b['baud']})",
            ]
        else:
            cells = ["-"] * 8
        result = "ok" if "error" not in r else r["error"].replace("|", "/")
        lines.append(
            f"| {r['model']} | {r['board']} | {folding} | {' | '.join(cells)} | {result} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated stems")
    parser.add_argument("--boards", default=",".join(BOARDS), help="comma-separated names")
    parser.add_argument("-o", "--output", default="/tmp/bnnhw_board_matrix", help="scratch folder")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per build")
    parser.add_argument("--max-lanes", type=int, help="override every board's default")
    parser.add_argument("--table-only", action="store_true", help="re-print OUT/boards.json")
    parser.add_argument(
        "--smoke", action="store_true", help=f"one cell refused before synthesis: {SMOKE}"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.models, args.boards = SMOKE
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "boards.json"
    rows = json.loads(saved.read_text()) if saved.is_file() else []
    if not args.table_only:
        for model in args.models.split(","):
            for board in args.boards.split(","):
                print(f"{model} x {board} ...", flush=True)
                row = build_one(
                    model, board, out / f"{model}--{board}", args.timeout, args.max_lanes
                )
                print(f"  {row.get('error', 'ok')} ({row.get('seconds')} s)", flush=True)
                rows = [r for r in rows if (r["model"], r["board"]) != (model, board)] + [row]
                saved.write_text(json.dumps(rows, indent=1) + "\n")
    order = {(m, b): (i, j) for i, m in enumerate(MODELS) for j, b in enumerate(BOARDS)}
    rows.sort(key=lambda r: order.get((r["model"], r["board"]), (99, 99)))
    text = table(rows)
    (out / "boards.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

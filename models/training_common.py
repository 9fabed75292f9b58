"""What ``models/train.py`` and ``models/train_cnv.py`` share around their networks: the
check of each exported file against PyTorch, its README row, the README table and the
command line. No torch import at module level, so the README code runs without it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0
VARIANTS = ("dynamo", "classic")
COLUMNS = {
    "file": "file", "topology": "topology", "dataset": "dataset", "input": "input",
    "export": "export", "qonnx": "test acc. (QONNX exec)", "torch": "test acc. (PyTorch)",
    "epochs": "epochs", "seed": "seed", "time": "training time", "size": "size",
    "command": "reproduce",
}  # fmt: skip
_ROW = re.compile(r"\| (`[^`]+\.onnx`) \|")


def check_export(
    path: Path, out: np.ndarray, ref: np.ndarray, acc: float, torch_acc: float, failures: list
) -> None:
    """Print the exported file's line; an argmax that differs from PyTorch is a failure."""
    flips = int(np.sum(out.argmax(1) != ref.argmax(1)))
    diff = float(np.abs(out - ref).max())
    print(f"  {path.name}: {path.stat().st_size} bytes, QONNX {acc:.2%}, PyTorch "
          f"{torch_acc:.2%}, argmax disagreements {flips}, max |diff| {diff:.2e}",
          flush=True)  # fmt: skip
    if flips:
        failures.append(f"{path.name} disagrees with PyTorch on {flips} images")


def readme_row(
    path: Path,
    spec,
    topology: str,
    bits: int,
    accuracies: tuple[float, float],
    minutes: float,
    command: str,
) -> dict[str, str]:
    """The README row of one exported file (its export variant ends its name)."""
    acc, torch_acc = accuracies
    return {
        "file": f"`{path.name}`", "topology": topology,
        "dataset": "digits" if spec.dataset == "digits" else "MNIST",
        "input": f"{bits}-bit", "export": path.stem.rsplit("_", 1)[1],
        "qonnx": f"{acc:.2%}", "torch": f"{torch_acc:.2%}", "epochs": str(spec.epochs),
        "seed": str(SEED), "time": f"{minutes:.1f} min", "size": f"{path.stat().st_size:,} B",
        "command": f"`{command}`",
    }  # fmt: skip


def readme_table(specs: dict, rows: list[dict[str, str]], old: str) -> tuple[str, float, str]:
    """The markdown table of ``specs``' files (this run's rows over those found in ``old``),
    the training minutes it lists (one per dynamo/classic pair) and the batch sizes."""
    keep = {m.group(1): line for line in old.splitlines() if (m := _ROW.match(line))}
    for row in rows:
        keep[row["file"]] = "| " + " | ".join(row[c] for c in COLUMNS) + " |"
    order = [f"`{n}_in{b}_{v}.onnx`" for n, s in specs.items() for b in s.input_bits
             for v in VARIANTS]  # fmt: skip
    lines = [keep[f] for f in order if f in keep]
    minutes = sum(float(line.split(" | ")[9].split()[0]) for line in lines[::2])
    table = ["| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS), *lines]
    batch = " / ".join(sorted({f"{s.batch} ({s.dataset})" for s in specs.values()}))
    return "\n".join(table), minutes, batch


def cli(
    specs: dict,
    run_one: Callable[[str], list[dict[str, str]]],
    write: Callable[[list[dict[str, str]]], None],
    failures: list[str],
) -> None:
    """The command line of a training script: ``--all`` or ``--model NAME``."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true", help="train and export every model")
    group.add_argument("--model", choices=sorted(specs), help="train and export one topology")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in specs if args.all else [args.model]:
        rows += run_one(name)
    write(rows)
    print(f"wrote {HERE / 'README.md'}")
    if failures:
        sys.exit("export is wrong: " + "; ".join(failures))

"""Fit the resource model (bnnhw/sweep/resources.py) to sweep results; store coefficients.

    .venv/bin/python bench/fit_resources.py                 # bench/results/sweep/sweep.json
    .venv/bin/python bench/fit_resources.py A/sweep.json B/sweep.json
    .venv/bin/python bench/fit_resources.py --qor   # also bench/results/qor.json's builds

Leave-one-out: each built point is predicted by the model fitted to the other points of
its FPGA family; the table of those errors goes to ``bench/results/sweep_fit.md``. The
coefficients fitted to all points go to ``bnnhw/sweep/coefficients.json``, which
``resources.predict`` reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def qor_records(path: Path) -> list[dict]:
    """``bench/qor.py``'s builds (``bnnhw build`` as a user runs it) as sweep records."""
    import hashlib

    records = []
    for row in json.loads(path.read_text()):
        if "luts" not in row or row.get("error"):
            continue
        key = hashlib.sha256(f"{row['model']}|{row['board']}|{row['folding']}".encode())
        records.append(
            row
            | {
                "model": str(ROOT / "models" / f"{row['model']}.onnx"),
                "key": f"qor-{key.hexdigest()[:12]}",
                "status": "ok",
            }
        )
    return [r for r in records if Path(r["model"]).is_file()]


def main(argv: list[str] | None = None) -> int:
    from bnnhw.sweep import resources

    argv = list(argv or [])
    qor = "--qor" in argv
    argv = [a for a in argv if a != "--qor"]
    paths = [Path(p) for p in (argv or [HERE / "results" / "sweep" / "sweep.json"])]
    records = qor_records(HERE / "results" / "qor.json") if qor else []
    for path in paths:
        for r in json.loads(path.read_text())["points"]:
            model = Path(r["model"])
            if not model.is_file():  # bench results name the bundled model only
                r["model"] = str(ROOT / "models" / model.name)
            records.append(r)
    resources.record_features(records)
    coefficients, errors = resources.fit(records)
    coefficients["fitted_to"] = (["bench/results/qor.json"] if qor else []) + [
        str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)
        for p in (q.resolve() for q in paths)
    ]
    resources.COEFFICIENTS.write_text(json.dumps(coefficients, indent=1) + "\n")
    table = resources.error_table(errors)
    text = (
        "# Resource model: error on points held out of the fit\n\n"
        f"`.venv/bin/python bench/fit_resources.py{' --qor' if qor else ''}` "
        f"({len(records)} points; leave-one-out: each point predicted by the model fitted to "
        "the others of its family; "
        "columns: measured / model / error)\n\n" + table
    )
    (HERE / "results" / "sweep_fit.md").write_text(text)
    print(text)
    print(f"wrote {resources.COEFFICIENTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

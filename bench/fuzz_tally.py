"""The fuzz test's tally as a table: the same seeded cases as tests/test_fuzz.py.

    .venv/bin/python bench/fuzz_tally.py          # ~1 min on a 2-core machine

Runs the five Hypothesis tests of tests/test_fuzz.py directly (same code, so the same
derandomized examples) and prints one row per family: cases, clean refusals, accepted and
equal to the reference, and the failure kinds (internal, messy, wrong, clobbered), with
each failure's detail below the table. Exit status 1 if any case failed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_fuzz  # noqa: E402  (tests/ is not a package)


def main() -> int:
    start = time.perf_counter()
    for name, run in (
        ("model:digits", lambda: test_fuzz.test_mutated_models("digits")),
        ("model:cnv", lambda: test_fuzz.test_mutated_models("cnv")),
        ("ir", test_fuzz.test_mutated_ir_folders),
        ("arrays", test_fuzz.test_mutated_input_arrays),
        ("args", test_fuzz.test_mutated_arguments),
    ):
        try:
            run()
        except AssertionError as exc:  # Hypothesis re-raises the (shrunk) failing case
            print(f"{name}: stopped at a failing case: {str(exc).splitlines()[0]}")
    print(test_fuzz.TALLY.table())
    print(f"({time.perf_counter() - start:.0f} s)")
    for failure in test_fuzz.TALLY.failures:
        print("FAILED", failure)
    return 1 if test_fuzz.TALLY.failures else 0


if __name__ == "__main__":
    sys.exit(main())

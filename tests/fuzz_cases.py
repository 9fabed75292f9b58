"""The fuzzer behind tests/test_fuzz.py and bench/fuzz_tally.py: mutations and the oracle.

Every case is one ``bnnhw`` command run in process with file descriptor 2 captured (so
onnxruntime's C++ log lines count too). Its outcome is one of:

* ``refused``   exit 2 with exactly one line ``bnnhw: error: ...`` naming the file or
  argument at fault (or argparse's own usage + error lines for a malformed command line);
* ``equal``     exit 0, nothing on stderr, and the classes equal those of the reference
  executor (``qonnx.core.onnx_exec.execute_onnx`` via ``bnnhw.frontend.reference``) on
  boundary and random frames; for an edited IR folder, which has no ONNX graph to compare
  with, well-formed classes;
* a failure:    ``internal`` (exit 1, a bug), ``messy`` (a refusal with stray output or
  not naming anything given), ``wrong`` (a result that differs from the reference, or a
  graph the reference cannot run), ``clobbered`` (an existing file overwritten without
  --force).

The mutations live in fuzz_models.py (ONNX graphs) and fuzz_inputs.py (IR folders, input
arrays, arguments). They draw from a ``draw(strategy)`` callable (Hypothesis'
``data.draw``), so the same code is seeded and reproducible in both callers.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from bnnhw.cli.main import main
from bnnhw.frontend.reference import ReferenceExecutor

ROOT = Path(__file__).resolve().parent.parent
BASES = {
    "digits": ROOT / "models" / "digits_w1a1_in1_classic.onnx",
    "cnv": ROOT / "models" / "cnv_digits_nopad_w1a1_in1_classic.onnx",
}
FAILURES = ("internal", "messy", "wrong", "clobbered")
Draw = Callable[[st.SearchStrategy], Any]


def frames() -> np.ndarray:
    """Six (1, 8, 8) frames: the 1-bit input's boundary 0.5 (2x - 1 = 0), just either side
    of it, 0, 1, and random values."""
    rng = np.random.default_rng(11)
    x = np.empty((6, 1, 8, 8), np.float32)
    x[0], x[1], x[2] = 0.5, 0.0, 1.0
    x[3] = np.where(rng.random((1, 8, 8)) < 0.5, np.float32(0.49999997), np.float32(0.50000006))
    x[4:] = rng.random((2, 1, 8, 8), dtype=np.float32)
    return x


# ----------------------------------------------------------------------------- running


@dataclass
class Result:
    rc: int
    err: str


def run_cli(argv: list[str]) -> Result:
    """``bnnhw ARGV`` in process; stderr is everything written to fd 2 or sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        py_err = io.StringIO()
        try:
            with contextlib.redirect_stderr(py_err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    rc = main(argv)
                except SystemExit as exc:  # argparse
                    rc = exc.code if isinstance(exc.code, int) else 2
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        err = sink.read().decode(errors="replace") + py_err.getvalue()
    return Result(rc, err)


def classify(res: Result, names: list[str], accepted: Callable[[], str | None]) -> tuple[str, str]:
    """(outcome, detail) of one case; ``accepted()`` checks an exit-0 result (None: good)."""
    lines = res.err.splitlines()
    if res.rc == 2:
        if lines and lines[0].startswith("usage:") and ": error: " in lines[-1]:
            return "refused", lines[-1]
        if len(lines) == 1 and lines[0].startswith("bnnhw: error: "):
            if any(n and n in lines[0] for n in names):
                return "refused", lines[0]
            return "messy", f"names none of {names}: {lines[0]}"
        return "messy", res.err[:500]
    if res.rc == 0:
        if res.err:
            return "messy", f"exit 0 with stderr: {res.err[:500]}"
        problem = accepted()
        return ("equal", "") if problem is None else ("wrong", problem)
    return "internal", f"exit {res.rc}: {res.err[:500]}"


_UNCHANGED: dict[Path, ReferenceExecutor] = {}


def reference(model: Path) -> ReferenceExecutor:
    """The reference for ``model``; the bundled (unmutated) files are loaded once."""
    if model in BASES.values():
        if model not in _UNCHANGED:
            _UNCHANGED[model] = ReferenceExecutor(model)
        return _UNCHANGED[model]
    return ReferenceExecutor(model)


def same_as_reference(model: Path, x: np.ndarray, out: Path) -> str | None:
    try:
        expected = reference(model)(x.astype(np.float32)).argmax(axis=1)
    except Exception as exc:  # the reference cannot run what bnnhw accepted
        return f"reference fails on an accepted graph: {type(exc).__name__}: {exc}"[:500]
    got = np.load(out)
    if not np.array_equal(got, expected):
        return f"classes {got.tolist()} but the reference says {expected.tolist()}"
    return None


# ----------------------------------------------------------------------------- mutations


def pick(draw: Draw, items: list) -> Any:
    return items[draw(st.integers(0, len(items) - 1))]


def new_array(draw: Draw, a: np.ndarray) -> np.ndarray:
    kind = draw(
        st.sampled_from(
            [
                "nan",
                "inf",
                "zeros",
                "negate",
                "random",
                "huge",
                "dtype",
                "flat",
                "lead1",
                "transpose",
                "truncate",
                "empty",
                "scalar",
            ]
        )
    )
    a = np.array(a, copy=True)
    if kind in ("nan", "inf") and a.size and a.dtype.kind == "f":
        a.reshape(-1)[draw(st.integers(0, a.size - 1))] = np.nan if kind == "nan" else np.inf
    elif kind == "zeros":
        a = np.zeros_like(a)
    elif kind == "negate":
        a = -a if a.dtype.kind != "b" else ~a
    elif kind == "random":
        a = np.random.default_rng(draw(st.integers(0, 99))).normal(size=a.shape).astype(a.dtype)
    elif kind == "huge" and a.dtype.kind == "f":
        a = a * np.float32(1e30)
    elif kind == "dtype":
        dtype = draw(st.sampled_from(["float64", "float16", "int8", "int64", "uint8", "bool"]))
        with np.errstate(all="ignore"):
            a = np.nan_to_num(a).astype(dtype)
    elif kind == "flat":
        a = a.reshape(-1)
    elif kind == "lead1":
        a = a[None]
    elif kind == "transpose":
        a = a.T
    elif kind == "truncate" and a.size > 1:
        a = a.reshape(-1)[: draw(st.integers(1, a.size - 1))]
    elif kind == "empty":
        a = a.reshape(-1)[:0]
    elif kind == "scalar" and a.size:
        a = a.reshape(-1)[0]
    return np.asarray(a)


class Tally:
    """Outcome counts over a run, printed as the table the issue asks for."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {}
        self.failures: list[str] = []

    def add(self, family: str, outcome: str, detail: str, what: str) -> None:
        self.counts.setdefault(family, Counter())[outcome] += 1
        if outcome in FAILURES:
            self.failures.append(f"{family} [{what}]: {outcome}: {detail}")

    def table(self) -> str:
        cols = ["cases", "refused", "equal", *FAILURES]
        rows = [f"{'family':<14}" + "".join(f"{c:>10}" for c in cols)]
        total = Counter()
        for family, c in self.counts.items():
            total.update(c)
            rows.append(self._row(family, c, cols))
        rows.append(self._row("total", total, cols))
        return "\n".join(rows)

    @staticmethod
    def _row(name: str, c: Counter, cols: list[str]) -> str:
        values = [sum(c.values()), *(c[k] for k in cols[1:])]
        return f"{name:<14}" + "".join(f"{v:>10}" for v in values)

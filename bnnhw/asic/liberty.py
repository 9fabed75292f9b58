"""Where the standard-cell library is, and the few facts the reports need from its .lib.

The default library is OSU 0.18 um, shipped by Debian's ``qflow-tech-osu018`` package.
Installing that package pulls in all of qflow, so ``scripts/fetch_osu018.sh`` (run by
``make asic-lib``) extracts the .deb into ``~/.cache/bnnhw/osu018/`` instead;
``BNNHW_OSU018`` points somewhere else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from bnnhw.errors import BnnhwError, InputError

OSU_FILES = ("osu018_stdcells.lib", "osu018_stdcells.v")
HOW_TO_GET = (
    "run `make asic-lib` (or scripts/fetch_osu018.sh: apt-get download qflow-tech-osu018 "
    "and dpkg -x into ~/.cache/bnnhw/osu018), set BNNHW_OSU018 to a folder holding "
    f"{OSU_FILES[0]}, or pass --liberty FILE.lib"
)


class LibraryMissing(BnnhwError):
    """No Liberty file given and the default OSU 0.18 um library is not installed."""


def osu018_folder() -> Path:
    """Where the default library is looked for (it may not exist)."""
    env = os.environ.get("BNNHW_OSU018")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "bnnhw" / "osu018"


def default_library() -> tuple[Path, Path | None]:
    """(Liberty file, cell models for simulation) of the default library, or LibraryMissing."""
    folder = osu018_folder()
    for candidate in (folder, folder / "usr/share/qflow/tech/osu018"):
        lib = candidate / OSU_FILES[0]
        if lib.is_file():
            models = candidate / OSU_FILES[1]
            return lib, models if models.is_file() else None
    raise LibraryMissing(
        f"no standard-cell library: {folder / OSU_FILES[0]} not found; {HOW_TO_GET}"
    )


@dataclass
class Library:
    """A Liberty file's name, cell areas, sequential cells and pins."""

    path: Path
    name: str
    areas: dict[str, float]
    sequential: set[str]
    outputs: dict[str, list[str]] = field(default_factory=dict)
    time_unit: str = "1ns"
    inputs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def nand2(self) -> tuple[str, float]:
        """The smallest two-input NAND: the unit of gate equivalents (GE)."""
        nands = [(a, c) for c, a in self.areas.items() if re.fullmatch(r"(?i).*nand2(x?1|_1)?", c)]
        if not nands:
            nands = [(a, c) for c, a in self.areas.items() if "nand2" in c.lower()]
        if not nands:
            raise InputError(f"{self.path}: no NAND2 cell, so no gate-equivalent count")
        area, cell = min(nands)
        return cell, area


_CELL = re.compile(r'\bcell\s*\(\s*"?([^")\s]+)"?\s*\)\s*\{')


def read_library(path: Path) -> Library:
    """Cell names, areas, flip-flops/latches and output pins, by a light scan of the .lib."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the Liberty file ({exc.strerror})") from None
    head = re.search(r'\blibrary\s*\(\s*"?([^")\s]+)"?\s*\)', text)
    starts = [(m.start(), m.group(1)) for m in _CELL.finditer(text)]
    if head is None or not starts:
        raise InputError(f"{path}: not a Liberty file (no library(...) with cells); give a .lib")
    unit = re.search(r'time_unit\s*:\s*"([^"]+)"', text)
    areas, sequential, outputs, inputs = {}, set(), {}, {}
    for (start, name), (end, _) in zip(starts, [*starts[1:], (len(text), "")], strict=True):
        body = text[start:end]
        area = re.search(r"\barea\s*:\s*([0-9.eE+-]+)", body)
        areas[name] = float(area.group(1)) if area else 0.0
        if re.search(r"\b(ff|latch|ff_bank|latch_bank)\s*\(", body):
            sequential.add(name)
        pins = list(re.finditer(r'\bpin\s*\(\s*"?([^")\s]+)"?\s*\)\s*\{([^{}]*)', body))
        outputs[name] = [p.group(1) for p in pins if re.search(r"direction\s*:\s*output", p[2])]
        inputs[name] = [p.group(1) for p in pins if re.search(r"direction\s*:\s*input", p[2])]
    time_unit = unit.group(1) if unit else "1ns"
    return Library(Path(path), head.group(1), areas, sequential, outputs, time_unit, inputs)

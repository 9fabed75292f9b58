"""Program a board with the bitstream of a build folder (iceprog or openFPGALoader).

The programmer comes from the board's data; the ``ICEPROG`` / ``OPENFPGALOADER``
environment variables name another program (a stub in the tests). The exact command is
printed before it runs, and a failure with no board attached says so plainly.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from bnnhw.errors import BoardError, InputError

if TYPE_CHECKING:
    from bnnhw.boards.targets import Board


def bitstream_path(folder: str | Path, board: Board) -> Path:
    path = Path(folder) / "gateware" / board.bitstream
    if not path.is_file():
        raise InputError(
            f"{folder}: no {board.name} bitstream ({path} is missing); run "
            f"bnnhw build MODEL --board {board.name} -o {folder} first"
        )
    return path


def flash_command(folder: str | Path, board: Board) -> list[str]:
    bitstream = bitstream_path(folder, board)
    program = os.environ.get(board.programmer_env) or board.programmer[0]
    args = [a.replace("{bitstream}", str(bitstream)) for a in board.programmer[1:]]
    return [program, *args]


def flash(folder: str | Path, board: Board, *, echo=print) -> list[str]:
    """Run the programmer; returns the command. BoardError if it fails."""
    command = flash_command(folder, board)
    if shutil.which(command[0]) is None:
        raise InputError(
            f"programmer {command[0]!r} not found on PATH; install it (apt install "
            f"{'fpga-icestorm' if command[0] == 'iceprog' else 'openfpgaloader'}) or set "
            f"{board.programmer_env} to its path"
        )
    echo(f"running: {shlex.join(command)}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise BoardError(f"{command[0]} did not finish in 300 s") from None
    output = (done.stdout + done.stderr).strip()
    if output:
        echo(output)
    if done.returncode != 0:
        last = output.splitlines()[-1] if output else "no output"
        raise BoardError(
            f"{command[0]} failed with status {done.returncode} ({last}): is the "
            f"{board.title} plugged in by USB, and is it the only one? (command: "
            f"{shlex.join(command)})"
        )
    return command

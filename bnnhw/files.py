"""The user's files: names checked, arrays read, results written without clobbering."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bnnhw.errors import InputError

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # np.savez: a zip of .npy files


def refuse_empty(verb: str, names: Mapping[str, object]) -> None:
    """An empty string is never a file name: pathlib would read it as "." (this folder).

    ``names`` are a verb's arguments by their CLI names (``model``, ``output``, ...); the
    message names the flag, as the CLI and the API both report it.
    """
    for name, value in names.items():
        if value == "":
            label = name.upper() if name in ("model", "inputs") else "--" + name.replace("_", "-")
            raise InputError(f"{verb}: {label} is empty; give a file or folder name")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def load_array(path: str | Path) -> np.ndarray:
    """A .npy file holding at least one frame, with a one-line error for anything else.

    The header is checked first, so a .npz or a text file is named for what it is
    instead of whatever np.load guesses (it calls anything unknown pickled data).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({_reason(exc)})") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path} is a directory; give a .npy file (save inputs with np.save)")
    try:
        with path.open("rb") as f:
            magic = f.read(len(NPY_MAGIC))
            if magic.startswith(ZIP_MAGIC):
                raise InputError(
                    f"{path}: a .npz archive, which bnnhw does not read; give one .npy array "
                    "(N, *input shape) saved with np.save"
                )
            if magic != NPY_MAGIC:
                raise InputError(
                    f"{path}: not a .npy file (no NumPy header); save inputs with np.save"
                )
            f.seek(0)
            x = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "pickle" in reason:
            reason = "it holds Python objects, which need pickle"
        raise InputError(
            f"{path}: not a readable NumPy .npy array ({reason}); save float32 inputs with np.save"
        ) from None
    if x.size == 0:
        raise InputError(f"{path}: holds no frames (shape {x.shape}); give at least one frame")
    return x


def writable(path: str | Path, force: bool) -> Path:
    """The exact file a result goes to, checked before any work is done.

    np.save appends ".npy" to a name without it, so checking ``path`` and saving with
    np.save would look at one file and write another: results are written to exactly
    this path by :func:`save_array`. A symlink counts as existing even when it dangles.
    """
    path = Path(path)
    try:
        path.lstat()
        exists = True
    except FileNotFoundError:
        exists = False
    except OSError as exc:
        raise InputError(f"{path}: cannot write there ({_reason(exc)})") from None
    if path.is_dir():
        raise InputError(f"{path} is a directory; give the name of the file to write")
    if exists and not force:
        raise InputError(f"{path} exists; pass --force to overwrite it")
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    return path


def save_array(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as .npy to exactly ``path``, never leaving a file half written.

    A regular file (or nothing) at ``path`` is replaced through a temporary file in the
    same folder, so a failed write (disk full) keeps the old file. Anything else (a
    device such as /dev/null, a FIFO) is written in place.
    """
    try:
        if path.exists() and not path.is_file():
            with path.open("wb") as f:
                np.save(f, array)
            return
        old_mode = path.stat().st_mode & 0o7777 if path.exists() else None
        tmp = path.parent / f".bnnhw-{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise InputError(
                f"{path}: cannot create a file in {path.parent} ({_reason(exc)})"
            ) from None
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, array)
            if old_mode is not None:
                os.chmod(tmp, old_mode)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise InputError(f"{path}: cannot write it ({_reason(exc)})") from None


def checked_path(path: str | Path) -> Path:
    """A path the system can look up (it may not exist).

    pathlib's exists()/is_dir() raise on a name too long for the file system instead of
    answering, so every path from the command line is looked up here first.
    """
    path = Path(path)
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as exc:
        raise InputError(f"{path}: cannot use this path ({_reason(exc)})") from None
    return path


def build_folder(path: str | Path) -> Path:
    """A folder a compile can create or write into: not a file, under a folder."""
    path = checked_path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise InputError(f"{path} exists and is not a folder; give a folder to write the build to")
    ancestor = path.parent
    while not os.path.lexists(ancestor) and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{path}: {ancestor} is a file, not a folder")
    return path

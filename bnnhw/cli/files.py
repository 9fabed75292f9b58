"""Reading the user's arrays and writing results without clobbering their files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bnnhw.errors import InputError


def load_array(path: str | Path) -> np.ndarray:
    """A .npy file, with a one-line error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"{path}: not a NumPy .npy file ({reason}); save inputs with np.save"
        ) from None


def writable(path: str | Path, force: bool) -> Path:
    """Refuse to overwrite an existing file unless the user said --force."""
    path = Path(path)
    if path.exists() and not force:
        raise InputError(f"{path} exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    return path

"""Parameter checks at construction, with messages that say what to change."""

from __future__ import annotations

import atexit
import gc
import re
import warnings
from typing import NoReturn

from amaranth.hdl import UnusedElaboratable

# Amaranth warns about an elaboratable created but never used when the garbage collector
# frees it, whenever that is. Refused ones are kept here until the interpreter exits, and
# freed then with their warnings filtered out.
_refused: list[object] = []


def refuse(component: object, message: str) -> NoReturn:
    """Raise ValueError for a component that will never be elaborated.

    The refusal is the user's message; Amaranth's "created but never used" about the same
    component would only repeat it, so it is not shown.
    """
    if not _refused:
        atexit.register(_free_refused)
    _refused.append(component)
    raise ValueError(message)


def _free_refused() -> None:
    for component in _refused:
        unused = re.escape(f"{component!r} created but never used")
        warnings.filterwarnings("ignore", message=unused, category=UnusedElaboratable)
    _refused.clear()
    gc.collect()

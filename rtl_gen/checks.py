"""Parameter checks at construction, with messages that say what to change."""

from __future__ import annotations

from typing import NoReturn


def refuse(component: object, message: str) -> NoReturn:
    """Raise ValueError for a component that will never be elaborated.

    Amaranth warns about elaboratables created but never used; a refused one is not the
    user's mistake to hear about twice, so it is silenced first.
    """
    component._MustUse__silence = True
    raise ValueError(message)

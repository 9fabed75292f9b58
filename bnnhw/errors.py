"""Errors a user can act on.

Every message is one line that names the file, node or layer at fault and says what is
supported; the CLI prints it as ``bnnhw: error: <message>`` and exits with status 2.
"""


class BnnhwError(Exception):
    """Base class: anything raised as a BnnhwError is the user's to fix, not a bug."""


class ModelError(BnnhwError):
    """The model file cannot be read, or uses something bnnhw does not support."""


class InputError(BnnhwError):
    """Data handed to bnnhw (input vectors, dataset files, output paths) is unusable."""


class BoardError(BnnhwError):
    """The design does not fit the board, misses its clock, or the board does not answer."""


class DoesNotFit(BoardError):
    """The placer ran out of room. ``logic_cells``: the cells the packed design needs (a
    real measurement, which a resource model can learn from), or None if unknown."""

    def __init__(self, message: str, logic_cells: int | None = None) -> None:
        super().__init__(message)
        self.logic_cells = logic_cells

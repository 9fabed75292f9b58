"""Open FPGA boards: targets, bitstreams (YoWASP), flashing and the UART host link.

``BOARDS`` / ``get_board`` describe the supported boards; ``synthesize`` builds a
bitstream and its report; ``flash`` programs a board; ``Link`` classifies frames on it.
"""

from bnnhw.boards.flash import flash
from bnnhw.boards.link import Link
from bnnhw.boards.synth import synthesize
from bnnhw.boards.targets import BOARDS, Board, get_board
from bnnhw.errors import BoardError

__all__ = ["BOARDS", "Board", "BoardError", "Link", "flash", "get_board", "synthesize"]

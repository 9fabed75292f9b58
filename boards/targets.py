"""Supported boards, as data: platform, clock, RAM kinds, UART, programmer.

Every board runs the design at its oscillator's frequency unless ``--clock`` asks for a PLL
(``bnnhw.boards.pll``), and talks to the host through the UART its USB bridge exposes
(``uart`` resource 0).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property

from bnnhw.errors import InputError


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    platform: str  # "module:Class" in amaranth_boards, imported on use
    family: str  # "ice40" or "ecp5"
    luts: int  # LUT4s (logic cells) on the device
    ram_kinds: tuple[str, ...]  # "EBR" (4 kbit iCE40 / 18 kbit ECP5), "SPRAM" (256 kbit)
    ram_blocks: int  # EBR blocks
    programmer: tuple[str, ...]  # argv, "{bitstream}" replaced; argv[0] is the env var's default
    programmer_env: str  # ICEPROG or OPENFPGALOADER
    spram_kbit: int = 0  # single-port RAM the bitstream cannot initialise (iCE40UP)
    pll_pad: bool = False  # iCE40: the oscillator pin is the PLL's own pad (SB_PLL40_PAD)
    uart: tuple[str, int] = ("uart", 0)
    default_baud: int = 115_200
    # a fabric register after each layer's memory reads (``MVTU.read_register``): an
    # ECP5 DP16KD read is 5.8 ns from clock to data without the output register Yosys'
    # synth_ecp5 does not infer, and it fed the XNORs in the same cycle
    read_register: bool = False

    @cached_property
    def _platform(self):
        return self.platform_class()()

    @property
    def clock_hz(self) -> float:
        """The board oscillator, as amaranth-boards describes it."""
        return float(self._platform.default_clk_frequency)

    @property
    def clock_mhz(self) -> float:
        return self.clock_hz / 1e6

    @property
    def device(self) -> str:
        return self._platform.device

    @property
    def bitstream(self) -> str:
        return "top.bin" if self.family == "ice40" else "top.bit"

    def platform_class(self):
        module, cls = self.platform.split(":")
        return getattr(importlib.import_module(f"amaranth_boards.{module}"), cls)


BOARDS: dict[str, Board] = {
    b.name: b
    for b in [
        Board(
            name="icebreaker",
            title="1BitSquared iCEBreaker (iCE40UP5K-SG48)",
            platform="icebreaker:ICEBreakerPlatform",
            family="ice40",
            luts=5280,
            ram_kinds=("EBR", "SPRAM"),
            ram_blocks=30,
            programmer=("iceprog", "{bitstream}"),
            programmer_env="ICEPROG",
            spram_kbit=1024,
            pll_pad=True,
            # FT2232H (12 Mbaud at most): 1 Mbaud is 12 clocks a bit at 12 MHz and within
            # 2 % at every PLL clock from 25 MHz up; 3 Mbaud misses 2 % at most PLL clocks
            default_baud=1_000_000,
        ),
        Board(
            name="ulx3s-85f",
            title="Radiona ULX3S (ECP5 LFE5U-85F)",
            platform="ulx3s:ULX3S_85F_Platform",
            family="ecp5",
            luts=83_640,
            ram_kinds=("EBR",),
            ram_blocks=208,
            programmer=("openFPGALoader", "-b", "ulx3s", "{bitstream}"),
            programmer_env="OPENFPGALOADER",
            # FT231X (3 Mbaud at most): 3 Mbaud is 8.33 clocks a bit at 25 MHz (4 % off);
            # 1 Mbaud is 25 clocks, and within 2 % at every PLL clock above
            default_baud=1_000_000,
            read_register=True,
        ),
        Board(
            name="icesugar",
            title="MuseLab iCESugar (iCE40UP5K-SG48)",
            platform="icesugar:ICESugarPlatform",
            family="ice40",
            luts=5280,
            ram_kinds=("EBR", "SPRAM"),
            ram_blocks=30,
            programmer=("openFPGALoader", "-b", "icesugar", "{bitstream}"),
            programmer_env="OPENFPGALOADER",
            spram_kbit=1024,
            pll_pad=True,
        ),
        Board(
            name="icestick",
            title="Lattice iCEstick (iCE40HX1K-TQ144)",
            platform="icestick:ICEStickPlatform",
            family="ice40",
            luts=1280,
            ram_kinds=("EBR",),
            ram_blocks=16,
            programmer=("iceprog", "{bitstream}"),
            programmer_env="ICEPROG",
        ),
    ]
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise InputError(f"unknown board {name!r}; supported: {', '.join(BOARDS)}") from None

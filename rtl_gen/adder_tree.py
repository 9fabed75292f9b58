"""A pipelined adder tree: the popcount / signed sum at the heart of every PE."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value


def adder_tree(m: Module, terms: list[Value], register_every: int, name: str) -> tuple[Value, int]:
    """Sum ``terms`` pairwise, with a register after every ``register_every`` levels.

    ``register_every=0`` builds a purely combinational tree. Returns the sum and the
    number of register stages (the latency the caller must delay side-band data by).
    """
    return _reduce(m, list(terms), 0, register_every, name)


def xnor_popcount(
    m: Module, x: Value, w: Value, register_every: int, name: str
) -> tuple[Value, int]:
    """Count the bits where ``x`` and ``w`` agree, as :func:`adder_tree` of XNORs would.

    The first level is written as logic, not as adders: two lanes' XNORs and their
    half-adder (sum, carry) depend on four bits, one LUT4 each, so a pair of lanes costs
    two LUT4 and no carry chain. Above it every adder is a carry chain only as wide as
    its range (values up to 2**k in k + 1 bits). On iCE40 this is about 2.5 LUT4 per lane
    (``bench/lanes.py``), against 3.1 for a tree of 1-bit XNOR terms.
    """
    agree = [~(x[i] ^ w[i]) for i in range(len(x))]
    pairs = [Cat(a ^ b, a & b) for a, b in zip(agree[::2], agree[1::2], strict=False)]
    level = pairs + ([agree[-1]] if len(agree) % 2 else [])
    if len(agree) == 1:
        return level[0], 0
    stages = 0
    if register_every == 1 and len(level) > 1:
        level, stages = register_each(m, level, f"{name}_l1"), 1
    return _reduce(m, level, 1, register_every, name, stages)


def _reduce(
    m: Module, level: list[Value], depth: int, register_every: int, name: str, stages: int = 0
) -> tuple[Value, int]:
    """Pairwise sums from tree level ``depth`` on (see :func:`adder_tree`)."""
    while len(level) > 1:
        level = [a + b for a, b in zip(level[::2], level[1::2], strict=False)] + (
            [level[-1]] if len(level) % 2 else []
        )
        depth += 1
        if register_every and depth % register_every == 0 and len(level) > 1:
            level = register_each(m, level, f"{name}_l{depth}")
            stages += 1
    return level[0], stages


def register_each(m: Module, values: list[Value], name: str) -> list[Value]:
    """Each of ``values`` through a register of its own shape (one pipeline stage).

    Reset-less: data whose valid flag travels beside them. A reset on every register of
    every PE's tree made the reset net's fan-out the ECP5's worst path (TFC 64x72: 7.4 ns
    of route from the reset synchroniser to a PE's tree register at the die's far side).
    """
    regs = []
    for i, v in enumerate(values):
        r = Signal(v.shape(), name=f"{name}_{i}", reset_less=True)
        m.d.sync += r.eq(v)
        regs.append(r)
    return regs


def delay(m: Module, value: Value, cycles: int, name: str, *, reset_less: bool = False) -> Value:
    """``value`` delayed by ``cycles`` registers (``reset_less``: data that need no reset)."""
    for i in range(cycles):
        r = Signal(value.shape(), name=f"{name}_d{i}", reset_less=reset_less)
        m.d.sync += r.eq(value)
        value = r
    return value


def tree_stages(terms: int, register_every: int) -> int:
    """The register stages :func:`adder_tree` inserts for ``terms`` inputs."""
    stages, depth = 0, 0
    while terms > 1:
        terms = (terms + 1) // 2
        depth += 1
        if register_every and depth % register_every == 0 and terms > 1:
            stages += 1
    return stages

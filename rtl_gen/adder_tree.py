"""A pipelined adder tree: the popcount / signed sum at the heart of every PE."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value


def adder_tree(m: Module, terms: list[Value], register_every: int, name: str) -> tuple[Value, int]:
    """Sum ``terms`` pairwise, with a register after every ``register_every`` levels.

    ``register_every=0`` builds a purely combinational tree. Returns the sum and the
    number of register stages (the latency the caller must delay side-band data by).
    """
    level, stages, depth = list(terms), 0, 0
    while len(level) > 1:
        level = [a + b for a, b in zip(level[::2], level[1::2], strict=False)] + (
            [level[-1]] if len(level) % 2 else []
        )
        depth += 1
        if register_every and depth % register_every == 0 and len(level) > 1:
            level = _register(m, level, f"{name}_l{depth}")
            stages += 1
    return level[0], stages


def _register(m: Module, values: list[Value], name: str) -> list[Value]:
    regs = []
    for i, v in enumerate(values):
        r = Signal(v.shape(), name=f"{name}_{i}")
        m.d.sync += r.eq(v)
        regs.append(r)
    return regs


def delay(m: Module, value: Value, cycles: int, name: str) -> Value:
    """``value`` delayed by ``cycles`` registers."""
    for i in range(cycles):
        r = Signal(value.shape(), name=f"{name}_d{i}")
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

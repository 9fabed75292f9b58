"""The IR: a typed chain of binary layers, the only thing stages after the frontend see."""

from bnnhw.ir.network import ElementwiseOp, InputSpec, Layer, Network, Window
from bnnhw.ir.serialize import load_network, save_network

__all__ = [
    "ElementwiseOp",
    "InputSpec",
    "Layer",
    "Network",
    "Window",
    "load_network",
    "save_network",
]

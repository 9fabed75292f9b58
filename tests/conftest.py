"""Shared fixtures: the bundled models and their test data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "models").glob("*.onnx"))

settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci")


def model_ids() -> list[str]:
    return [p.stem for p in MODELS]


def model_family(model: Path) -> str:
    """digits, tfc, sfc, cnv_digits or cnv_mnist: which data and accuracy floor apply."""
    parts = model.name.split("_")
    return "_".join(parts[:2]) if parts[0] == "cnv" else parts[0]


def split_frames(model: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The full test split a bundled model was evaluated on, shaped for its input."""
    from bnnhw import datasets

    if model_family(model) in ("digits", "cnv_digits"):
        _, _, x, labels = datasets.load_digits_split()
    else:
        folder = datasets.default_mnist_folder()
        if folder is None:
            pytest.fail("MNIST folder not found: set BNNHW_MNIST (needed for MNIST models)")
        images, labels = datasets.load_mnist(folder, split="test")
        x = datasets.mnist_to_float(images)
    return (x[:limit], labels[:limit]) if limit else (x, labels)

"""Save and load a Network as ``network.json`` (structure) + ``network.npz`` (arrays).

Lossless: arrays keep their dtype and bits in the .npz, Python floats are written by
``repr`` in JSON. Any later stage can be re-run from a saved IR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bnnhw.errors import InputError
from bnnhw.ir.network import ElementwiseOp, InputSpec, Layer, Network, Window

FORMAT_VERSION = 1
JSON_NAME = "network.json"
NPZ_NAME = "network.npz"

_LAYER_ARRAYS = (
    "weights",
    "acc_scale",
    "thresholds",
    "directions",
    "score_mul",
    "score_add",
    "out_scale",
    "out_bias",
    "pool_and",
)


def _window_to_json(win: Window | None) -> dict | None:
    if win is None:
        return None
    return {
        "channels": win.channels,
        "height": win.height,
        "width": win.width,
        "kernel": list(win.kernel),
        "stride": list(win.stride),
        "pads": list(win.pads),
    }


def _window_from_json(item: dict | None) -> Window | None:
    if item is None:
        return None
    return Window(
        channels=item["channels"],
        height=item["height"],
        width=item["width"],
        kernel=tuple(item["kernel"]),
        stride=tuple(item["stride"]),
        pads=tuple(item["pads"]),
    )


class _ArrayStore:
    """Collects arrays under unique keys while the JSON skeleton is written."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, key: str, value: np.ndarray | None) -> str | None:
        if value is None:
            return None
        self.arrays[key] = np.asarray(value)
        return key


def _ops_to_json(ops: list[ElementwiseOp], prefix: str, store: _ArrayStore) -> list[dict]:
    return [
        {
            "kind": op.kind,
            "source": op.source,
            "params": {k: store.put(f"{prefix}.{i}.{k}", v) for k, v in op.params.items()},
        }
        for i, op in enumerate(ops)
    ]


def _ops_from_json(items: list[dict], arrays: Any) -> list[ElementwiseOp]:
    return [
        ElementwiseOp(
            kind=item["kind"],
            source=item["source"],
            params={k: arrays[key] for k, key in item["params"].items()},
        )
        for item in items
    ]


def save_network(net: Network, folder: str | Path) -> Path:
    """Write ``net`` into ``folder`` (created if needed); returns the JSON path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    store = _ArrayStore()
    spec = net.input
    doc = {
        "format": "bnnhw-ir",
        "version": FORMAT_VERSION,
        "name": net.name,
        "source": net.source,
        "input": {
            "shape": list(spec.shape),
            "bits": spec.bits,
            "signed": spec.signed,
            "narrow": spec.narrow,
            "scale": spec.scale,
            "rounding": spec.rounding,
            "source": spec.source,
            "channels_last": spec.channels_last,
            "preprocess": _ops_to_json(spec.preprocess, "input.pre", store),
        },
        "layers": [
            {
                "name": layer.name,
                "in_bits": layer.in_bits,
                "in_range": list(layer.in_range),
                "is_output": layer.is_output,
                "pe": layer.pe,
                "simd": layer.simd,
                "window": _window_to_json(layer.window),
                "pool": _window_to_json(layer.pool),
                "post_ops": _ops_to_json(layer.post_ops, f"layer{i}.post", store),
                **{k: store.put(f"layer{i}.{k}", getattr(layer, k)) for k in _LAYER_ARRAYS},
            }
            for i, layer in enumerate(net.layers)
        ],
    }
    np.savez(folder / NPZ_NAME, **store.arrays)
    path = folder / JSON_NAME
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def load_network(folder: str | Path) -> Network:
    """Read a Network written by :func:`save_network`."""
    folder = Path(folder)
    json_path, npz_path = folder / JSON_NAME, folder / NPZ_NAME
    if not json_path.is_file() or not npz_path.is_file():
        raise InputError(f"{folder}: not a saved bnnhw IR (needs {JSON_NAME} and {NPZ_NAME})")
    try:
        doc = json.loads(json_path.read_text())
        if doc.get("format") != "bnnhw-ir" or doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"unknown format {doc.get('format')!r} v{doc.get('version')}")
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        spec = doc["input"]
        net = Network(
            name=doc["name"],
            source=doc["source"],
            input=InputSpec(
                shape=tuple(spec["shape"]),
                bits=spec["bits"],
                signed=spec["signed"],
                narrow=spec["narrow"],
                scale=spec["scale"],
                rounding=spec["rounding"],
                source=spec["source"],
                channels_last=int(spec.get("channels_last", 0)),
                preprocess=_ops_from_json(spec["preprocess"], arrays),
            ),
            layers=[
                Layer(
                    name=item["name"],
                    in_bits=item["in_bits"],
                    in_range=tuple(item["in_range"]),
                    is_output=item["is_output"],
                    pe=item.get("pe"),
                    simd=item.get("simd"),
                    window=_window_from_json(item.get("window")),
                    pool=_window_from_json(item.get("pool")),
                    post_ops=_ops_from_json(item["post_ops"], arrays),
                    **{k: None if item.get(k) is None else arrays[item[k]] for k in _LAYER_ARRAYS},
                )
                for item in doc["layers"]
            ],
        )
        net.validate()
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise InputError(f"{folder}: damaged bnnhw IR ({exc})") from None
    return net

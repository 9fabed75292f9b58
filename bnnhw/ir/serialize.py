"""Save and load a Network as ``network.json`` (structure) + ``network.npz`` (arrays).

Lossless: arrays keep their dtype and bits in the .npz, Python floats are written by
``repr`` in JSON. Any later stage can be re-run from a saved IR.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bnnhw.errors import InputError
from bnnhw.ir.network import ElementwiseOp, InputSpec, Layer, Network, Window
from bnnhw.ir.validate import check_network

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
    ints = {k: item[k] for k in ("channels", "height", "width", "kernel", "stride", "pads")}
    flat = [ints["channels"], ints["height"], ints["width"]]
    for k, n in (("kernel", 2), ("stride", 2), ("pads", 4)):
        if not isinstance(ints[k], list) or len(ints[k]) != n:
            raise ValueError(f"window {k} {ints[k]!r}: expected a list of {n} integers")
        flat += ints[k]
    if any(isinstance(v, bool) or not isinstance(v, int) for v in flat):
        raise ValueError(f"window {item!r}: sizes must be integers")
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


def _ops_from_json(items: list[dict], arrays: dict[str, np.ndarray]) -> list[ElementwiseOp]:
    if not isinstance(items, list):
        raise ValueError(f"ops {items!r} are not a list")
    return [
        ElementwiseOp(
            kind=item["kind"],
            source=item["source"],
            params={k: _array(arrays, key) for k, key in item["params"].items()},
        )
        for item in items
    ]


def _array(arrays: dict[str, np.ndarray], key: object) -> np.ndarray | None:
    if key is None:
        return None
    if not isinstance(key, str) or key not in arrays:
        raise ValueError(f"array {key!r} is not in {NPZ_NAME}")
    return arrays[key]


def _layer_from_json(item: dict, arrays: dict[str, np.ndarray]) -> Layer:
    if not isinstance(item.get("in_range"), list):
        raise ValueError(f"in_range {item.get('in_range')!r} is not a list")
    return Layer(
        name=item["name"],
        in_bits=item["in_bits"],
        in_range=tuple(item["in_range"]),
        is_output=item["is_output"],
        pe=item.get("pe"),
        simd=item.get("simd"),
        window=_window_from_json(item.get("window")),
        pool=_window_from_json(item.get("pool")),
        post_ops=_ops_from_json(item["post_ops"], arrays),
        **{k: _array(arrays, item.get(k)) for k in _LAYER_ARRAYS},
    )


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


_JSON_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError)


def _read_arrays(npz_path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise InputError(
            f"{npz_path}: damaged bnnhw IR arrays ({type(exc).__name__}: {exc}); save the IR again"
        ) from None


def load_network(folder: str | Path) -> Network:
    """Read a Network written by :func:`save_network`, refusing a damaged or edited one.

    Errors name the file and the layer; nothing read is trusted until
    :func:`~bnnhw.ir.validate.check_network` has passed.
    """
    folder = Path(folder)
    json_path, npz_path = folder / JSON_NAME, folder / NPZ_NAME
    if not json_path.is_file() or not npz_path.is_file():
        raise InputError(f"{folder}: not a saved bnnhw IR (needs {JSON_NAME} and {NPZ_NAME})")
    try:
        doc = json.loads(json_path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InputError(f"{json_path}: not readable JSON ({reason})") from None
    if not isinstance(doc, dict):
        raise InputError(f"{json_path}: holds a {type(doc).__name__}, not a bnnhw IR object")
    if doc.get("format") != "bnnhw-ir" or doc.get("version") != FORMAT_VERSION:
        raise InputError(
            f"{json_path}: damaged bnnhw IR: unknown format {doc.get('format')!r} version "
            f"{doc.get('version')!r}; bnnhw reads bnnhw-ir version {FORMAT_VERSION}"
        )
    arrays = _read_arrays(npz_path)
    where = "input"
    try:
        spec = doc["input"]
        shape = spec["shape"]
        if not isinstance(shape, list):
            raise ValueError(f"shape {shape!r} is not a list")
        input_spec = InputSpec(
            shape=tuple(shape),
            bits=spec["bits"],
            signed=spec["signed"],
            narrow=spec["narrow"],
            scale=spec["scale"],
            rounding=spec["rounding"],
            source=spec["source"],
            channels_last=spec.get("channels_last", 0),
            preprocess=_ops_from_json(spec["preprocess"], arrays),
        )
        if not isinstance(doc["layers"], list):
            raise ValueError(f"layers {doc['layers']!r} are not a list")
        layers = []
        for i, item in enumerate(doc["layers"]):
            name = item.get("name") if isinstance(item, dict) else None
            where = f"layer {i}" + (f" ({name!r})" if isinstance(name, str) else "")
            layers.append(_layer_from_json(item, arrays))
        where = ""
        net = Network(name=doc["name"], source=doc["source"], input=input_spec, layers=layers)
        check_network(net)
    except _JSON_ERRORS as exc:
        reason = f"missing {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
        where = f", {where}" if where else ""
        raise InputError(f"{json_path}: damaged bnnhw IR{where}: {reason[:300]}") from None
    return net

"""Fuzz cases: edited IR folders, odd input arrays and command lines (see fuzz_cases.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from fuzz_cases import BASES, Draw, classify, frames, new_array, pick, run_cli, same_as_reference
from hypothesis import strategies as st

ODD_VALUES = [
    None,
    True,
    0,
    -1,
    1,
    7,
    1.5,
    -2.5,
    "abc",
    "",
    [],
    {},
    [1, 2],
    [0, 0],
    1e308,
    10**30,
    [[1]],
    {"a": 1},
]


# ----------------------------------------------------------------------------- IR folders


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _paths(v, (*prefix, i))
    return found


def ir_case(draw: Draw, good: Path, folder: Path) -> tuple[str, str, str]:
    """Predict with an edited copy of the saved IR ``good``."""
    ir = folder / "ir"
    ir.mkdir(exist_ok=True)
    doc = json.loads((good / "network.json").read_text())
    with np.load(good / "network.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    if draw(st.booleans()):
        path = pick(draw, _paths(doc))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.integers(0, 4)) == 0 and isinstance(parent, dict):
            del parent[path[-1]]
            what = f"delete {path}"
        else:
            parent[path[-1]] = pick(draw, ODD_VALUES)
            what = f"set {path} = {parent[path[-1]]!r}"
    else:
        key = pick(draw, sorted(arrays))
        arrays[key] = new_array(draw, arrays[key])
        what = f"array {key} -> {arrays[key].dtype}{arrays[key].shape}"
    (ir / "network.json").write_text(json.dumps(doc))
    np.savez(ir / "network.npz", **arrays)
    x_path, out = folder / "x.npy", folder / "out.npy"
    np.save(x_path, frames())
    out.unlink(missing_ok=True)
    res = run_cli(["predict", str(ir), str(x_path), "-o", str(out)])

    def well_formed() -> str | None:  # a valid edit is a different network: no reference
        got = np.load(out)
        ok = got.shape == (6,) and got.dtype.kind == "i" and 0 <= got.min() <= got.max() < 10
        return None if ok else f"malformed classes {got!r}"

    names = ["network.json", "network.npz", x_path.name]
    return (*classify(res, names, well_formed), what)


# ----------------------------------------------------------------------------- inputs


def array_case(draw: Draw, folder: Path, good_ir: Path) -> tuple[str, str, str]:
    """Predict the digits model (its saved IR, for speed) on a mutated input array or a
    file that is not one; the reference runs the digits ONNX file."""
    x = frames()
    kind = draw(
        st.sampled_from(
            ["dtype", "big_endian", "fortran", "shape", "values", "values", "file", "object"]
        )
    )
    path = folder / "in.npy"
    path.unlink(missing_ok=True)
    if kind == "dtype":
        dtype = draw(
            st.sampled_from(
                ["float16", "float64", "int32", "uint8", "bool", "complex64", "longdouble"]
            )
        )
        x = x.astype(dtype)
    elif kind == "big_endian":
        x = x.astype(">f4")
    elif kind == "fortran":
        x = np.asfortranarray(x)
    elif kind == "shape":
        shape = draw(
            st.sampled_from(
                [
                    (6, 64),
                    (6, 8, 8),
                    (1, 8, 8),
                    (0, 1, 8, 8),
                    (),
                    (6, 1, 8, 8, 1),
                    (2, 3, 1, 8, 8),
                    (6, 2, 8, 8),
                ]
            )
        )
        size = int(np.prod(shape))
        x = np.resize(x, shape) if size else np.zeros(shape, np.float32)
    elif kind == "values":
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -0.0, 1e-45, 0.5]))
        count = draw(st.integers(1, 64))
        x.reshape(-1)[draw(st.lists(st.integers(0, x.size - 1), min_size=1, max_size=count))] = (
            value
        )
    elif kind == "object":
        x = np.array([x[0], "a"], dtype=object)
    if kind == "file":
        content = draw(st.sampled_from([b"", b"hello\n", b"\x93NUMPY", b"PK\x03\x04junk"]))
        path.write_bytes(content)
    else:
        np.save(path, x, allow_pickle=True)
    out = folder / "out.npy"
    out.unlink(missing_ok=True)
    res = run_cli(["predict", str(good_ir), str(path), "-o", str(out)])
    outcome = classify(res, [path.name], lambda: same_as_reference(BASES["digits"], x, out))
    return (*outcome, f"{kind} {getattr(x, 'dtype', '')}{getattr(x, 'shape', '')}")


# ----------------------------------------------------------------------------- arguments


def args_case(draw: Draw, folder: Path, good_ir: Path) -> tuple[str, str, str]:
    """A command line assembled from good and bad pieces."""
    x_path = folder / "x.npy"
    np.save(x_path, frames())
    existing = folder / "existing.npy"
    existing.write_bytes(b"keep me")
    (folder / "dangling.npy").unlink(missing_ok=True)
    (folder / "dangling.npy").symlink_to(folder / "nowhere.npy")
    (folder / "nowhere.npy").unlink(missing_ok=True)
    new_out = folder / "new_out.npy"
    new_out.unlink(missing_ok=True)
    models = [
        str(BASES["digits"]),
        str(good_ir),
        str(folder / "missing.onnx"),
        str(folder),
        "x" * 300,
        "",
        str(x_path),
        "/dev/null",
    ]
    outputs = [
        str(new_out),
        str(existing),
        str(folder),
        "/dev/full",
        "/proc/x.npy",
        str(folder / ("y" * 300)),
        "",
        str(folder / "dangling.npy"),
        str(folder / "no" / "dir.npy"),
    ]
    verb = draw(st.sampled_from(["predict", "predict", "inspect", "evaluate"]))
    argv = [verb, pick(draw, models)]
    if verb == "predict":
        argv += [pick(draw, [str(x_path), str(folder / "missing.npy"), str(folder), ""])]
        if draw(st.integers(0, 5)):
            argv += ["-o", pick(draw, outputs)]
        argv += [flag for flag in ("--force", "--scores") if draw(st.booleans())]
    elif verb == "evaluate":
        if draw(st.booleans()):
            argv += ["--limit", draw(st.sampled_from(["-5", "0", "1", "7", "abc", "10**3"]))]
        if draw(st.booleans()):
            argv += ["--dataset", draw(st.sampled_from(["digits", "mnist", "cifar"]))]
        if draw(st.integers(0, 3)) == 0:
            argv += ["--data-dir", pick(draw, [str(folder), str(folder / "missing")])]
        if draw(st.integers(0, 3)) == 0:
            argv += ["--reference"]
    if draw(st.integers(0, 9)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), "--bogus")
    res = run_cli(argv)
    if existing.read_bytes() != b"keep me" and "--force" not in argv:
        return "clobbered", f"{existing} overwritten", " ".join(argv)

    def accepted() -> str | None:
        if verb != "predict":
            return None
        out = Path(argv[argv.index("-o") + 1])
        if not out.is_file():
            return None  # /dev/null-like targets
        model = Path(argv[1])
        onnx_model = model if model.suffix == ".onnx" else BASES["digits"]
        if "--scores" in argv:
            return None if np.load(out).shape[0] == 6 else "scores of the wrong length"
        return same_as_reference(onnx_model, frames(), out)

    names = [a for a in argv if len(a) > 1] + [Path(a).name for a in argv if a]
    return (*classify(res, names, accepted), " ".join(a[:40] for a in argv))

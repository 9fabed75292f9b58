"""Fuzz cases: the bundled digits models with their ONNX graphs mutated (see fuzz_cases.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from fuzz_cases import BASES, Draw, classify, frames, new_array, pick, run_cli, same_as_reference
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

OPS = [
    "Relu",
    "Sigmoid",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "MatMul",
    "Gemm",
    "Identity",
    "Dropout",
    "Transpose",
    "Flatten",
    "Reshape",
    "Abs",
    "Neg",
    "Sign",
    "BatchNormalization",
    "MaxPool",
    "Conv",
    "BipolarQuant",
    "Quant",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "Cast",
    "Foo",
]


def _attribute(draw: Draw, node: onnx.NodeProto) -> None:
    action = draw(st.sampled_from(["delete", "int", "ints", "float", "string", "bogus"]))
    names = [a.name for a in node.attribute]
    name = pick(draw, names) if names and action != "bogus" else "bogus_attr"
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    if action == "delete":
        return
    value = {
        "int": draw(st.integers(-3, 9)),
        "ints": draw(st.lists(st.integers(-2, 9), min_size=1, max_size=5)),
        "float": draw(st.sampled_from([0.0, -1.0, 1e-30, 1e30, float("nan")])),
        "string": draw(st.sampled_from(["", "HALF_EVEN", "NONSENSE"])),
        "bogus": 1,
    }[action]
    node.attribute.append(helper.make_attribute(name, value))


def mutate_model(draw: Draw, model: onnx.ModelProto) -> str:
    """Apply one to three mutations in place; returns what was done (for messages)."""
    done = []
    for _ in range(draw(st.integers(1, 3))):
        g = model.graph
        kind = draw(
            st.sampled_from(
                [
                    "delete",
                    "swap_op",
                    "attribute",
                    "init",
                    "init",
                    "input",
                    "structure",
                    "no_op",
                    "swap_inputs",
                ]
            )
        )
        node_index = draw(st.integers(0, len(g.node) - 1))
        node = g.node[node_index]
        if kind == "delete":
            if node.input:
                for other in g.node:
                    other.input[:] = [
                        node.input[0] if i == node.output[0] else i for i in other.input
                    ]
                    for out in g.output:
                        if out.name == node.output[0]:
                            out.name = node.input[0]
            g.node.remove(node)
        elif kind == "swap_op":
            node.op_type = draw(st.sampled_from(OPS))
            if node.op_type in ("BipolarQuant", "Quant"):
                node.domain = "qonnx.custom_op.general"
        elif kind == "attribute":
            _attribute(draw, node)
        elif kind == "init":
            t = pick(draw, list(g.initializer))
            t.CopyFrom(numpy_helper.from_array(new_array(draw, numpy_helper.to_array(t)), t.name))
        elif kind == "input":
            tt = g.input[0].type.tensor_type
            what = draw(st.sampled_from(["elem", "dim", "drop_dim"]))
            if what == "elem":
                tt.elem_type = draw(
                    st.sampled_from(
                        [
                            TensorProto.STRING,
                            TensorProto.INT8,
                            TensorProto.DOUBLE,
                            TensorProto.FLOAT16,
                        ]
                    )
                )
            elif what == "dim":
                dim = tt.shape.dim[draw(st.integers(0, len(tt.shape.dim) - 1))]
                dim.dim_value = draw(st.sampled_from([0, 2, 3, 7, 9, 64]))
            else:
                del tt.shape.dim[-1]
        elif kind == "structure":
            what = draw(st.sampled_from(["dup_node", "reorder", "rename", "value_info", "opset"]))
            if what == "dup_node":
                g.node.insert(node_index, onnx.NodeProto.FromString(node.SerializeToString()))
            elif what == "reorder" and node_index + 1 < len(g.node):
                nxt = onnx.NodeProto.FromString(g.node[node_index + 1].SerializeToString())
                g.node.remove(g.node[node_index + 1])
                g.node.insert(node_index, nxt)
            elif what == "rename":
                node.output[0] = node.output[0] + "_renamed"
            elif what == "value_info" and g.value_info:
                g.value_info.append(g.value_info[0])
            elif what == "opset":
                model.opset_import[0].version = draw(st.integers(1, 22))
        elif kind == "no_op":  # must not change the result
            op = draw(st.sampled_from(["Identity", "Dropout"]))
            mid = f"{node.output[0]}_noop"
            for other in g.node:
                other.input[:] = [mid if i == node.output[0] else i for i in other.input]
            for out in g.output:
                if out.name == node.output[0]:
                    out.name = mid
            g.node.insert(node_index + 1, helper.make_node(op, [node.output[0]], [mid]))
        elif kind == "swap_inputs" and len(node.input) > 1:
            node.input[0], node.input[1] = node.input[1], node.input[0]
        done.append(f"{kind}@{node_index}")
    return ", ".join(done)


def model_case(draw: Draw, base: str, folder: Path) -> tuple[str, str, str]:
    """(outcome, detail, mutations) of predicting with a mutated bundled model."""
    model = onnx.load(BASES[base])
    what = mutate_model(draw, model)
    path, x_path, out = folder / "case.onnx", folder / "x.npy", folder / "out.npy"
    path.write_bytes(model.SerializeToString())
    x = frames()
    np.save(x_path, x)
    out.unlink(missing_ok=True)
    res = run_cli(["predict", str(path), str(x_path), "-o", str(out)])
    outcome = classify(res, [path.name, x_path.name], lambda: same_as_reference(path, x, out))
    return (*outcome, what)

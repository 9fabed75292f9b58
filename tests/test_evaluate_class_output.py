"""`bnnhw evaluate --reference` on a graph whose output is already the class (TopK/ArgMax)."""

from __future__ import annotations

import onnx
import pytest
from dialect_graphs import digits_spec, finn_graph

from bnnhw.cli.main import main


@pytest.mark.parametrize("tail", ["topk", "argmax"])
def test_reference_classes_are_compared_as_classes(tmp_path, capsys, tail):
    path = tmp_path / "finn.onnx"
    onnx.save(finn_graph(digits_spec(1), "streamlined", tail=tail), path)
    assert main(["evaluate", str(path), "--reference", "--limit", "60"]) == 0
    out = capsys.readouterr().out
    assert "60/60 same class, class output" in out

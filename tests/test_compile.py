"""`bnnhw compile`: every step saved, the report consistent with the hardware."""

from __future__ import annotations

import json

import pytest

from bnnhw.build import compile_model, load_build
from bnnhw.cli.main import main
from bnnhw.errors import InputError

from conftest import ROOT

MODEL = ROOT / "models" / "digits_w1a1_in8_classic.onnx"


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return compile_model(MODEL, tmp_path_factory.mktemp("build"), max_lanes=128)


def test_compile_writes_every_step(build):
    folder = build.folder
    assert (folder / f"{build.top}.v").read_text().count(f"module {build.top}(") == 1
    for step in ("1_import", "2_streamline", "3_fold"):
        assert (folder / "steps" / step / "network.json").is_file()
    report = json.loads((folder / "report.json").read_text())
    layers = report["layers"]
    assert report["initiation_interval"] == max(layer["cycles_per_frame"] for layer in layers)
    for layer in layers:
        assert layer["cycles_per_frame"] == (layer["neurons"] // layer["pe"]) * (
            layer["fan_in"] // layer["simd"]
        )
    text = (folder / "report.md").read_text()
    assert "initiation interval" in text and all(layer["name"] in text for layer in layers)


def test_build_folder_reloads_without_recompiling(build):
    again = load_build(build.folder)
    assert again.top == build.top and again.report == json.loads(
        (build.folder / "report.json").read_text()
    )
    assert [(la.pe, la.simd) for la in again.net.layers] == [
        (la.pe, la.simd) for la in build.net.layers
    ]
    from bnnhw.rtl_gen import Accelerator, to_verilog

    accelerator = Accelerator(again.net)
    to_verilog(accelerator, "again")  # elaborated: its ports are the ones reported
    assert again.port_format() == accelerator.port_format
    assert again.report["interface"]["out_word"] == accelerator.port_format.out_word


def test_compile_refuses_to_overwrite(build, capsys):
    assert main(["compile", str(MODEL), "-o", str(build.folder)]) == 2
    assert "--force" in capsys.readouterr().err
    with pytest.raises(InputError, match="not a bnnhw build folder"):
        load_build(ROOT / "models")


def test_compile_cli_with_folding_file(tmp_path, capsys):
    folding = tmp_path / "fold.json"
    folding.write_text(
        json.dumps({str(i): {"pe": 2, "simd": 32} for i in range(3)} | {"3": {"pe": 5, "simd": 8}})
    )
    assert main(["compile", str(MODEL), "-o", str(tmp_path / "b"), "--folding", str(folding)]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert [(la["pe"], la["simd"]) for la in report["layers"]] == [(2, 32)] * 3 + [(5, 8)]
    assert "initiation interval 64 cycles/frame" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"0": {"pe": 3, "simd": 32}}))
    assert main(["compile", str(MODEL), "-o", str(tmp_path / "c"), "--folding", str(bad)]) == 2
    assert "PE=3 does not divide" in capsys.readouterr().err

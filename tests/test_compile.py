"""`bnnhw compile`: every step saved, the report consistent with the hardware."""

from __future__ import annotations

import json

import pytest

from bnnhw.build import compile_model, load_build
from bnnhw.cli.main import main
from bnnhw.errors import InputError

from conftest import ROOT

MODEL = ROOT / "models" / "digits_w1a1_in8_classic.onnx"

# Worked by hand for MODEL (8x8 digits, 8-bit input, layers 64 -> 64 -> 64 -> 64 -> 10) at
# max_lanes=128. The largest layer, 64 x 64 = 4096 products, over 128 lanes sets the target:
# 4096 / 128 = 32 cycles. A 64 x 64 layer needs >= 4096 / 32 = 128 lanes: PE 2 x SIMD 64
# (PE 1 would need SIMD 128 > fan-in), NF 32 x SF 1 = 32 cycles. The 10 x 64 output layer
# needs >= 640 / 32 = 20 lanes: PE 5 x SIMD 4 (PE 1 x SIMD 20 pads 64 inputs to 4 words, 40
# cycles; PE 2 x SIMD 10 to 7, 35 cycles), NF 2 x SF 16 = 32 cycles.
HAND_FOLDING = [(2, 64)] * 3 + [(5, 4)]
HAND_CYCLES = 32
# Ports: the first layer takes SIMD 64 x 8 bits = 512-bit words, 64 x 8 bits = one word per
# frame. The result: class in ceil(log2 10) = 4 bits, then 10 scores; a score is the output
# accumulator (weights x 1-bit inputs over fan-in 64: -64..64), 7 bits for 64 plus a sign.
HAND_PORTS = {"in_word": 512, "frame_words": 1, "class_bits": 4, "score_bits": 8}
HAND_OUT_WORD = 4 + 10 * 8


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
    assert [(layer["pe"], layer["simd"]) for layer in layers] == HAND_FOLDING
    assert [layer["cycles_per_frame"] for layer in layers] == [HAND_CYCLES] * 4
    assert report["initiation_interval"] == HAND_CYCLES
    assert {key: report["interface"][key] for key in HAND_PORTS} == HAND_PORTS
    assert report["interface"]["out_word"] == HAND_OUT_WORD
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
    fmt = again.port_format()
    assert {key: getattr(fmt, key) for key in HAND_PORTS} == HAND_PORTS
    assert (len(accelerator.i.payload), len(accelerator.o.payload)) == (
        HAND_PORTS["in_word"],
        HAND_OUT_WORD,
    )


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

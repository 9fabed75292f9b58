# The two commands of the README:   make demo   and   make test
# Everything runs inside .venv, created on first use from PyPI (no system packages needed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MODEL  ?= models/tfc_w1a1_in1_classic.onnx

.PHONY: setup demo test lint clean

$(BIN)/bnnhw: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(BIN)/bnnhw

# ONNX -> IR -> golden model (checked against qonnx execute_onnx on the full test split)
# -> Verilog -> cocotb on Verilator, every output bit checked against the golden model
# -> iCEBreaker bitstream (YoWASP Yosys + nextpnr) with its utilisation/Fmax/frames/s report.
demo: setup
	$(BIN)/bnnhw inspect $(MODEL)
	$(BIN)/bnnhw evaluate $(MODEL) --reference
	$(BIN)/bnnhw compile $(MODEL) -o build/demo --force
	$(BIN)/bnnhw verify build/demo --sim verilator --vectors 200
	$(BIN)/bnnhw build $(MODEL) --board icebreaker -o build/demo_icebreaker --force

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The OSU 0.18 um standard-cell library for `bnnhw asic` (~/.cache/bnnhw/osu018)
.PHONY: asic-lib
asic-lib:
	bash scripts/fetch_osu018.sh

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis

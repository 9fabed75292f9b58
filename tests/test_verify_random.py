"""Hypothesis-generated QONNX networks with random foldings, all the way through Verilator.

The Amaranth-simulator property test (test_rtl_network.py) covers many more networks;
this smaller sample proves the same on the Verilog a user gets, from the ONNX file on.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnnhw.build import compile_model
from bnnhw.passes.folding import divisors
from bnnhw.sim import runner
from bnnhw.sim.vectors import make_vectors

from mlp_specs import binary_mlp_specs
from qonnx_graphs import build_model, save_model


@pytest.mark.slow
@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=binary_mlp_specs(max_layers=3, max_width=24, max_in=40), data=st.data())
def test_random_onnx_networks_and_foldings_on_verilator(spec, data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rand")
    model = folder / "random.onnx"
    save_model(build_model(spec), model)
    folding = {
        str(i): {
            "pe": data.draw(st.sampled_from(divisors(layer.out_features))),
            # any SIMD: one that does not divide the fan-in pads the input vector
            "simd": data.draw(st.integers(1, layer.in_features)),
        }
        for i, layer in enumerate(spec.layers)
    }
    (folder / "folding.json").write_text(json.dumps(folding))
    build = compile_model(model, folder / "build", folding=str(folder / "folding.json"))
    vectors = make_vectors(build, frames=40, seed=data.draw(st.integers(0, 1000)))
    result = runner.simulate(build, vectors, simulator="verilator", in_gap=0.2, out_gap=0.2)
    assert result.mismatches == [] and result.matched == 40, result.mismatches

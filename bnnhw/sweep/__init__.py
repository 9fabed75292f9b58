"""Design-space sweeps: many foldings of a model built on a Dask cluster (docs/sweep.md).

``space`` enumerates the foldings around the analytic model's frontier, ``task`` builds
one point (cached by the content hash of its Verilog and the tool versions), ``run``
maps the points over a Dask cluster, ``report`` writes the JSON, CSV, Markdown and PNG,
``resources`` is the resource model fitted to the results and ``select`` picks a design
for a frames/s target or a LUT budget.
"""

from bnnhw.sweep.space import Point, enumerate_points

__all__ = ["Point", "enumerate_points"]

"""One-pass SGD of two-layer committee machines (Arnaboldi et al. 2023).

- :func:`ode` — the overlap ODEs: full in (Q, M), or the large-width reduction in (M, q)
  (``reduction``), with gradient-flow and spherical variants;
- :func:`simulate` — the SGD itself, all seeds stepped together;
- :func:`initial_overlaps`, :class:`Overlaps` — the shared starting point;
- :func:`engine` — the Gaussian integrals (risk, flow) for a pair of activations.

Parameters: :class:`twolayer.params.SgdOde`, :class:`twolayer.params.SgdSimulate`.
"""

from twolayer.sgd.init import Overlaps, initial_overlaps, load_overlaps
from twolayer.sgd.integrals import engine
from twolayer.sgd.ode import ode, time_grid
from twolayer.sgd.simulate import simulate

__all__ = ["Overlaps", "engine", "initial_overlaps", "load_overlaps", "ode", "simulate",
           "time_grid"]

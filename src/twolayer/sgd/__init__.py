"""One-pass SGD of two-layer committee machines (Arnaboldi et al. 2023).

- :func:`ode` — the overlap ODEs (full; gradient-flow and spherical variants);
- :func:`ode_wide` — the large-width reduced ODE in (M, q), cost ∝ p;
- :func:`simulate` — the SGD itself, all seeds stepped together;
- :func:`initial_overlaps`, :class:`Overlaps` — the shared starting point;
- :func:`engine` — the Gaussian integrals (risk, flow) for a pair of activations.
"""

from twolayer.sgd.init import Overlaps, initial_overlaps, load_overlaps
from twolayer.sgd.integrals import engine
from twolayer.sgd.ode import ode, time_grid
from twolayer.sgd.simulate import simulate
from twolayer.sgd.wide import ode_wide

__all__ = ["Overlaps", "engine", "initial_overlaps", "load_overlaps", "ode", "ode_wide",
           "simulate", "time_grid"]

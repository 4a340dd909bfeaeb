"""One-pass SGD of two-layer committee machines (Arnaboldi et al. 2023).

- :func:`ode` — the overlap ODEs (full; gradient-flow and spherical variants);
- :func:`ode_wide` — the large-width reduced ODE in (M, q), cost ∝ p;
- :func:`simulate` — the SGD itself, all seeds stepped together;
- :func:`initial_overlaps`, :class:`Overlaps` — the shared starting point;
- :func:`engine` — the Gaussian integrals (risk, flow) for a pair of activations.

The names are imported on first use, so ``import twolayer.sgd`` loads none of SciPy, xarray or
Numba, and a command loads only the modules it runs (the erf ODE: ``ode``, ``integrals``, the
compiled erf kernel; not ``wide``, ``simulate``, ``smooth`` or ``orthant``).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twolayer.sgd.init import Overlaps, initial_overlaps, load_overlaps
    from twolayer.sgd.integrals import engine
    from twolayer.sgd.ode import ode, time_grid
    from twolayer.sgd.simulate import simulate
    from twolayer.sgd.wide import ode_wide

__all__ = ["Overlaps", "engine", "initial_overlaps", "load_overlaps", "ode", "ode_wide",
           "simulate", "time_grid"]

_SOURCE = {"Overlaps": "init", "initial_overlaps": "init", "load_overlaps": "init",
           "engine": "integrals", "ode": "ode", "time_grid": "ode", "simulate": "simulate",
           "ode_wide": "wide"}


def __getattr__(name: str):
    source = _SOURCE.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(types.ModuleType):
    """Keeps ``twolayer.sgd.ode`` and ``.simulate`` the functions, not their modules.

    Importing a submodule sets it as an attribute of its package; the submodules ``ode`` and
    ``simulate`` share their names with the functions they define, so the function is stored.
    """

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _SOURCE.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

"""Figures, one package and one style: what ``--plot``, ``twolayer plot`` and ``twolayer
reproduce`` draw.

- :func:`plot_onestep` / :func:`plot_sgd` — a command's ``--plot``: theory beside simulation
  (:mod:`twolayer.plotting.curves`);
- :func:`plot_result` / :func:`figure_plan` / :func:`plot_file` — the natural figure of a stored
  result (``twolayer plot``, :mod:`twolayer.plotting.results`);
- :mod:`twolayer.plotting.recipes` — the figures of ``twolayer reproduce``;
- :func:`save_figure` / :func:`figure_paths` — atomic PNG and PDF files
  (:mod:`twolayer.plotting.save`);
- :mod:`twolayer.plotting.style` — the one style all of them use.

Figures are :class:`matplotlib.figure.Figure` objects, never pyplot's: nothing here selects a
backend or touches pyplot's global state. matplotlib (and xarray, pandas) are imported only when
something is drawn, so importing this package costs nothing.
"""

from __future__ import annotations

import importlib

_WHERE = {"plot_onestep": "curves", "plot_sgd": "curves", "onestep_figure": "curves",
          "sgd_figure": "curves",
          "FigurePlan": "results", "figure_plan": "results", "plot_file": "results",
          "plot_result": "results", "figure_paths": "save", "save_figure": "save"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_WHERE})

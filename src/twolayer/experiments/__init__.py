"""Experiments: TOML config files, resumable sweeps on Dask, a content-addressed results store.

- :func:`load_config` / :func:`parse_config` — validate an experiment file (:class:`Experiment`);
- :func:`run_experiment` — compute what is missing, store each point, merge one Dataset;
- :class:`Store` — per-point results keyed by a hash of everything that determines them;
- :func:`summarize` — what ``twolayer show`` prints about a stored result;
- :func:`plot_result` / :func:`plot_file` — its natural figure (``twolayer plot``), the rule
  that picks it in :func:`figure_plan`.
"""

from twolayer.experiments.config import Experiment, load_config, parse_config
from twolayer.experiments.result import format_summary, merge, summarize
from twolayer.experiments.store import Record, Store
from twolayer.experiments.sweep import Point, expand, run_experiment
from twolayer.plotting.results import FigurePlan, figure_plan, plot_file, plot_result

__all__ = ["Experiment", "FigurePlan", "Point", "Record", "Store", "expand", "figure_plan",
           "format_summary", "load_config", "merge", "parse_config", "plot_file", "plot_result",
           "run_experiment", "summarize"]

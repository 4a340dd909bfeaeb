"""Run a recipe: its experiments through the sweep runner, then its figure (PNG and PDF).

Layout under ``directory``: ``<recipe>/<size>/<experiment>.nc`` (merged results, with the
TOML text in their attributes), ``<recipe>/<size>/<recipe>.png|.pdf`` (the figure) and one
shared per-point ``store/`` for every recipe and size, so nothing is computed twice.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from twolayer.errors import ParameterError
from twolayer.reproduce.recipes import RECIPES

SIZES = ("small", "full")


@dataclass
class Reproduction:
    """What a recipe produced: figure files, result files, per-experiment point counts."""

    recipe: str
    size: str
    figures: list[str]
    results: dict[str, str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    transient: int = 0  # points cut short (a lost worker or scheduler): a rerun computes them

    @property
    def status(self) -> str:
        """"ok", or "incomplete" when some point failed (left out of the figure)."""
        return "ok" if all(c["failed"] == 0 for c in self.counts.values()) else "incomplete"

    def as_dict(self) -> dict:
        return {"recipe": self.recipe, "size": self.size, "status": self.status,
                "figures": self.figures, "results": self.results, "counts": self.counts,
                "seconds": round(self.seconds, 3)}


def recipe(name: str):
    """The recipe called ``name`` (ParameterError listing the known ones otherwise)."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ParameterError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


def _ours(exp) -> bool:
    """Whether ``exp.output`` was written by this same recipe experiment (then an older
    version of it may be replaced: its points stay in the store)."""
    import xarray as xr

    if not exp.output.exists():
        return False
    try:
        with xr.open_dataset(exp.output, engine="scipy") as f:
            return f.attrs.get("config_source") == exp.source
    except Exception:
        return False


def reproduce(name: str, directory: str | os.PathLike = "twolayer-reproduce", *,
              size: str = "small", workers: int = 0, scheduler: str | None = None,
              overwrite: bool = False, progress=None) -> Reproduction:
    """Compute what is missing for recipe ``name`` at ``size``, then draw its figure.

    ``workers`` and ``scheduler`` are those of :func:`twolayer.experiments.run_experiment`
    (0: in this process). A result file written by this recipe is refreshed; one that holds
    anything else is refused unless ``overwrite``. Stored points are always reused.
    """
    from twolayer.experiments import parse_config, run_experiment
    from twolayer.plotting.save import save_figure

    rec = recipe(name)
    if size not in SIZES:
        raise ParameterError(f"size must be 'small' or 'full'; got {size!r}")
    t0 = time.perf_counter()
    folder = Path(directory) / rec.name / size
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ParameterError(f"cannot create {str(folder)!r}: {e}") from None
    results, paths, counts, transient = {}, {}, {}, 0
    for exp_name, text in rec.experiments(size).items():
        exp = parse_config(text, base_dir=folder, source=f"recipe {rec.name}/{exp_name}")
        if progress is not None:
            progress.section(f"{rec.name}: {exp_name}")
        ds, info = run_experiment(exp, workers=workers, scheduler=scheduler,
                                  overwrite=overwrite or _ours(exp), progress=progress)
        results[exp_name], paths[exp_name] = ds, str(exp.output)
        transient += info["transient"]
        counts[exp_name] = {k: int(info[k]) for k in ("points", "ok", "failed", "computed",
                                                       "cached")}
    fig = rec.draw(results, rec.sizes[size])  # a Figure of its own: nothing to close
    # atomic; a file there that is not a twolayer figure is refused unless overwrite
    written = save_figure(fig, folder / f"{rec.name}.png", folder / f"{rec.name}.pdf",
                          overwrite=overwrite)
    return Reproduction(rec.name, size, [str(p) for p in written], paths, counts,
                        time.perf_counter() - t0, transient)

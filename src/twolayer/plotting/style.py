"""The one style of every twolayer figure: words, colours, lines, sizes, files.

``--plot`` (:mod:`~twolayer.plotting.curves`), ``twolayer plot``
(:mod:`~twolayer.plotting.results`) and ``twolayer reproduce``
(:mod:`~twolayer.plotting.recipes`) take all of these from here, so the same quantity has the
same label, the random-features baseline the same look and an error bar the same meaning
everywhere. Error bars and bands are always the mean ± one standard deviation over seeds
(ddof = 1), and a figure always says so (:func:`spread`).

Nothing here imports matplotlib at import time.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- words
QUANTITY = {"onestep": "test_error", "sgd": "risk"}  # the plotted quantity of each model
Y_LABEL = {"test_error": "test error  E(y − f(x))²",
           "risk": "excess risk  ½ E(ŷ − y*)²",
           "spike_overlap": "spike alignment  |v₁ · θ|"}
SYMBOL = {"alpha": "α", "alpha0": "α₀", "eta": "η̃", "lam": "λ", "noise": "Δ", "beta": "β",
          "gamma": "γ", "t": "t", "t_max": "t_max", "init_scale": "init scale",
          "student": "σ", "teacher": "σ⋆"}
AXIS_LABEL = {
    "alpha": "α = n / d   (readout samples per dimension)",
    "alpha0": "α₀ = n₀ / d   (step samples per dimension)",
    "eta": "η̃   (learning rate of the giant step)",
    "lam": "λ   (ridge penalty of the readout)",
    "noise": "Δ   (label noise variance)",
    "beta": "β = p / d   (width ratio)",
    "d": "d   (input dimension)",
    "p": "p   (student width)",
    "k": "k   (teacher width)",
    "gamma": "γ   (SGD learning rate)",
    "t": "t = ν γ / (p d)   (SGD steps ν, rescaled)",
    "t_max": "t_max   (rescaled time of the run)",
    "init_scale": "scale of the initial weights",
    "student": "student activation σ",
    "teacher": "teacher activation σ⋆",
}
METHOD_NAME = {("onestep", "theory"): "one giant step + ridge readout: sRF theory",
               ("onestep", "simulate"): "one giant step + ridge readout: simulation",
               ("sgd", "ode"): "one-pass SGD: overlap ODEs",
               ("sgd", "simulate"): "one-pass SGD: simulation"}
CURVE_NAME = {"theory": "sRF theory", "simulate": "simulation", "ode": "ODE"}
RF_LABEL = "RF (η̃ = 0)"  # the random-features baseline: one-step theory at η̃ = 0


def y_label(model: str) -> str:
    """The y-axis label of a model's plotted quantity."""
    return Y_LABEL[QUANTITY[model]]


def axis_label(name: str) -> str:
    return AXIS_LABEL.get(name, name)


ERRORS = {"std": "std", "se": "s.e."}  # what an error bar is: ±1 std over seeds, or ±1 s.e.


def spread(seeds: int, errors: str = "std") -> str:
    """What an error bar or band is: ``"3 seeds (mean ± std)"`` or, for the standard error of
    the mean (std/√N), ``"3 seeds (mean ± s.e.)"``."""
    return f"{seeds} seed{'s' if seeds != 1 else ''} (mean ± {ERRORS[errors]})"


def simulation_label(d, seeds: int, name: str = "simulation", tag: str = "") -> str:
    """The legend entry of simulated points: ``"simulation, d = 400: 3 seeds (mean ± std)"``
    (``tag``, e.g. ``", λ = 0.1"``, goes before the colon)."""
    return f"{name}, d = {d}{tag}: {spread(seeds)}"


# --------------------------------------------------------------------------- colours and lines
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # tab10, independent of the user's rcParams
THEORY_COLOUR = PALETTE[0]  # a theory (ODE) line beside a simulation
SIMULATION_COLOUR = PALETTE[1]
FAIL_COLOUR = PALETTE[3]  # notes about failed points
NO_DATA_COLOUR = "0.6"
RF_COLOUR = "0.3"  # a single RF baseline (several: each shares its counterpart's colour)
SEQUENTIAL = "viridis"  # ordered values, heat maps

LW = 1.5
THEORY = {"ls": "-", "lw": LW}
RF = {"ls": "--", "lw": 1.3}  # the random-features baseline
FLOW = {"ls": ":", "lw": LW, "color": "k"}  # gradient flow (SGD without its variance term)
ERRORBAR = {"fmt": "o", "ms": 3.5, "capsize": 2, "lw": 1}  # simulations: mean ± std
MARKER = {"marker": "o", "ms": 3, "ls": "none"}  # SGD simulation means (with a band)
BAND_ALPHA = 0.25
BAND_FLOOR = 1e-2  # on log axes the band's lower edge stays above 1% of the mean
GRID_ALPHA = 0.3


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def band_limits(mean, std) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges of a ±1 std band (the lower one floored, for log axes)."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    return np.maximum(mean - std, mean * BAND_FLOOR), mean + std


# --------------------------------------------------------------------------- sizes and fonts
DPI = 150
FIGSIZE = (5.4, 3.9)  # one panel
TITLE_SIZE = 9
SUPTITLE_SIZE = 8
LABEL_SIZE = 8.5
TICK_SIZE = 8
LEGEND_SIZE = 7
NOTE_SIZE = 6.5


def panels_figsize(ncols: int, nrows: int = 1) -> tuple[float, float]:
    """Figure size for a grid of panels."""
    return (3.3 * ncols + 1.6, 2.8 * nrows + 0.9)


def new_figure(size: tuple[float, float] = FIGSIZE):
    """An empty :class:`matplotlib.figure.Figure` (constrained layout), not known to pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def _plain_short_log_ticks(ax) -> None:
    """A log axis spanning under two decades is labelled 0.5, 1, 2 rather than 5×10⁻¹."""
    from matplotlib.ticker import FormatStrFormatter

    for axis, scale, lim in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()),
                             (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale == "log" and min(lim) > 0 and max(lim) / min(lim) < 100:
            axis.set_major_formatter(FormatStrFormatter("%g"))
            axis.set_minor_formatter(FormatStrFormatter("%g"))


def decorate(ax, *, x: str | None = None, y: str | None = None, title: str | None = None,
             log_grid: bool = False, grid: bool = True) -> None:
    """Axis labels (``x``/``y``: text), title, tick sizes and the grid (``log_grid``: minor
    lines too; ``grid=False``: none, for maps), in the one style."""
    if x is not None:
        ax.set_xlabel(x, fontsize=LABEL_SIZE)
    if y is not None:
        ax.set_ylabel(y, fontsize=LABEL_SIZE)
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)
    _plain_short_log_ticks(ax)
    ax.tick_params(which="both", labelsize=TICK_SIZE)
    if grid:
        ax.grid(alpha=GRID_ALPHA, which="both" if log_grid else "major")


def legend(ax, *args, **kwargs):
    """A legend in the one style (small, no frame unless asked)."""
    kwargs.setdefault("fontsize", LEGEND_SIZE)
    kwargs.setdefault("frameon", False)
    if "title" in kwargs:
        kwargs.setdefault("title_fontsize", LEGEND_SIZE)
    return ax.legend(*args, **kwargs)

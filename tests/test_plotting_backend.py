"""The plotting package: it never switches the user's matplotlib backend (nor uses pyplot), and
its three drawing paths (--plot, `twolayer plot`, `twolayer reproduce`) speak the one style."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import twolayer
from twolayer.experiments import load_config, plot_result, run_experiment
from twolayer.plotting import onestep_figure, recipes, sgd_figure, style

SRC = str(Path(twolayer.__file__).resolve().parents[1])

# A fresh interpreter: a backend chosen first, every twolayer module imported, a figure drawn
# through every public drawing path; the backend must be the one chosen, pyplot never loaded.
BACKEND_SCRIPT = r"""
import importlib, pkgutil, sys, tempfile
from pathlib import Path

import matplotlib
matplotlib.use("svg")  # not Agg: a library that forces Agg changes it
chosen = matplotlib.get_backend()

import twolayer
names = [m.name for m in pkgutil.walk_packages(twolayer.__path__, "twolayer.")]
for name in names:
    importlib.import_module(name)
assert "twolayer.plotting.curves" in names and "twolayer.reproduce.run" in names, names

from twolayer.experiments import plot_result
from twolayer.onestep import rf_theory, simulate as onestep_simulate, theory
from twolayer.plotting import plot_onestep, plot_sgd
from twolayer.reproduce import reproduce
from twolayer.sgd import ode, simulate as sgd_simulate

tmp = Path(tempfile.mkdtemp())
grid = {"alpha": [0.5, 1.0], "lam": [0.01]}
th = theory("tanh", "tanh", alpha0=0.5, eta=1.0, **grid)
rf = rf_theory("tanh", "tanh", **grid)
sim = onestep_simulate("tanh", "tanh", alpha0=0.5, eta=1.0, d=40, p=40, seeds=2, n_test=200,
                       **grid)
plot_onestep(tmp / "onestep.png", theory=th, simulation=sim, rf=rf, title="t")
o = ode("erf", "erf", p=1, k=1, gamma=0.5, t_max=1.0, d=50)
s = sgd_simulate("erf", "erf", p=1, k=1, d=50, gamma=0.5, t_max=0.5, seeds=2)
plot_sgd(tmp / "sgd.pdf", ode=o, simulation=s)
for ds in (th, sim, o, s):
    plot_result(ds).savefig(tmp / "result.png")
reproduce("sgd-phases", tmp)
assert matplotlib.get_backend() == chosen, (chosen, matplotlib.get_backend())
assert "matplotlib.pyplot" not in sys.modules, "something imported pyplot"
print("backend kept:", chosen, len(names), "modules")
"""


def test_no_module_switches_the_backend_or_uses_pyplot():
    done = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              p for p in (SRC, os.environ.get("PYTHONPATH")) if p)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("backend kept: svg"), done.stdout


def test_importing_the_package_loads_no_matplotlib():
    code = ("import sys, twolayer.plotting as p; p.__all__; "
            "print(sorted(m for m in ('matplotlib', 'xarray', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": SRC})
    assert done.stdout.strip() == "[]", done.stderr


# --------------------------------------------------------------------------- one style
def experiment(folder: Path, name: str, text: str):
    path = folder / f"{name}.toml"
    path.write_text(f'output = "{name}.nc"\n' + text)
    ds, _ = run_experiment(load_config(path), workers=0)
    return ds


@pytest.fixture(scope="module")
def onestep(tmp_path_factory):
    """Tiny merged one-step results (theory and simulation over η̃ ∈ {0, 1})."""
    folder = tmp_path_factory.mktemp("onestep")
    head = 'model = "onestep"\nmethod = "{}"\n[params]\nalpha0 = 0.5\nalpha = [0.5, 1.0]\n'
    sweep = "[sweep]\neta = [0.0, 1.0]\n"
    th = experiment(folder, "theory", head.format("theory") + 'd = "inf"\n' + sweep)
    sim = experiment(folder, "simulation", head.format("simulate")
                     + "d = 40\nseeds = 2\nn_test = 200\n" + sweep)
    return {"theory": th, "simulation": sim}


@pytest.fixture(scope="module")
def sgd(tmp_path_factory):
    """Tiny merged SGD results of one point: ODE and simulation."""
    folder = tmp_path_factory.mktemp("sgd")
    head = ('model = "sgd"\nmethod = "{}"\n[params]\nstudent = "erf"\nteacher = "erf"\n'
            "p = 1\nk = 1\nd = 50\ngamma = 0.5\n")
    return {"ode": experiment(folder, "ode", head.format("ode") + "t_max = 1.0\n"),
            "simulation": experiment(folder, "sim", head.format("simulate")
                                     + "t_max = 0.5\nseeds = 2\n")}


def y_labels(*figs) -> set:
    return {ax.get_ylabel() for fig in figs for ax in fig.axes if ax.get_ylabel()}


def legend_texts(fig) -> str:
    texts = []
    for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if leg is not None:
            texts += [leg.get_title().get_text(), *(t.get_text() for t in leg.get_texts())]
    return "\n".join(texts)


def test_onestep_paths_share_the_y_label_and_say_what_the_error_bars_are(onestep):
    th, sim = onestep["theory"], onestep["simulation"]
    cli = onestep_figure(theory=th.sel(eta=1.0), simulation=sim.sel(eta=1.0))
    result_th, result_sim = plot_result(th), plot_result(sim)
    recipe = recipes.onestep_curves(onestep, {})
    labels = {"--plot": cli.axes[0].get_ylabel(),
              "plot theory": result_th.axes[0].get_ylabel(),
              "plot simulation": result_sim.axes[0].get_ylabel(),
              "reproduce": recipe.axes[0].get_ylabel()}
    assert set(labels.values()) == {"test error  E(y − f(x))²"}, labels
    for fig in (cli, result_sim, recipe):
        assert "2 seeds (mean ± std)" in legend_texts(fig)
    assert "error bars: 2 seeds (mean ± std)" in legend_texts(result_sim)


def test_sgd_paths_share_the_y_label_the_band_floor_and_the_error_wording(sgd):
    ode, sim = sgd["ode"], sgd["simulation"].copy(deep=True)
    sim["risk_std"] = 2 * sim["risk_mean"]  # mean − std < 0: the band's floor shows
    cli = sgd_figure(ode=ode, simulation=sim)
    results = {f"{regime}_{kind}": ode if kind in ("ode", "flow") else sim
               for regime in ("classical", "highdim", "meanfield")
               for kind in ("ode", "sim", "flow")}
    recipe = recipes.sgd_regimes(results, {})
    figs = {"--plot": cli, "plot ode": plot_result(ode), "plot simulation": plot_result(sim),
            "reproduce": recipe}
    labels = {name: y_labels(fig) for name, fig in figs.items()}
    assert all(v == {"excess risk  ½ E(ŷ − y*)²"} for v in labels.values()), labels
    for fig in (cli, figs["plot simulation"], recipe):
        assert "2 seeds (mean ± std)" in legend_texts(fig)
    # the ±1 std band's lower edge: the same floor on every path
    keep = sim["t"].values > 0
    floor = sim["risk_mean"].values[keep] * style.BAND_FLOOR
    for name in ("--plot", "plot simulation", "reproduce"):
        band = figs[name].axes[0].collections[0]
        lower = band.get_paths()[0].vertices[1:keep.sum() + 1, 1]
        assert lower == pytest.approx(floor, rel=1e-12), name

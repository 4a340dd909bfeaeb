"""`twolayer plot a.nc b.nc`: several results on one pair of axes, --errors std|se, --logx/--logy.

The drawn data are read back from the matplotlib artists and compared with the results'
arrays: theory lines equal the theory, simulation markers the seed means, error bars and bands
their ±std over seeds or, with ``errors="se"``, exactly std/√N.
"""

import json
import math

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection

from tests.helpers import run
from twolayer.io import load_netcdf, save_netcdf
from twolayer.onestep import simulate as onestep_simulate
from twolayer.onestep import theory
from twolayer.plotting.overlay import overlay
from twolayer.plotting.results import plot_result
from twolayer.sgd import ode
from twolayer.sgd import simulate as sgd_simulate

ONESTEP = {"alpha0": 0.5, "eta": 1.0}
SEEDS = 3


@pytest.fixture(scope="module")
def onestep_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onestep")
    th = theory("tanh", "tanh", alpha=[0.25, 0.5, 1.0, 2.0], **ONESTEP)
    sim = onestep_simulate("tanh", "tanh", alpha=[0.5, 1.0, 2.0], d=80, seeds=SEEDS,
                           **ONESTEP)
    save_netcdf(th, folder / "theory.nc")
    save_netcdf(sim, folder / "sim.nc")
    return folder / "theory.nc", folder / "sim.nc"


@pytest.fixture(scope="module")
def sgd_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sgd")
    res = ode("erf", "erf", p=2, k=2, d=60, t_max=3.0, per_decade=8)
    sim = sgd_simulate("erf", "erf", p=2, k=2, d=60, t_max=3.0, per_decade=8, seeds=SEEDS)
    save_netcdf(res, folder / "ode.nc")
    save_netcdf(sim, folder / "sim.nc")
    return folder / "ode.nc", folder / "sim.nc"


def lines_by_gid(ax) -> dict:
    return {ln.get_gid(): ln for ln in ax.lines if (ln.get_gid() or "").startswith("curve:")}


def bar_half_widths(ax) -> np.ndarray:
    """Half the length of each vertical error bar (the errorbar's LineCollection)."""
    (bars,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    return np.array([(seg[1, 1] - seg[0, 1]) / 2 for seg in bars.get_segments()])


@pytest.mark.parametrize("errors", ["std", "se"])
def test_theory_and_simulation_share_the_axes(onestep_files, errors):
    th_path, sim_path = onestep_files
    th, sim = load_netcdf(th_path), load_netcdf(sim_path)
    fig = overlay([(str(th_path), th), (str(sim_path), sim)], errors=errors)
    (ax,) = fig.axes
    lines = lines_by_gid(ax)
    what = "std" if errors == "std" else "s.e."
    th_label = "curve:theory.nc: sRF theory"
    sim_label = f"curve:sim.nc: simulation (mean ± {what} over {SEEDS} seeds)"
    assert set(lines) == {th_label, sim_label}
    assert fig.twolayer_labels == [th_label[6:], sim_label[6:]]
    np.testing.assert_array_equal(lines[th_label].get_xdata(), th["alpha"].values)
    np.testing.assert_array_equal(lines[th_label].get_ydata(),
                                  th["test_error"].values[:, 0])  # the one lam
    np.testing.assert_array_equal(lines[sim_label].get_xdata(), sim["alpha"].values)
    np.testing.assert_array_equal(lines[sim_label].get_ydata(),
                                  sim["test_error_mean"].values[:, 0])
    std = sim["test_error_std"].values[:, 0]
    assert (std > 0).all()
    scale = 1.0 if errors == "std" else 1 / math.sqrt(SEEDS)
    np.testing.assert_allclose(bar_half_widths(ax), std * scale, rtol=1e-12)
    # the std itself: over the seeds, ddof = 1
    np.testing.assert_allclose(std, sim["test_error"].std("seed", ddof=1).values[:, 0],
                               rtol=1e-12)
    assert ax.get_xscale() == ax.get_yscale() == "linear"


def test_sgd_ode_and_simulation_band_is_the_standard_error(sgd_files):
    ode_path, sim_path = sgd_files
    res, sim = load_netcdf(ode_path), load_netcdf(sim_path)
    fig = overlay([(str(ode_path), res), (str(sim_path), sim)], errors="se")
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "log"  # the default for risks over time
    lines = lines_by_gid(ax)
    ode_line = lines["curve:ode.nc: ODE"]
    sim_line = lines[f"curve:sim.nc: simulation (mean ± s.e. over {SEEDS} seeds)"]
    t = res["t"].values
    keep = t > 0  # log axis
    np.testing.assert_array_equal(ode_line.get_xdata(), t[keep])
    np.testing.assert_array_equal(ode_line.get_ydata(), res["risk"].values[keep])
    mean, std = sim["risk_mean"].values, sim["risk_std"].values
    ts = sim["t"].values
    np.testing.assert_array_equal(sim_line.get_ydata(), mean[ts > 0])
    (band,) = [c for c in ax.collections if isinstance(c, PolyCollection)]
    verts = band.get_paths()[0].vertices
    for x, m, s in zip(ts[ts > 0], mean[ts > 0], std[ts > 0], strict=True):
        top = verts[np.isclose(verts[:, 0], x, rtol=0, atol=0), 1].max()
        assert top == pytest.approx(m + s / math.sqrt(SEEDS), rel=1e-12)


def test_cli_overlay_writes_the_figure_and_refuses_other_axes(onestep_files, sgd_files,
                                                              tmp_path, capsys):
    th_path, sim_path = onestep_files
    out = tmp_path / "both.png"
    code, stdout, err = run(capsys, ["plot", str(th_path), str(sim_path), "--out", str(out),
                                     "--errors", "se", "--logx", "--logy", "--json"])
    assert code == 0, err
    info = json.loads(stdout)
    assert info["kind"] == "overlay" and info["x"] == "alpha" and info["errors"] == "se"
    assert info["labels"] == ["theory.nc: sRF theory",
                              f"sim.nc: simulation (mean ± s.e. over {SEEDS} seeds)"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "both.pdf").is_file()
    code, stdout, err = run(capsys, ["plot", str(th_path), str(sgd_files[0]),
                                     "--out", str(tmp_path / "bad.png")])
    assert code == 2 and stdout == ""
    assert "cannot overlay" in err and "x = t" in err and "x = alpha" in err
    assert err.count("\n") == 1 and not (tmp_path / "bad.png").exists()
    code, _, err = run(capsys, ["plot", str(th_path), "--errors", "sem"])
    assert code == 2 and "--errors" in err


def test_single_result_errors_and_log_axes(onestep_files):
    _, sim_path = onestep_files
    sim = load_netcdf(sim_path)
    fig = plot_result(sim, errors="se", logx=True, logy=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_legend().get_title().get_text() == \
        f"error bars: {SEEDS} seeds (mean ± s.e.)"
    np.testing.assert_allclose(bar_half_widths(ax),
                               sim["test_error_std"].values[:, 0] / math.sqrt(SEEDS),
                               rtol=1e-12)
    fig = plot_result(sim)
    assert fig.axes[0].get_legend().get_title().get_text() == \
        f"error bars: {SEEDS} seeds (mean ± std)"
    np.testing.assert_allclose(bar_half_widths(fig.axes[0]),
                               sim["test_error_std"].values[:, 0], rtol=1e-12)

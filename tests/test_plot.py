"""`twolayer plot`: the drawn data are the result's values, failures are gaps, files and errors.

Results are made by the real sweep machinery (`run_experiment`, in-process) on tiny sizes; the
figures are read back from the matplotlib objects that `plot_result` returns (each curve's data
line carries the gid "curve:<legend label>[ | <panel title>]").
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import twolayer
from tests.helpers import run
from twolayer.experiments import figure_plan, load_config, plot_result, run_experiment
from twolayer.io import load_netcdf

SRC = str(Path(twolayer.__file__).resolve().parents[1])
PNG, PDF = b"\x89PNG\r\n\x1a\n", b"%PDF-"

ONESTEP = """model = "onestep"
method = "theory"
output = "onestep.nc"
[params]
alpha = [0.5, 1.0, 2.0]
[sweep]
eta = [0.0, 1.0]
alpha0 = [0.5, 2.0]
"""
SGD = """model = "sgd"
method = "ode"
output = "sgd.nc"
[params]
student = "linear"
teacher = "linear"
p = 1
k = 1
d = 200
t_max = 20
[sweep]
gamma = [0.5, 3.0]
noise = [0.0, 0.1]
"""


def experiment(folder: Path, text: str, name: str):
    cfg = folder / f"{name}.toml"
    cfg.write_text(text)
    exp = load_config(cfg)
    ds, _ = run_experiment(exp, workers=0)
    return ds, exp.output


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    onestep, onestep_path = experiment(folder, ONESTEP, "onestep")
    sgd, sgd_path = experiment(folder, SGD, "sgd")
    return {"onestep": onestep, "onestep_path": onestep_path, "sgd": sgd, "sgd_path": sgd_path,
            "folder": folder}


def curves(fig) -> dict:
    return {line.get_gid()[len("curve:"):]: line for ax in fig.axes for line in ax.lines
            if (line.get_gid() or "").startswith("curve:")}


# --------------------------------------------------------------------------- what is drawn
def test_onestep_learning_curves_panels_and_rf_baseline(results):
    ds = results["onestep"]
    fig = plot_result(ds)
    plan = fig.twolayer_plan
    assert (plan.kind, plan.x, plan.panel_axes) == ("panels", "alpha", ("alpha0",))
    lines = curves(fig)
    assert len(lines) == 4
    for alpha0 in (0.5, 2.0):
        rf = lines[f"RF (η̃ = 0) | α₀ = {alpha0:g}"]
        assert rf.get_linestyle() == "--"
        np.testing.assert_array_equal(rf.get_xdata(), ds["alpha"].values)
        np.testing.assert_array_equal(
            rf.get_ydata(), ds["test_error"].sel(eta=0.0, alpha0=alpha0).isel(lam=0).values)
        step = lines[f"η̃ = 1 | α₀ = {alpha0:g}"]
        assert step.get_linestyle() == "-"
        np.testing.assert_array_equal(
            step.get_ydata(), ds["test_error"].sel(eta=1.0, alpha0=alpha0).isel(lam=0).values)
    # the step helps at α0 = 2: the drawn curves say so too
    assert (lines["η̃ = 1 | α₀ = 2"].get_ydata() < lines["RF (η̃ = 0) | α₀ = 2"].get_ydata()).all()
    assert "α = n / d" in fig.axes[0].get_xlabel() and "test error" in fig.axes[0].get_ylabel()


def test_points_that_did_not_converge_are_gaps_and_named(results):
    ds = results["onestep"].copy(deep=True)
    ds["converged"].loc[{"eta": 1.0, "alpha0": 0.5, "alpha": 1.0}] = False
    ds["status"].loc[{"eta": 1.0, "alpha0": 0.5}] = "not_converged"
    ds.attrs["status"] = "not_converged"  # the worst point's (the result schema)
    fig = plot_result(ds)
    y = curves(fig)["η̃ = 1 | α₀ = 0.5"].get_ydata()
    ref = ds["test_error"].sel(eta=1.0, alpha0=0.5).isel(lam=0).values
    assert np.isnan(y[1]) and np.isfinite(ref[1])  # the value exists but is not drawn
    np.testing.assert_array_equal(y[[0, 2]], ref[[0, 2]])
    notes = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert notes == ["η̃ = 1: not converged at α = 1 (left out)"]


def test_heatmap_of_the_error_at_the_largest_alpha(results):
    ds = results["onestep"]
    fig = plot_result(ds, kind="heatmap", x="eta")
    assert fig.twolayer_plan.heat_axes == ("eta", "alpha0") and fig.twolayer_plan.at == 2.0
    [mesh] = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "heatmap"]
    want = ds["test_error"].sel(alpha=2.0).isel(lam=0).transpose("alpha0", "eta").values
    np.testing.assert_array_equal(np.ma.filled(mesh.get_array(), np.nan).reshape(want.shape),
                                  want)
    ax = mesh.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0.5", "2"]


def test_sgd_risk_vs_time_and_a_diverged_run(results):
    ds = results["sgd"]
    assert ds["status"].sel(gamma=3.0).values.tolist() == ["diverged", "diverged"]
    fig = plot_result(ds)
    plan = fig.twolayer_plan
    assert (plan.kind, plan.x, plan.panel_axes) == ("panels", "t", ("noise",))
    lines = curves(fig)
    t = ds["t"].values
    for noise in (0.0, 0.1):
        ok = lines[f"γ = 0.5 | Δ = {noise:g}"]
        np.testing.assert_array_equal(ok.get_xdata(), t[t > 0])
        np.testing.assert_array_equal(ok.get_ydata(), ds["risk"].sel(gamma=0.5, noise=noise)
                                      .values[t > 0])
        bad = lines[f"γ = 3 | Δ = {noise:g}"]
        stop = float(ds["t_stop"].sel(gamma=3.0, noise=noise))
        y = bad.get_ydata()
        assert bad.get_linestyle() == ":"
        assert np.isfinite(y[t[t > 0] <= stop]).all() and np.isnan(y[t[t > 0] > stop]).all()
    ax = lines["γ = 0.5 | Δ = 0"].axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    notes = [t.get_text() for a in fig.axes for t in a.texts]
    stop = float(ds["t_stop"].sel(gamma=3.0, noise=0.0))
    assert f"γ = 3: diverged at t = {stop:.3g}" in notes


def test_sgd_heatmap_of_the_final_risk_leaves_diverged_cells_blank(results):
    ds = results["sgd"]
    fig = plot_result(ds, kind="heatmap")
    [mesh] = [c for ax in fig.axes for c in ax.collections if c.get_gid() == "heatmap"]
    z = np.ma.filled(mesh.get_array(), np.nan).reshape(2, 2)  # (noise, gamma)
    final = ds["risk"].isel(t=-1).transpose("noise", "gamma").values
    np.testing.assert_array_equal(z[:, 0], final[:, 0])
    assert np.isnan(z[:, 1]).all()  # gamma = 3 diverged: no value, hatched
    assert type(mesh.norm).__name__ == "LogNorm"
    ax = mesh.axes
    assert sum(p.get_hatch() == "///" for p in ax.patches) == 2
    assert fig.twolayer_labels[1] == "γ = 3, Δ = 0: no value (diverged)"


def test_x_a_parameter_takes_each_run_at_its_end(results):
    ds = results["sgd"]
    fig = plot_result(ds, x="gamma")
    assert fig.twolayer_plan.reduced and fig.twolayer_plan.kind == "curves"
    lines = curves(fig)
    y = lines["Δ = 0.1"].get_ydata()
    np.testing.assert_array_equal(lines["Δ = 0.1"].get_xdata(), [0.5, 3.0])
    assert y[0] == ds["risk"].sel(gamma=0.5, noise=0.1).values[-1] and np.isnan(y[1])


def test_zip_sweep_simulation_mean_and_band(tmp_path):
    ds, _ = experiment(tmp_path, 'model = "sgd"\nmethod = "simulate"\n[params]\nd = 50\n'
                       't_max = 0.5\nseeds = 3\n[sweep]\nmode = "zip"\ngamma = [0.5, 1.0]\n'
                       "noise = [0.0, 0.1]\n", "zip")
    fig = plot_result(ds)
    lines = curves(fig)
    assert sorted(lines) == ["γ = 0.5, Δ = 0", "γ = 1, Δ = 0.1"]
    for i, name in enumerate(["γ = 0.5, Δ = 0", "γ = 1, Δ = 0.1"]):
        t = ds["t_values"].values[i]
        keep = np.isfinite(t) & (t > 0)
        np.testing.assert_array_equal(lines[name].get_xdata(), t[keep])
        np.testing.assert_array_equal(lines[name].get_ydata(), ds["risk_mean"].values[i][keep])
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # one ±1 std band per curve
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(lines)


def test_a_swept_seed_is_averaged_with_error_bars(tmp_path):
    ds, _ = experiment(tmp_path, 'model = "onestep"\nmethod = "simulate"\n[params]\nd = 40\n'
                       "seeds = 1\nn_test = 200\nalpha = [0.5, 1.0]\n[sweep]\n"
                       "eta = [0.0, 1.0]\nseed = [0, 1, 2]\n", "seeds")
    fig = plot_result(ds)
    assert fig.twolayer_plan.families == (("eta",),)
    per_run = ds["test_error"].sel(eta=1.0).isel(lam=0).transpose("seed", "alpha").values
    line = curves(fig)["η̃ = 1"]
    np.testing.assert_allclose(line.get_ydata(), per_run.mean(0), rtol=1e-14)
    bars = next(c for c in fig.axes[0].containers if c.lines[0] is line).lines[2][0]
    tops = np.array([seg[:, 1].max() for seg in bars.get_segments()])
    np.testing.assert_allclose(tops, per_run.mean(0) + per_run.std(0, ddof=1), rtol=1e-12)
    assert "3 seeds (mean ± std)" in fig.texts[0].get_text()  # the suptitle


def test_the_rule_for_two_sweep_axes_on_a_larger_grid_is_a_heatmap(tmp_path):
    ds, _ = experiment(tmp_path, 'model = "onestep"\nmethod = "theory"\n[params]\n'
                       "alpha = [1.0, 2.0]\n[sweep]\neta = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, "
                       "3.5, 4.0]\nalpha0 = [0.5, 1.0, 2.0]\n", "grid")
    plan = figure_plan(ds)  # 3 panels of 9 curves: too many curves
    assert (plan.kind, plan.heat_axes, plan.at) == ("heatmap", ("eta", "alpha0"), 2.0)
    plan = figure_plan(ds.sel(alpha=[2.0]))  # a single α: a scalar per point
    assert plan.kind == "heatmap"
    assert figure_plan(ds, kind="panels").panel_axes == ("alpha0",)


# --------------------------------------------------------------------------- files and errors
def test_cli_writes_png_and_pdf_next_to_the_result(results, capsys):
    path = results["onestep_path"]
    code, out, err = run(capsys, ["plot", str(path), "--json"])
    assert code == 0, err
    obj = json.loads(out)
    png, pdf = path.with_suffix(".png"), path.with_suffix(".pdf")
    assert obj["figures"] == [str(png), str(pdf)] and obj["kind"] == "panels"
    assert png.read_bytes().startswith(PNG) and pdf.read_bytes().startswith(PDF)
    assert obj["labels"] == ["RF (η̃ = 0)", "η̃ = 1"]
    # the experiment file stands for its result; --out FILE.pdf writes FILE.png too
    out_pdf = results["folder"] / "sub" / "fig.v2.pdf"
    out_pdf.parent.mkdir()
    code, out, err = run(capsys, ["plot", str(results["folder"] / "sgd.toml"), "--out",
                                  str(out_pdf), "--kind", "heatmap"])
    assert code == 0, err
    assert out.strip() == f"wrote {out_pdf.with_suffix('.png')} and {out_pdf} (heatmap, x = gamma)"
    assert out_pdf.with_suffix(".png").read_bytes().startswith(PNG)
    # a figure we wrote is replaced without asking
    assert run(capsys, ["plot", str(path)])[0] == 0


def test_a_file_that_is_not_our_figure_is_not_replaced(results, capsys):
    target = results["folder"] / "notes.png"
    target.write_text("my notes")
    code, out, err = run(capsys, ["plot", str(results["sgd_path"]), "--out", str(target)])
    assert code == 2 and out == "" and "is not a figure written by twolayer" in err
    assert target.read_text() == "my notes"
    assert not target.with_suffix(".pdf").exists()  # nothing written before the refusal
    code, _, err = run(capsys, ["plot", str(results["sgd_path"]), "--out", str(target),
                                "--overwrite"])
    assert code == 0, err
    assert target.read_bytes().startswith(PNG)


@pytest.mark.parametrize("args, message", [
    (["missing.nc"], "no such result file"),
    (["{sgd}", "--out", "fig.svg"], "must end in .png or .pdf"),
    (["{sgd}", "--x", "lam"], "unknown axis 'lam' for x; the axes of this result are gamma, "
                              "noise, t"),
    (["{sgd}", "--kind", "contour"], "unknown figure kind 'contour'"),
    (["{other}"], "not a twolayer result"),
    (["{text}"], "cannot read"),
])
def test_bad_input_is_one_line_and_exit_2(results, capsys, args, message):
    folder = results["folder"]
    other = folder / "other.nc"
    if not other.exists():
        import xarray as xr

        xr.Dataset({"a": ("x", [1.0, 2.0])}).to_netcdf(other, engine="scipy")
        (folder / "text.nc").write_text("not NetCDF\n")
    subst = {"{sgd}": str(results["sgd_path"]), "{other}": str(other),
             "{text}": str(folder / "text.nc")}
    code, out, err = run(capsys, ["plot", *(subst.get(a, a) for a in args)])
    assert code == 2 and out == ""
    assert err.startswith("twolayer: error: ") and message in err and err.count("\n") == 1


def test_a_single_result_of_a_command(tmp_path, capsys):
    path = tmp_path / "one.nc"
    assert run(capsys, ["sgd", "ode", "--t-max", "2", "--out", str(path)])[0] == 0
    code, out, err = run(capsys, ["plot", str(path), "--json"])
    assert code == 0, err
    assert json.loads(out)["labels"] == ["ODE"]
    ds = load_netcdf(path)
    fig = plot_result(ds)
    t = ds["t"].values
    np.testing.assert_array_equal(curves(fig)["ODE"].get_ydata(), ds["risk"].values[t > 0])


def test_the_cli_does_not_import_matplotlib_until_it_plots():
    code = "import sys, twolayer.cli; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    assert done.stdout.strip() == "False", done.stderr

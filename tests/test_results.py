"""One result schema: every result kind passes the validator; broken ones are named."""

import json
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import twolayer
from twolayer.cli import main
from twolayer.errors import ConvergenceWarning, DivergenceWarning
from twolayer.experiments import load_config, run_experiment
from twolayer.experiments.store import Store
from twolayer.io import load_netcdf, save_netcdf
from twolayer.params import METHODS
from twolayer.results import STATUSES, SchemaError, validate, worst

SMALL = {("onestep", "theory"): dict(alpha=[0.5, 2.0]),
         ("onestep", "simulate"): dict(alpha=[1.0], d=60, seeds=2, n_test=200),
         ("sgd", "ode"): dict(t_max=0.5, d=50),
         ("sgd", "simulate"): dict(t_max=0.2, d=50, seeds=2)}
# linear units, p = k = 1: the ODE is stable for γ < 2 (γ = 3 blows up before t = 50)
LINEAR = dict(student="linear", teacher="linear", p=1, k=1, d=200, t_max=50.0)


@pytest.fixture(scope="module")
def results():
    return {key: METHODS[key](**kw).compute() for key, kw in SMALL.items()}


@pytest.mark.parametrize("key", list(SMALL), ids=[" ".join(k) for k in SMALL])
def test_every_single_result_follows_the_schema(results, key, tmp_path):
    ds = results[key]
    validate(ds)
    assert ds.attrs["status"] == "ok" and ds.attrs["message"] == ""
    assert (ds.attrs["model"], ds.attrs["method"]) == key
    assert ds.attrs["version"] == twolayer.__version__
    validate(load_netcdf(save_netcdf(ds, tmp_path / "r.nc")))  # survives the file


def test_the_validator_names_what_is_wrong(results):
    ds = results[("onestep", "theory")]
    for drop in ("status", "message", "params", "model"):
        bad = ds.copy()
        del bad.attrs[drop]
        with pytest.raises(SchemaError, match=drop):
            validate(bad)
    bad = ds.copy()
    bad.attrs["status"] = "error"
    with pytest.raises(SchemaError, match="not one of"):
        validate(bad)
    bad = ds.copy()
    bad["converged"] = bad["converged"] & False
    with pytest.raises(SchemaError, match="did not converge"):
        validate(bad)
    bad = results[("sgd", "ode")].drop_vars("risk")
    with pytest.raises(SchemaError, match="risk"):
        validate(bad)


def test_unconverged_theory_is_flagged_with_nan_and_a_message():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        th = METHODS[("onestep", "theory")](alpha=[0.5, 1.0, 3.0], lam=[1e-4],
                                            max_iter=3).compute()
    validate(th)
    assert th.attrs["status"] == "not_converged" and "max_iter" in th.attrs["message"]
    bad = ~th["converged"].values
    assert bad.any() and np.isnan(th["test_error"].values[bad]).all()


def test_a_diverged_ode_says_so_and_what_to_try():
    with pytest.warns(DivergenceWarning):
        ds = METHODS[("sgd", "ode")](**LINEAR, gamma=3.0).compute()
    validate(ds)
    assert ds.attrs["status"] == "diverged" and "smaller gamma" in ds.attrs["message"]
    assert np.isnan(ds["risk"].values[-1]) and ds.attrs["t_stop"] < 50


def test_worst_status_orders_by_severity():
    assert worst([]) == "ok" and worst(["ok", "diverged", "not_converged"]) == "diverged"
    assert worst(STATUSES) == "failed"


def test_a_sweep_and_its_store_follow_the_schema(tmp_path, capsys):
    cfg = tmp_path / "s.toml"
    cfg.write_text('model = "sgd"\nmethod = "ode"\n[params]\nstudent = "linear"\n'
                   'teacher = "linear"\np = 1\nk = 1\nd = 200\nt_max = 50\n'
                   '[sweep]\ngamma = [0.5, 3.0]\n')
    ds, _ = run_experiment(load_config(cfg), workers=0)
    validate(ds)
    assert list(ds["status"].values) == ["ok", "diverged"]
    assert ds.attrs["status"] == "diverged" and "1 of 2 points" in ds.attrs["message"]
    store = Store(tmp_path / "twolayer-store")
    for key in ds["point_key"].values:
        validate(store.get(str(key)).data)
    assert main(["show", str(tmp_path / "s.nc"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["message"]) == (ds.attrs["status"], ds.attrs["message"])


def test_show_refuses_a_file_outside_the_schema(tmp_path, results, capsys):
    ds = results[("sgd", "ode")].copy()
    del ds.attrs["status"]
    path = save_netcdf(ds, tmp_path / "x.nc")
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "status" in err


def _modules(package):
    return [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]


def test_every_cli_module_imports_alone_in_a_fresh_interpreter():
    import twolayer.cli

    names = ["twolayer.cli", *_modules(twolayer.cli)]
    assert {"twolayer.cli.common", "twolayer.cli.onestep", "twolayer.cli.sgd",
            "twolayer.cli.experiments", "twolayer.cli.reproduce"} <= set(names)
    for name in names:
        r = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                           text=True)
        assert r.returncode == 0, f"{name}: {r.stderr.strip().splitlines()[-1:]}"


def test_a_reason_is_one_line(tmp_path, monkeypatch):
    import importlib

    theory_mod = importlib.import_module("twolayer.onestep.theory")

    def broken(prm):
        raise RuntimeError("first line\nsecond line\n\tthird")

    monkeypatch.setattr(theory_mod, "theory", broken)
    cfg = tmp_path / "r.toml"
    cfg.write_text('model = "onestep"\nmethod = "theory"\n[params]\nalpha = [1.0]\n')
    ds, _ = run_experiment(load_config(cfg), workers=0)
    assert str(ds["reason"].values) == "RuntimeError: first line second line third"


@pytest.mark.parametrize("kw,word", [
    (dict(init_scale=1e100), "from t = 0"),
    (dict(t_max=1e300), "not finite"),
])
def test_an_ode_that_leaves_the_integrals_range_is_failed_not_ok(kw, word):
    """Huge overlaps used to give status ok with NaN risks (issue: failures are results)."""
    with pytest.warns(ConvergenceWarning, match=word):
        ds = METHODS[("sgd", "ode")](d=100, **kw).compute()
    validate(ds)
    assert ds.attrs["status"] == "failed" and "try smaller" in ds.attrs["message"]
    risk = ds["risk"].values
    first = np.argmax(~np.isfinite(risk))
    assert np.isnan(risk[first:]).all() and np.isfinite(risk[:first]).all()


def test_an_arithmetic_error_in_the_right_hand_side_is_a_failed_result(monkeypatch):
    import importlib

    ode_mod = importlib.import_module("twolayer.sgd.ode")  # the module, not the function
    calls = {"n": 0}
    real = ode_mod._System.rhs

    def flaky(self, t, y):
        calls["n"] += 1
        if t > 1.0:
            raise ZeroDivisionError("division by zero")
        return real(self, t, y)

    monkeypatch.setattr(ode_mod._System, "rhs", flaky)
    with pytest.warns(ConvergenceWarning):
        ds = METHODS[("sgd", "ode")](d=100, t_max=10.0).compute()
    assert ds.attrs["status"] == "failed" and "ZeroDivisionError" in ds.attrs["message"]
    t, risk = ds["t"].values, ds["risk"].values
    assert np.isfinite(risk[t < 1.0]).all() and np.isnan(risk[t > 1.5]).all()
    assert 1.0 <= ds.attrs["t_stop"] <= 1.5

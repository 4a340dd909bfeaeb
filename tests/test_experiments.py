"""`twolayer run` / `show`: results equal direct library calls, the cache key, failures, resume.

Every sweep's merged Dataset is checked point by point against calling the library function
with the same parameters. The resume test kills a real `python -m twolayer run` process.
"""

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import twolayer
from tests.helpers import run, write
from twolayer import activations
from twolayer.cli import main
from twolayer.experiments import Store, expand, load_config, parse_config, run_experiment
from twolayer.experiments import sweep as sweep_mod
from twolayer.experiments import worker as worker_mod
from twolayer.experiments.store import Record
from twolayer.io import load_netcdf
from twolayer.onestep import simulate as onestep_simulate
from twolayer.onestep import theory
from twolayer.sgd import ode
from twolayer.sgd import simulate as sgd_simulate

SRC = str(Path(twolayer.__file__).resolve().parents[1])
# Workers run with one BLAS thread, the test process may use more: the same float64 numbers up
# to the order of summation.
BLAS_RTOL = 1e-10


def sim_config(params: str, sweep: str = "", d: int = 60) -> str:
    return ('model = "onestep"\nmethod = "simulate"\noutput = "out.nc"\n[params]\n'
            f"d = {d}\nseeds = 2\nn_test = 300\nalpha = [0.5, 1.5]\nlam = [0.01, 0.1]\n"
            f"{params}\n[sweep]\n{sweep}\n")


def test_local_cluster_sweep_equals_the_library(tmp_path, capsys):
    cfg = write(tmp_path, sim_config("", "eta = [0.0, 1.0]\nalpha0 = [0.5, 2.0]"))
    environ = dict(os.environ)
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "2", "--json"])
    assert code == 0, err
    assert dict(os.environ) == environ  # the workers' thread settings did not leak into ours
    obj = json.loads(out)
    assert obj["counts"] == {"points": 4, "ok": 4, "failed": 0, "computed": 4, "cached": 0}
    assert obj["executor"] == "Dask LocalCluster (2 worker processes)"
    ds = load_netcdf(tmp_path / "out.nc")
    assert ds["test_error"].dims == ("eta", "alpha0", "seed", "alpha", "lam")
    assert ds["test_error"].shape == (2, 2, 2, 2, 2)
    for eta in (0.0, 1.0):
        for alpha0 in (0.5, 2.0):
            ref = onestep_simulate("tanh", "tanh", alpha0=alpha0, eta=eta, lam=[0.01, 0.1],
                                   alpha=[0.5, 1.5], d=60, seeds=2, n_test=300)
            got = ds.sel(eta=eta, alpha0=alpha0)
            for var in ("test_error", "train_error", "spike_sv", "spike_overlap"):
                np.testing.assert_allclose(got[var].values, ref[var].values, rtol=BLAS_RTOL)
    assert (ds["status"].values == "ok").all()
    assert json.loads(ds.attrs["params"])["d"] == 60 and ds.attrs["version"] == twolayer.__version__
    assert "[sweep]" in ds.attrs["config"] and ds.attrs["point_seconds"].shape == (4,)


def test_an_existing_scheduler_runs_the_points(tmp_path, capsys):
    from distributed import LocalCluster

    cfg = write(tmp_path, 'model = "sgd"\nmethod = "ode"\n[params]\nt_max = 2\nd = 50\n'
                "[sweep]\nseed = [1, 2, 3]\n")
    environ = dict(os.environ)
    try:
        with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
            code, out, err = run(capsys, ["run", str(cfg), "--scheduler",
                                          cluster.scheduler_address, "--json"])
    finally:
        os.environ.clear()
        os.environ.update(environ)
    assert code == 0, err
    obj = json.loads(out)
    assert obj["executor"] == f"Dask scheduler {cluster.scheduler_address}"
    assert obj["counts"]["computed"] == 3
    ds = load_netcdf(tmp_path / "cfg.nc")
    for seed in (1, 2, 3):
        ref = ode("erf", "erf", p=2, k=2, d=50, gamma=0.5, t_max=2, seed=seed)
        np.testing.assert_allclose(ds["risk"].sel(seed=seed).values, ref["risk"].values,
                                   rtol=1e-12)
    code, out, err = run(capsys, ["run", str(cfg), "--scheduler", "nonsense", "--overwrite"])
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--scheduler: missing port number in address 'nonsense'" in err


def test_changing_seed_or_d_never_hits_the_cache(tmp_path):
    cfg = write(tmp_path, sim_config("seed = 0", "eta = [0.0, 1.0]"))
    first, info = run_experiment(load_config(cfg), workers=0)
    assert (info["computed"], info["cached"]) == (2, 0)
    for change, d in (("seed = 5", 60), ("seed = 0", 61)):
        cfg.write_text(sim_config(change, "eta = [0.0, 1.0]", d=d))
        again, info = run_experiment(load_config(cfg), workers=0, overwrite=True)
        assert (info["computed"], info["cached"]) == (2, 0)
        ref = onestep_simulate("tanh", "tanh", alpha0=0.5, eta=1.0, lam=[0.01, 0.1],
                               alpha=[0.5, 1.5], n_test=300, seeds=2, d=d,
                               seed=int(change[-1]))
        got = again["test_error"].sel(eta=1.0).values
        np.testing.assert_allclose(got, ref["test_error"].values, rtol=BLAS_RTOL)
        assert not np.allclose(got, first["test_error"].sel(eta=1.0).values)
    # back to the first file: everything comes from the store, identical
    cfg.write_text(sim_config("seed = 0", "eta = [0.0, 1.0]"))
    back, info = run_experiment(load_config(cfg), workers=0, overwrite=True)
    assert (info["computed"], info["cached"]) == (0, 2)
    xr.testing.assert_equal(back, first)  # values, dims and coordinates; not the run attrs


def _changed(name, value):
    """Another valid value for a parameter."""
    if isinstance(value, bool):
        return not value
    if name in ("student", "teacher"):
        return "relu" if value != "relu" else "tanh"
    if name == "solver":
        return "RK45"
    if name == "reduction":
        return "wide"
    if name == "schedule":
        return "power"
    if name == "schedule_times":
        return [1.0, 2.0]
    if name == "schedule_factors":
        return [0.5]
    if name == "d" and value == "inf":
        return 100
    if name == "a_init":
        return "gaussian"
    if name == "bulk":
        return "step"
    if name == "eta_exponent":  # None: the giant step
        return 0.3
    if name == "finite_d":  # None: on below d = 1000
        return False
    if name == "variance_samples":  # None: the exact term
        return 1000
    if isinstance(value, list):
        return [*value, value[-1] + 1.0]
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.5
    return 7  # onestep simulate's p = None, sgd ode's rtol, n_nu, n_z = None


# parameters valid only together with others (the sgd schedule's)
_COMPANIONS = {"schedule_t0": 'schedule = "power"\n', "schedule_beta": 'schedule = "power"\n',
               "schedule_times": 'schedule = "steps"\nschedule_factors = [0.5, 0.5]\n',
               "schedule_factors": 'schedule = "steps"\nschedule_times = [1.0]\n'}


@pytest.mark.parametrize("model,method", [("onestep", "theory"), ("onestep", "simulate"),
                                          ("sgd", "ode"), ("sgd", "simulate")])
def test_every_parameter_changes_the_key(model, method):
    head = f'model = "{model}"\nmethod = "{method}"\n'
    base = expand(parse_config(head))[0]
    keys = {base.key}
    for name, value in parse_config(head).params.items():
        if name == "init":
            continue  # a file: covered by its content in test_init_overlaps_enter_the_key
        new = _changed(name, value)
        toml_value = json.dumps(new) if not isinstance(new, bool) else str(new).lower()
        extra = _COMPANIONS.get(name, "")
        pt = expand(parse_config(head + f"[params]\n{extra}{name} = {toml_value}\n"))[0]
        assert pt.payload["params"][name] != base.payload["params"][name]
        keys.add(pt.key)
    assert len(keys) == 1 + len([n for n in parse_config(head).params if n != "init"])


def test_init_overlaps_enter_the_key(tmp_path):
    start = tmp_path / "start.json"
    text = 'model = "sgd"\nmethod = "ode"\n[params]\np = 1\nk = 1\ninit = "start.json"\n'
    start.write_text('{"Q": [[1.0]], "M": [[0.1]], "P": [[1.0]]}')
    a = expand(parse_config(text, base_dir=tmp_path))[0]
    start.write_text('{"Q": [[1.0]], "M": [[0.2]], "P": [[1.0]]}')  # same name, other content
    b = expand(parse_config(text, base_dir=tmp_path))[0]
    assert a.key != b.key and b.payload["params"]["init"]["M"] == [[0.2]]


def test_activation_definitions_and_version_enter_the_key(monkeypatch):
    monkeypatch.setattr(activations, "_REGISTRY", dict(activations._REGISTRY))
    text = 'model = "onestep"\nmethod = "theory"\n[params]\nstudent = "mine"\n'
    activations.register("mine", np.tanh)
    a = expand(parse_config(text))[0]
    activations.register("mine", lambda x: np.tanh(1.001 * x), overwrite=True)  # same name
    b = expand(parse_config(text))[0]
    assert a.payload["activations"]["student"]["name"] == "mine"
    assert a.key != b.key
    monkeypatch.setattr(twolayer, "__version__", "99.0")
    c = expand(parse_config(text))[0]
    assert c.key != b.key and c.payload["version"] == "99.0"
    monkeypatch.setattr(sweep_mod, "code_fingerprint", lambda: "edited source")
    d = expand(parse_config(text))[0]
    assert d.key != c.key and d.payload["code"] == "edited source"
    # a worker whose code differs refuses the point, and the next run retries it
    rec = worker_mod.compute_point(d.key, d.payload)
    assert rec.status == "failed" and rec.transient and "source differs" in rec.reason


def test_a_stored_point_is_only_reused_for_its_own_payload(tmp_path):
    pt = expand(parse_config('model = "sgd"\nmethod = "ode"\n[params]\nt_max = 1\n'))[0]
    store = Store(tmp_path)
    store.put(Record(pt.key, "ok", seconds=0.1), pt.payload)
    assert store.has(pt.key, pt.payload)
    other = {**pt.payload, "params": {**pt.payload["params"], "seed": 1}}
    assert not store.has(pt.key, other)  # same file name, different parameters: a miss
    meta = next(tmp_path.rglob("*.json"))
    meta.write_text(meta.read_text().replace('"seed":0', '"seed":3'))  # tampered record
    assert not store.has(pt.key, pt.payload)


def test_failed_points_are_recorded_and_the_rest_completes(tmp_path, capsys):
    cfg = write(tmp_path, 'model = "sgd"\nmethod = "ode"\n[params]\nstudent = "linear"\n'
                'teacher = "linear"\np = 1\nk = 1\nd = 200\nt_max = 50\n'
                '[sweep]\ngamma = [0.5, 3.0, 1.0]\n')
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 3, err  # done and written, but a point is not ok (issue 14: was 0)
    obj = json.loads(out)
    assert obj["counts"] == {"points": 3, "ok": 2, "failed": 1, "computed": 3, "cached": 0}
    [bad] = obj["failed"]
    assert bad["point"] == {"gamma": 3.0} and bad["status"] == "diverged"
    assert "blew up" in bad["reason"]
    ds = load_netcdf(tmp_path / "cfg.nc")
    for g in (0.5, 1.0):
        ref = ode("linear", "linear", p=1, k=1, d=200, gamma=g, t_max=50)
        np.testing.assert_allclose(ds["risk"].sel(gamma=g).values, ref["risk"].values,
                                   rtol=1e-12)
    ref = ode("linear", "linear", p=1, k=1, d=200, gamma=3.0, t_max=50)
    assert ref.attrs["status"] == "diverged"
    assert float(ds["t_stop"].sel(gamma=3.0)) == pytest.approx(ref.attrs["t_stop"], rel=1e-12)
    # a divergence is the result for these parameters: the next run reuses it
    code, out, _ = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert json.loads(out)["counts"]["cached"] == 3
    code, out, _ = run(capsys, ["show", str(tmp_path / "cfg.nc")])
    assert code == 0 and "gamma=3.0: diverged: the ODE blew up at t =" in out
    assert "points: 3 (ok 2, failed 1); last run computed 0, reused 3" in out
    code, out, _ = run(capsys, ["show", str(cfg), "--json"])  # the file that wrote it
    assert code == 0 and json.loads(out)["axes"] == {"gamma": [0.5, 3.0, 1.0]}


def test_exceptions_are_recorded_and_unexpected_ones_retried(tmp_path, monkeypatch):
    cfg = write(tmp_path, 'model = "onestep"\nmethod = "theory"\n[params]\nalpha = [1.0]\n'
                '[sweep]\nstudent = ["tanh", "square", "erf"]\n')
    theory_mod = importlib.import_module("twolayer.onestep.theory")  # the module, not the function

    real = theory_mod.theory

    def flaky(prm):
        if prm.student == "erf":
            raise MemoryError("out of memory")
        return real(prm)

    monkeypatch.setattr(theory_mod, "theory", flaky)
    ds, info = run_experiment(load_config(cfg), workers=0)
    assert list(ds["status"].values) == ["ok", "failed", "failed"]
    assert ds["reason"].values[1].startswith("ModelAssumptionError: student 'square'")
    assert ds["reason"].values[2] == "MemoryError: out of memory"
    assert np.isnan(ds["test_error"].sel(student="erf")).all()
    ref = theory("tanh", "tanh", alpha0=0.5, eta=1.0, lam=0.01, alpha=[1.0])
    assert ds["test_error"].sel(student="tanh").item() == ref["test_error"].item()
    monkeypatch.setattr(theory_mod, "theory", real)
    ds, info = run_experiment(load_config(cfg), workers=0)
    assert (info["computed"], info["cached"]) == (1, 2)  # only the machine's failure again
    assert list(ds["status"].values) == ["ok", "failed", "ok"]
    ref = theory("erf", "tanh", alpha0=0.5, eta=1.0, lam=0.01, alpha=[1.0])
    assert ds["test_error"].sel(student="erf").item() == ref["test_error"].item()


def test_another_experiments_result_is_not_replaced(tmp_path, capsys):
    cfg = write(tmp_path, 'model = "sgd"\nmethod = "ode"\n[params]\nt_max = 1\n'
                '[sweep]\ngamma = [0.5, 1.0]\n')
    assert run(capsys, ["run", str(cfg), "--workers", "0"])[0] == 0
    assert run(capsys, ["run", str(cfg), "--workers", "0"])[0] == 0  # same experiment: fine
    before = (tmp_path / "cfg.nc").read_bytes()
    cfg.write_text(cfg.read_text().replace("[0.5, 1.0]", "[0.5, 2.0]"))
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0"])
    assert code == 2 and out == "" and "holds a different experiment" in err
    assert err.count("\n") == 1
    assert (tmp_path / "cfg.nc").read_bytes() == before
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--overwrite", "--json"])
    assert code == 0 and json.loads(out)["counts"]["cached"] == 1  # gamma = 0.5 reused
    assert load_netcdf(tmp_path / "cfg.nc")["gamma"].values.tolist() == [0.5, 2.0]


def test_zip_sweep_and_sgd_times_that_differ_between_points(tmp_path):
    cfg = write(tmp_path, 'model = "sgd"\nmethod = "simulate"\n[params]\nd = 50\nt_max = 0.5\n'
                'seeds = 1\n[sweep]\nmode = "zip"\ngamma = [0.5, 0.7, 1.0]\n'
                "seed = [3, 4, 5]\n")
    ds, _info = run_experiment(load_config(cfg), workers=0)
    assert ds["risk"].dims == ("point", "t") and ds["t_values"].dims == ("point", "t")
    assert ds["gamma"].dims == ("point",) and ds["seed"].values.tolist() == [3, 4, 5]
    for i, (g, s) in enumerate([(0.5, 3), (0.7, 4), (1.0, 5)]):
        ref = sgd_simulate("erf", "erf", p=2, k=2, d=50, gamma=g, t_max=0.5, seeds=1, seed=s)
        n = ref.sizes["t"]
        np.testing.assert_array_equal(ds["t_values"].values[i, :n], ref["t"].values)
        np.testing.assert_allclose(ds["risk"].values[i, :n], ref["risk"].values[0], rtol=1e-12)
        assert np.isnan(ds["risk"].values[i, n:]).all()  # shorter grids are padded


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


RESUME = """\
model = "onestep"
method = "theory"
output = "out.nc"

[params]
alpha = {linspace = [0.1, 5, 100]}
lam = [0.01, 0.1]

[sweep]
eta = {linspace = [0.2, 2.0, 8]}
alpha0 = [0.5, 1.0]
"""


def test_a_killed_run_resumes_with_exactly_the_missing_points(tmp_path):
    cfg = write(tmp_path, RESUME)
    exp = load_config(cfg)
    points = expand(exp)
    store = Store(exp.store)
    cmd = [sys.executable, "-m", "twolayer", "run", str(cfg), "--workers", "2", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            start_new_session=True)  # its own group: the workers die with it
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(exp.store.rglob("*.json"))) >= 3:
                break
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    stored = [pt.key for pt in points if store.has(pt.key, pt.payload)]
    assert 0 < len(stored) < len(points), len(stored)
    print(f"killed with {len(stored)} of {len(points)} points stored")
    assert not exp.output.exists()
    mtimes = {k: next(exp.store.rglob(f"{k}.json")).stat().st_mtime_ns for k in stored}

    done = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)["counts"]
    assert counts == {"points": 16, "ok": 16, "failed": 0, "computed": 16 - len(stored),
                      "cached": len(stored)}
    # the stored points were not computed again
    assert {k: next(exp.store.rglob(f"{k}.json")).stat().st_mtime_ns for k in stored} == mtimes

    # the same file, uninterrupted, in another folder and in this process
    other = tmp_path / "uninterrupted"
    other.mkdir()
    _clean, info = run_experiment(load_config(write(other, RESUME)), workers=0)
    assert info["computed"] == 16
    resumed = load_netcdf(exp.output)
    xr.testing.assert_equal(resumed, load_netcdf(other / "out.nc"))  # all but the run attrs
    assert resumed.attrs["point_cached"].sum() == len(stored)
    ref = theory("tanh", "tanh", alpha0=1.0, eta=2.0, lam=[0.01, 0.1],
                 alpha=np.linspace(0.1, 5, 100))
    np.testing.assert_array_equal(resumed["test_error"].sel(eta=2.0, alpha0=1.0).values,
                                  ref["test_error"].values)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_examples_cover_every_method_and_run(tmp_path):
    found = {}
    for path in sorted(EXAMPLES.glob("*.toml")):
        exp = load_config(path)
        found[(exp.model, exp.method)] = path
        assert exp.output.parent == EXAMPLES
    assert set(found) == {("onestep", "theory"), ("onestep", "simulate"), ("sgd", "ode"),
                          ("sgd", "simulate")}
    # the theory example, run from a copy: its η̃ = 1, α0 = 2 curve is the library's
    cfg = write(tmp_path, found[("onestep", "theory")].read_text())
    ds, info = run_experiment(load_config(cfg), workers=0)
    assert info["ok"] == 8
    ref = theory("tanh", "tanh", alpha0=2.0, eta=1.0, lam=0.01, alpha=np.linspace(0.2, 3, 15))
    np.testing.assert_array_equal(ds["test_error"].sel(eta=1.0, alpha0=2.0).values,
                                  ref["test_error"].values)


def test_show_a_single_result_and_a_missing_file(tmp_path, capsys):
    out = tmp_path / "one.nc"
    code, _, _ = run(capsys, ["sgd", "ode", "--t-max", "1", "--out", str(out)])
    assert code == 0
    code, text, _ = run(capsys, ["show", str(out)])
    assert code == 0 and "a single" in text and "risk" in text
    code, text, err = run(capsys, ["show", str(tmp_path / "none.nc")])
    assert code == 2 and text == "" and "no such result file" in err


def test_a_swept_d_with_inf_is_a_numeric_axis(tmp_path):
    cfg = write(tmp_path, 'model = "onestep"\nmethod = "theory"\n[params]\nalpha = [1.0]\n'
                '[sweep]\nd = ["inf", 200]\n')
    ds, _ = run_experiment(load_config(cfg), workers=0)
    assert ds["d"].values.tolist() == [np.inf, 200.0]
    ref = theory("tanh", "tanh", alpha0=0.5, eta=1.0, lam=0.01, alpha=[1.0], d=200)
    assert ds["test_error"].sel(d=200).item() == ref["test_error"].item()


def test_retry_failed_computes_the_failed_points_again(tmp_path, capsys):
    """A failure is a point's result (reused by a rerun) unless --retry-failed asks again."""
    cfg = write(tmp_path, 'model = "onestep"\nmethod = "theory"\n[params]\nalpha = [1.0]\n'
                '[sweep]\nstudent = ["tanh", "square"]\n')
    _, info = run_experiment(load_config(cfg), workers=0)
    assert (info["computed"], info["failed"]) == (2, 1)
    _, info = run_experiment(load_config(cfg), workers=0)
    assert (info["computed"], info["cached"]) == (0, 2)
    code = main(["run", str(cfg), "--workers", "0", "--retry-failed", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 3 and out["counts"]["computed"] == 1 and out["counts"]["cached"] == 1
    assert out["failed"][0]["reason"].startswith("ModelAssumptionError")

"""`twolayer sgd`: JSON contract, files, and exit status 2 with one line for user mistakes."""

import json
from functools import partial

import numpy as np
import pytest
import xarray as xr

from tests.helpers import run
from twolayer import __version__
from twolayer.sgd import initial_overlaps, ode

ode_wide = partial(ode, reduction="wide")  # the large-width reduction

ODE = ["sgd", "ode", "--student", "erf", "--teacher", "erf", "--p", "2", "--k", "2", "--d", "100",
       "--gamma", "0.5", "--t-max", "10"]
SIM = ["sgd", "simulate", "--p", "2", "--k", "2", "--d", "100", "--gamma", "0.5", "--t-max", "2",
       "--seeds", "2"]


def test_ode_json_is_the_library_result(capsys):
    code, out, _ = run(capsys, [*ODE, "--json"])
    assert code == 0
    obj = json.loads(out)
    assert {"t", "risk", "params", "version", "status"} <= obj.keys()
    assert obj["version"] == __version__ and obj["status"] == "ok"
    ref = ode("erf", "erf", p=2, k=2, d=100, gamma=0.5, t_max=10)
    np.testing.assert_allclose(obj["risk"], ref["risk"].values, rtol=1e-12)
    assert obj["t"][0] == 0 and obj["t"][-1] == pytest.approx(10)


def test_wide_ode_json_is_the_reduced_library_result(capsys):
    args = ["sgd", "ode", "--reduction", "wide", "--p", "200", "--k", "1", "--d", "400",
            "--gamma", "1", "--t-max", "3", "--json"]
    code, out, _ = run(capsys, args)
    assert code == 0
    obj = json.loads(out)
    assert {"t", "risk", "status", "M", "q", "params"} <= obj.keys() and "Q" not in obj
    ref = ode_wide("erf", "erf", p=200, k=1, d=400, gamma=1.0, t_max=3.0)
    np.testing.assert_allclose(obj["risk"], ref["risk"].values, rtol=1e-12)
    assert len(obj["q"]) == 200 and obj["reduction"] == "wide"


def test_simulate_json_has_the_contract_keys_and_starts_at_the_ode(capsys):
    code, out, _ = run(capsys, [*SIM, "--json"])
    assert code == 0
    obj = json.loads(out)
    assert {"t", "risk", "risk_std", "params", "version", "ode_risk"} <= obj.keys()
    assert len(obj["risk_seeds"]) == 2
    assert obj["ode_risk"][0] == pytest.approx(obj["risk"][0], rel=1e-12)


def test_init_file_sets_the_start(capsys, tmp_path):
    ov = initial_overlaps(2, 1, 50, seed=3)
    path = tmp_path / "init.json"
    path.write_text(json.dumps({"Q": ov.Q.tolist(), "M": ov.M.tolist(), "P": ov.P.tolist()}))
    code, out, _ = run(capsys, ["sgd", "ode", "--p", "2", "--k", "1", "--t-max", "1",
                                "--init", str(path), "--json"])
    assert code == 0
    obj = json.loads(out)
    ref = ode("erf", "erf", p=2, k=1, d=50, seed=3, gamma=0.5, t_max=1)
    assert obj["risk"][0] == pytest.approx(float(ref["risk"][0]), rel=1e-12)
    # the simulation realises the same overlaps exactly
    code, out, _ = run(capsys, ["sgd", "simulate", "--p", "2", "--k", "1", "--d", "60",
                                "--t-max", "0.1", "--seeds", "2", "--init", str(path), "--json"])
    assert json.loads(out)["risk"][0] == pytest.approx(obj["risk"][0], rel=1e-10)


def test_outputs_and_no_silent_overwrite(capsys, tmp_path):
    nc, png = tmp_path / "r.nc", tmp_path / "r.png"
    assert run(capsys, [*SIM, "--out", str(nc), "--plot", str(png)])[0] == 0
    ds = xr.open_dataset(nc)
    assert json.loads(ds.attrs["params"])["seeds"] == 2 and ds.sizes["seed"] == 2
    assert png.stat().st_size > 10_000
    code, out, err = run(capsys, [*SIM, "--out", str(nc)])
    assert code == 2 and "exists" in err and out == ""


def _bad_init(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--student", "nosuch"], "nosuch"),
        (["--p", "0"], "'p'"),
        (["--k", "0"], "'k'"),
        (["--gamma", "0"], "'gamma'"),
        (["--gamma", "nan"], "'gamma'"),
        (["--noise", "-1"], "'noise'"),
        (["--t-max", "-1"], "'t_max'"),
        (["--solver", "magic"], "solver"),
        (["--p", "two"], "two"),
    ],
)
def test_bad_arguments_exit_2(capsys, extra, needle):
    for base in (ODE,) if extra[0] == "--solver" else (ODE, SIM):
        code, out, err = run(capsys, [*base, *extra])
        assert code == 2, err
        assert out == "" and "Traceback" not in err and needle in err
        assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "not valid JSON"),
        ({"Q": [[1, 0], [0, 1]], "M": [[0], [0]]}, "keys"),
        ({"Q": [[1, 0.5], [0, 1]], "M": [[0], [0]], "P": [[1]]}, "symmetric"),
        ({"Q": [[1, 2], [2, 1]], "M": [[0], [0]], "P": [[1]]}, "semi-definite"),
        ({"Q": [[1, 0], [0, 1]], "M": [[0, 0], [0, 0]], "P": [[1]]}, "shapes"),
        ({"Q": [[1, 0], [0, 1]], "M": [["a"], [0]], "P": [[1]]}, "'M'"),
        ({"Q": [[1]], "M": [[0]], "P": [[1]]}, "p=1"),
    ],
)
def test_bad_init_file_exit_2(capsys, tmp_path, content, needle):
    path = _bad_init(tmp_path, "bad.json", content)
    code, out, err = run(capsys, ["sgd", "ode", "--p", "2", "--k", "1", "--init", path])
    assert code == 2 and out == "" and needle in err and "Traceback" not in err, err


def test_missing_init_file_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, ["sgd", "ode", "--init", str(tmp_path / "nope.json")])
    assert code == 2 and "cannot read" in err

"""The command line: JSON contract, tables, files, and exit status 2 for user mistakes."""

import json
import subprocess
import sys

import pytest
import xarray as xr

from tests.helpers import run
from twolayer import __version__

THEORY = ["onestep", "theory", "--student", "tanh", "--teacher", "tanh", "--alpha0", "0.5",
          "--eta", "1", "--lam", "0.01", "--alpha", "0.2,1,3"]
SIM = ["onestep", "simulate", "--alpha", "0.5,1", "--d", "120", "--seeds", "2", "--n-test", "500"]


def test_version_and_help(capsys):
    assert run(capsys, ["--version"])[:2] == (0, f"twolayer {__version__}\n")
    for args in (["--help"], ["onestep", "--help"], ["onestep", "theory", "--help"],
                 ["onestep", "simulate", "--help"]):
        code, out, _ = run(capsys, args)
        assert code == 0 and "Usage" in out


def test_theory_json_matches_library(capsys):
    from twolayer.onestep import theory

    code, out, _ = run(capsys, [*THEORY, "--json"])
    obj = json.loads(out)
    assert code == 0
    assert {"alpha", "test_error", "converged", "params", "version"} <= obj.keys()
    ds = theory("tanh", "tanh", alpha0=0.5, eta=1, lam=0.01, alpha=[0.2, 1, 3])
    assert obj["test_error"] == pytest.approx(ds["test_error"].values[:, 0].tolist(), rel=1e-12)
    assert obj["params"]["alpha0"] == 0.5 and obj["version"] == __version__


def test_simulate_json_table_and_files(capsys, tmp_path):
    out_nc, png = tmp_path / "r.nc", tmp_path / "r.png"
    code, out, err = run(capsys, [*SIM, "--json", "--out", str(out_nc), "--plot", str(png)])
    assert code == 0
    obj = json.loads(out)
    assert {"alpha", "test_error", "test_error_std", "params", "version"} <= obj.keys()
    assert len(obj["test_error"]) == 2 and all(0 < v < 2 for v in obj["test_error"])
    assert "run 2/2" in err
    ds = xr.open_dataset(out_nc, engine="scipy")
    assert json.loads(ds.attrs["params"])["d"] == 120 and ds.attrs["version"] == __version__
    assert ds["test_error"].shape == (2, 2, 1)
    assert png.read_bytes()[:4] == b"\x89PNG"
    # never silently overwritten
    code, out, err = run(capsys, [*SIM, "--out", str(out_nc)])
    assert code == 2 and "exists" in err and out == ""
    code, out, _ = run(capsys, [*SIM, "--out", str(out_nc), "--overwrite"])
    assert code == 0 and "simulation" in out


@pytest.mark.parametrize("extra,msg", [
    (["--student", "nosuch"], "unknown activation 'nosuch'; known:"),
    (["--alpha", "0,1"], "'alpha' parameter must be > 0"),
    (["--alpha0", "-1"], "'alpha0' parameter must be >= 0"),
    (["--lam", "-0.1"], "'lam' parameter must be >= 0"),
    (["--lam", "nan"], "finite"),
    (["--noise", "inf"], "finite"),
    (["--alpha", "1,,2"], "cannot parse"),
    (["--d", "0"], "'d' parameter must be >= 1"),
    (["--d", "abc"], "--d"),
    (["--out", "/nonexistent/dir/x.nc"], "does not exist"),
    (["--student", "square"], "no uniform spike"),
    (["--bogus"], "No such option"),
])
def test_user_mistakes_exit_2_with_one_line(capsys, extra, msg):
    code, out, err = run(capsys, [*THEORY, *extra, "--json"])
    assert code == 2 and out == ""
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err


def test_installed_entry_point_exit_status():
    bad = subprocess.run([sys.executable, "-m", "twolayer", *SIM, "--p", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "'p' parameter must be >= 1" in bad.stderr
    assert bad.stdout == "" and "Traceback" not in bad.stderr

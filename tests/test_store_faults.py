"""Issue 14: the store and the run under faults — sweep-less experiments, tampered or corrupt
point files, concurrent runs on one output, write failures, exit statuses, stale temporaries,
file modes."""

import json

import numpy as np

from twolayer.cli import main
from twolayer.io import load_netcdf
from twolayer.sgd import ode


def write(folder, text, name="cfg.toml"):
    path = folder / name
    path.write_text(text)
    return path


def run(capsys, args):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


ODE = 'model = "sgd"\nmethod = "ode"\n[params]\nt_max = 1\nd = 50\n'


# --------------------------------------------------------------------------- 1. no [sweep]
def test_an_experiment_without_a_sweep_is_one_point(tmp_path, capsys):
    cfg = write(tmp_path, ODE)
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 0, err
    obj = json.loads(out)
    assert obj["axes"] == {} and obj["failed"] == []
    assert obj["counts"] == {"points": 1, "ok": 1, "failed": 0, "computed": 1, "cached": 0}
    ds = load_netcdf(tmp_path / "cfg.nc")
    ref = ode("erf", "erf", p=2, k=2, d=50, gamma=0.5, t_max=1)
    assert ds["status"].shape == () and str(ds["status"].values) == "ok"
    np.testing.assert_allclose(ds["risk"].values, ref["risk"].values, rtol=1e-12)
    code, out, err = run(capsys, ["show", str(cfg)])
    assert code == 0 and "no sweep: one point" in out and "points: 1 (ok 1, failed 0)" in out
    code, out, err = run(capsys, ["plot", str(cfg), "--json"])
    assert code == 0, err
    png, pdf = json.loads(out)["figures"]
    assert (tmp_path / "cfg.png").stat().st_size > 1000 and png.endswith("cfg.png")

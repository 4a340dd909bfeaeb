"""Issue 14: the store and the run under faults — sweep-less experiments, tampered or corrupt
point files, concurrent runs on one output, write failures, exit statuses, stale temporaries,
file modes."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from twolayer.cli import main
from twolayer.experiments import Store, expand, load_config, run_experiment
from twolayer.experiments.store import STORE_FORMAT, content_hash
from twolayer.io import load_netcdf, save_netcdf
from twolayer.onestep import theory
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
    assert png.endswith("cfg.png") and pdf.endswith("cfg.pdf")
    assert (tmp_path / "cfg.png").stat().st_size > 1000


# --------------------------------------------------------------------------- 2. checksums
THEORY = ('model = "onestep"\nmethod = "theory"\n[params]\nalpha = [1.0, 2.0]\n'
          "[sweep]\neta = [0.0, 1.0]\n")


def _point_files(exp, eta):
    pt = next(p for p in expand(exp) if p.params["eta"] == eta)
    folder = exp.store / pt.key[:2]
    return pt, folder / f"{pt.key}.json", folder / f"{pt.key}.nc"


def _flip_a_bit(path):
    b = bytearray(path.read_bytes())
    b[len(b) // 2] ^= 0x04
    path.write_bytes(bytes(b))


def _edit_values(path):
    ds = load_netcdf(path)
    ds["test_error"] = ds["test_error"] * 1.5
    save_netcdf(ds, path, overwrite=True)


def _edit_record(field, value):
    def edit(meta_path):
        meta = json.loads(meta_path.read_text())
        if value is None:
            del meta[field]
        else:
            meta[field] = value
        meta_path.write_text(json.dumps(meta))
    return edit


CORRUPTIONS = {
    "copied over by another point": lambda m, d, other: shutil.copyfile(other, d),
    "values edited": lambda m, d, other: _edit_values(d),
    "a flipped bit": lambda m, d, other: _flip_a_bit(d),
    "truncated": lambda m, d, other: d.write_bytes(d.read_bytes()[:200]),
    "garbage": lambda m, d, other: d.write_bytes(b"\x00garbage" * 64),
    "data file deleted": lambda m, d, other: d.unlink(),
    "status edited": lambda m, d, other: _edit_record("status", "diverged")(m),
    "has_data edited": lambda m, d, other: _edit_record("has_data", False)(m),
    "no status": lambda m, d, other: _edit_record("status", None)(m),
    "record is not JSON": lambda m, d, other: m.write_text("{nope"),
    "record is a list": lambda m, d, other: m.write_text("[1, 2]"),
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_a_corrupt_stored_point_is_computed_again(tmp_path, capsys, how):
    cfg = write(tmp_path, THEORY)
    assert run(capsys, ["run", str(cfg), "--workers", "0"])[0] == 0
    exp = load_config(cfg)
    _pt, meta, data = _point_files(exp, 0.0)  # the random-features point (η̃ = 0)
    _other, _, other_data = _point_files(exp, 1.0)
    CORRUPTIONS[how](meta, data, other_data)
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 0, err
    assert "1 stored point(s) failed their checks and are computed again" in err
    assert "Traceback" not in err
    counts = json.loads(out)["counts"]
    assert (counts["computed"], counts["cached"], counts["ok"]) == (1, 1, 2)
    ds = load_netcdf(tmp_path / "cfg.nc")
    for eta in (0.0, 1.0):
        ref = theory("tanh", "tanh", alpha0=0.5, eta=eta, lam=0.01, alpha=[1.0, 2.0])
        np.testing.assert_array_equal(ds["test_error"].sel(eta=eta).values,
                                      ref["test_error"].values)
    assert list(ds["status"].values) == ["ok", "ok"]
    # and the point is sound again: the next run reuses both, silently
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 0 and json.loads(out)["counts"]["cached"] == 2 and "failed their" not in err


def test_records_carry_checksums_of_the_data_and_of_themselves(tmp_path):
    cfg = write(tmp_path, THEORY)
    exp = load_config(cfg)
    run_experiment(exp, workers=0)
    pt, meta_path, data_path = _point_files(exp, 1.0)
    meta = json.loads(meta_path.read_text())
    assert meta["format"] == STORE_FORMAT == 3
    assert meta["data_sha256"] == hashlib.sha256(data_path.read_bytes()).hexdigest()
    rest = {k: v for k, v in meta.items() if k != "record_sha256"}
    assert meta["record_sha256"] == content_hash(rest)
    store = Store(exp.store)
    assert store.get(pt.key, pt.payload).status == "ok"
    meta["reason"] = "edited"  # a consistent-looking edit without the checksum
    meta_path.write_text(json.dumps(meta))
    assert store.get(pt.key, pt.payload) is None
    assert "modified" in store.invalid[pt.key]

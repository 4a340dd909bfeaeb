"""Issue 14: the store and the run under faults — sweep-less experiments, tampered or corrupt
point files, concurrent runs on one output, write failures, exit statuses, stale temporaries,
file modes."""

import errno
import hashlib
import importlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import twolayer
from tests.helpers import run, write
from twolayer.experiments import Store, expand, load_config, run_experiment
from twolayer.experiments import sweep as sweep_mod
from twolayer.experiments.store import STORE_FORMAT, content_hash
from twolayer.io import load_netcdf, save_netcdf
from twolayer.onestep import theory
from twolayer.sgd import ode


def one_error(err):
    """Exactly one error line on stderr (beside the progress bar), no traceback."""
    lines = [ln for ln in err.splitlines() if ln.startswith("twolayer: error: ")]
    return len(lines) == 1 and "Traceback" not in err and err.rstrip().endswith(
        lines[0].rstrip())


SRC = str(Path(twolayer.__file__).resolve().parents[1])
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
def test_a_sweepless_point_that_diverged_is_shown_with_its_reason(tmp_path, capsys):
    cfg = write(tmp_path, 'model = "sgd"\nmethod = "ode"\n[params]\nstudent = "linear"\n'
                'teacher = "linear"\np = 1\nk = 1\nd = 200\nt_max = 50\ngamma = 3.0\n')
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 3, err
    [bad] = json.loads(out)["failed"]
    assert bad["point"] == {} and bad["status"] == "diverged" and "blew up" in bad["reason"]
    code, out, _ = run(capsys, ["show", str(tmp_path / "cfg.nc")])
    assert code == 0 and "the point: diverged: the ODE blew up at t =" in out


# --------------------------------------------------------------------------- 5. exit statuses
def test_every_point_failed_is_exit_3_with_the_results_written(tmp_path, capsys):
    cfg = write(tmp_path, 'model = "onestep"\nmethod = "theory"\n[params]\nalpha = [1.0]\n'
                '[sweep]\nstudent = ["square", "he2"]\n')
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 3, err
    obj = json.loads(out)
    assert obj["counts"]["failed"] == 2 and obj["status"] == "failed"
    assert list(load_netcdf(tmp_path / "cfg.nc")["status"].values) == ["failed", "failed"]
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0"])  # all from the store
    assert code == 3 and "failed 2" in out and err.count("cut short") == 0


def test_a_point_cut_short_is_exit_4_and_the_rerun_completes(tmp_path, capsys, monkeypatch):
    theory_mod = importlib.import_module("twolayer.onestep.theory")
    real = theory_mod.theory

    def flaky(prm):
        if prm.eta == 1.0:
            raise MemoryError("out of memory")
        return real(prm)

    cfg = write(tmp_path, THEORY)
    monkeypatch.setattr(theory_mod, "theory", flaky)
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 4, err
    assert "1 point(s) were cut short" in err and "run the same command again" in err
    assert json.loads(out)["counts"] == {"points": 2, "ok": 1, "failed": 1, "computed": 2,
                                         "cached": 0}
    assert list(load_netcdf(tmp_path / "cfg.nc")["status"].values) == ["ok", "failed"]
    monkeypatch.setattr(theory_mod, "theory", real)
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 0, err
    assert json.loads(out)["counts"]["computed"] == 1


def test_a_scheduler_lost_mid_run_is_exit_4(tmp_path, capsys, monkeypatch):
    import distributed

    real = distributed.as_completed

    def dies(futures, **kw):
        it = real(futures, **kw)
        yield next(it)
        raise OSError("Timed out trying to connect to tcp://127.0.0.1:1 (scheduler gone)")

    monkeypatch.setattr(distributed, "as_completed", dies)
    cfg = write(tmp_path, THEORY)
    environ = dict(os.environ)
    try:
        code, out, err = run(capsys, ["run", str(cfg), "--workers", "1", "--json"])
    finally:
        os.environ.clear()
        os.environ.update(environ)
    assert code == 4, err
    obj = json.loads(out)
    assert (obj["counts"]["ok"], obj["counts"]["failed"]) == (1, 1), obj["failed"]
    [lost] = obj["failed"]
    assert lost["reason"].startswith("cut short: OSError: Timed out")
    assert (tmp_path / "cfg.nc").is_file()


SGD_DIVERGES = ["--student", "linear", "--teacher", "linear", "--p", "1", "--k", "1",
                "--d", "200", "--gamma", "3", "--t-max", "50"]


@pytest.mark.parametrize("json_", [False, True])
def test_single_commands_exit_3_when_the_result_is_not_ok(tmp_path, capsys, json_):
    flag = ["--json"] if json_ else []
    out_nc = tmp_path / "ode.nc"
    code, out, err = run(capsys, ["sgd", "ode", *SGD_DIVERGES, "--out", str(out_nc), *flag])
    assert code == 3, err
    assert load_netcdf(out_nc).attrs["status"] == "diverged"  # still written
    if json_:
        assert json.loads(out)["status"] == "diverged"
    else:
        assert "status: diverged" in out
    code, out, err = run(capsys, ["sgd", "simulate", *SGD_DIVERGES[:-4], "--gamma", "10",
                                  "--t-max", "5", "--seeds", "1", "--no-ode", *flag])
    assert code == 3, err
    assert "runs diverged" in err
    code, out, err = run(capsys, ["onestep", "theory", "--max-iter", "2", "--alpha", "1,2",
                                  *flag])
    assert code == 3, err
    assert (json.loads(out)["status"] if json_ else out.split("status: ")[1][:13]) \
        == "not_converged"
    code, out, err = run(capsys, ["onestep", "theory", "--alpha", "1", *flag])
    assert code == 0, err


@pytest.mark.parametrize("failed,transient,code", [(0, 0, 0), (1, 0, 3), (1, 1, 4)])
def test_reproduce_exit_status(monkeypatch, capsys, failed, transient, code):
    import twolayer.reproduce as rep
    from twolayer.reproduce.run import Reproduction

    counts = {"a": {"points": 2, "ok": 2 - failed, "failed": failed, "computed": 2,
                    "cached": 0}}
    monkeypatch.setattr(rep, "reproduce", lambda *a, **k: Reproduction(
        "x", "small", ["x.png", "x.pdf"], {"a": "a.nc"}, counts, 1.0, transient))
    got, out, err = run(capsys, ["reproduce", "x", "--json"])
    assert got == code
    assert ("were cut short" in err) == (transient > 0)
    assert json.loads(out)["status"] == ("ok" if not failed else "incomplete")


def test_the_exit_statuses_are_documented():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    r = subprocess.run([sys.executable, "-m", "twolayer", "--help"], capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": SRC})
    helptext = " ".join(r.stdout.split())
    assert "3 done and results written, but some are not ok" in helptext
    assert "4 the run was cut short" in helptext
    assert "| 3 | done and results written, but some are not ok" in readme
    assert "| 4 | the run was cut short" in readme


# ------------------------------------------------------------------------ 3. two runs, one output
OTHER = THEORY.replace("eta = [0.0, 1.0]", "eta = [0.5, 2.0]")


def test_another_experiment_saved_meanwhile_is_not_replaced(tmp_path, capsys, monkeypatch):
    """Run A is merging when run B (another experiment, same output) saves: A must lose."""
    real_merge = sweep_mod.merge
    cfg_b = write(tmp_path, OTHER, "b.toml")
    cfg_b.write_text(OTHER.replace("[params]", 'output = "cfg.nc"\n[params]'))
    state = {"inside": False}

    def merge_while_b_saves(*args, **kw):
        if not state["inside"]:
            state["inside"] = True
            run_experiment(load_config(cfg_b), workers=0)  # B finishes first
        return real_merge(*args, **kw)

    monkeypatch.setattr(sweep_mod, "merge", merge_while_b_saves)
    cfg_a = write(tmp_path, THEORY)
    code, out, err = run(capsys, ["run", str(cfg_a), "--workers", "0"])
    assert code == 2 and out == "" and one_error(err), err
    assert "was written by a different experiment while this run worked" in err
    assert "points are in the store" in err
    ds = load_netcdf(tmp_path / "cfg.nc")  # B's result, intact
    assert ds["eta"].values.tolist() == [0.5, 2.0]
    assert not list(tmp_path.glob(".cfg.nc.lock"))
    exp_a = load_config(cfg_a)
    assert all(Store(exp_a.store).has(pt.key, pt.payload) for pt in expand(exp_a))


def test_a_save_waits_for_a_live_lock_and_takes_over_a_dead_one(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, THEORY)
    lock = tmp_path / ".cfg.nc.lock"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{sleeper.pid}\n")
        monkeypatch.setattr(sweep_mod, "_LOCK_WAIT_S", 0.3)
        code, _out, err = run(capsys, ["run", str(cfg), "--workers", "0"])
        assert code == 2 and one_error(err)
        assert f"another twolayer run is writing {str(tmp_path / 'cfg.nc')!r}" in err
        assert not (tmp_path / "cfg.nc").exists() and lock.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # its process is gone (killed while saving): the lock is stale and taken over
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 0, err
    assert json.loads(out)["counts"]["cached"] == 2 and not lock.exists()


# --------------------------------------------------------------------------- 4. write failures
def _enospc(*args, **kw):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_storing_a_point_is_one_line(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, THEORY)
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _enospc)
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0"])
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.strip().endswith("No space left on device") and "cannot write" in err
    monkeypatch.undo()
    exp = load_config(cfg)
    assert not [p for p in exp.store.rglob("*") if p.is_file()]  # nothing half-stored
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--json"])
    assert code == 0 and json.loads(out)["counts"]["computed"] == 2


def test_a_full_disk_at_the_record_or_the_output_is_one_line(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, THEORY)
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(".json") or str(dst).endswith("cfg.nc"):
            _enospc()
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    code, _out, err = run(capsys, ["run", str(cfg), "--workers", "0"])
    assert code == 2 and one_error(err) and "No space left on device" in err
    exp = load_config(cfg)
    assert not list(exp.store.rglob("*.json")) and not list(exp.store.rglob("*.part"))
    monkeypatch.undo()
    monkeypatch.setattr(os, "replace", lambda s, d: _enospc() if str(d).endswith("cfg.nc")
                        else real_replace(s, d))
    code, _out, err = run(capsys, ["run", str(cfg), "--workers", "0"])
    assert code == 2 and one_error(err) and "cannot write" in err
    assert not (tmp_path / "cfg.nc").exists() and not list(tmp_path.glob(".*.part"))
    assert len(list(exp.store.rglob("*.json"))) == 2  # the points are stored


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folders_are_one_line(tmp_path, capsys):
    cfg = write(tmp_path, THEORY)
    assert run(capsys, ["run", str(cfg), "--workers", "0"])[0] == 0
    figs = tmp_path / "figs"
    figs.mkdir()
    figs.chmod(0o555)
    store_dirs = [d for d in load_config(cfg).store.iterdir() if d.is_dir()]
    try:
        code, out, err = run(capsys, ["plot", str(cfg), "--out", str(figs / "f.png")])
        assert code == 2 and out == "" and one_error(err) and "f.png" in err
        # a store folder made read-only: the recomputed point cannot be stored
        cfg.write_text(THEORY.replace("[0.0, 1.0]", "[0.0, 1.0, 3.0]"))
        for d in store_dirs:
            d.chmod(0o555)
        load_config(cfg).store.chmod(0o555)
        code, _out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--overwrite"])
        assert code == 2 and one_error(err) and "Permission denied" in err
    finally:
        figs.chmod(0o755)
        load_config(cfg).store.chmod(0o755)
        for d in store_dirs:
            d.chmod(0o755)


def test_a_read_only_folder_by_monkeypatch_is_one_line(tmp_path, capsys, monkeypatch):
    """The same as the chmod test, for root (who ignores permissions): os.open says EROFS."""
    cfg = write(tmp_path, THEORY)
    assert run(capsys, ["run", str(cfg), "--workers", "0"])[0] == 0
    real_open = os.open

    def read_only(path, flags, *args, **kw):
        if flags & os.O_CREAT and str(path).endswith(".part"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", read_only)
    code, out, err = run(capsys, ["plot", str(cfg), "--out", str(tmp_path / "f.png")])
    assert code == 2 and out == "" and one_error(err) and "Read-only file system" in err
    cfg.write_text(THEORY.replace("[0.0, 1.0]", "[0.0, 1.0, 3.0]"))
    code, out, err = run(capsys, ["run", str(cfg), "--workers", "0", "--overwrite"])
    assert code == 2 and out == "" and one_error(err) and "Read-only file system" in err
    monkeypatch.undo()
    assert json.loads(run(capsys, ["show", str(tmp_path / "cfg.nc"), "--json"])[1])["axes"] \
        == {"eta": [0.0, 1.0]}  # the old result is intact


def test_plot_into_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    cfg = write(tmp_path, THEORY)
    assert run(capsys, ["run", str(cfg), "--workers", "0"])[0] == 0
    monkeypatch.setattr(os, "replace", _enospc)
    code, _out, err = run(capsys, ["plot", str(cfg)])
    assert code == 2 and one_error(err) and "No space left on device" in err
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*.part"))


# --------------------------------------------------------------------------- 6. stale temporaries
def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_temporaries_of_killed_writers_are_removed_and_live_ones_kept(tmp_path, capsys):
    from twolayer.io import _host

    cfg = write(tmp_path, THEORY)
    assert run(capsys, ["run", str(cfg), "--workers", "0"])[0] == 0
    exp = load_config(cfg)
    sub = next(d for d in exp.store.iterdir() if d.is_dir())
    dead, host = _dead_pid(), _host()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    old = time.time() - 60
    stale = [sub / f".{'a' * 64}.json.{dead}-{host}.0123abcd.part",
             tmp_path / f".cfg.nc.{dead}-{host}.89abcdef.part",
             sub / f".{'b' * 64}.x1y2z3w4.part"]  # an older twolayer's mkstemp name, a day old
    live = [sub / f".{'c' * 64}.nc.{sleeper.pid}-{host}.0123abcd.part",
            tmp_path / f".cfg.nc.{dead}-{'f' * 8}.0123abcd.part",  # another machine's
            tmp_path / "notes.part"]  # not ours
    for p in stale + live:
        p.write_bytes(b"partial")
        os.utime(p, (old, old))
    os.utime(stale[2], (old - 86400, old - 86400))
    try:
        code, out, err = run(capsys, ["run", str(cfg), "--workers", "0"])
        assert code == 0 and "wrote" in out, err
        assert [p.exists() for p in stale] == [False, False, False]
        assert [p.exists() for p in live] == [True, True, True]
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_output_inside_the_store_is_refused_before_any_work(tmp_path, capsys):
    for store in ('"out-store"', '"."'):
        cfg = write(tmp_path, THEORY.replace("[params]", f'output = "out-store/r.nc"\n'
                                             f"store = {store}\n[params]"))
        code, _out, err = run(capsys, ["run", str(cfg), "--workers", "0"])
        assert code == 2 and one_error(err) and "is inside the point store" in err
        assert not (tmp_path / "out-store").exists() or not any((tmp_path / "out-store").iterdir())


def test_an_unreachable_scheduler_fails_fast_and_creates_no_store(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write(tmp_path, THEORY)
    t0 = time.monotonic()
    code, _out, err = run(capsys, ["run", str(cfg), "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert time.monotonic() - t0 < 15
    assert code == 2 and one_error(err) and "within 5 s" in err
    assert not (tmp_path / "twolayer-store").exists()


# --------------------------------------------------------------------------- 7. file modes
def test_files_get_the_umask_mode(tmp_path, capsys):
    cfg = write(tmp_path, THEORY)
    old = os.umask(0o022)
    try:
        assert run(capsys, ["run", str(cfg), "--workers", "0"])[0] == 0
        code, _, err = run(capsys, ["sgd", "ode", "--t-max", "1", "--out",
                                    str(tmp_path / "one.nc")])
        assert code == 0, err
        os.umask(0o007)
        cfg2 = write(tmp_path, OTHER.replace("[params]", 'output = "g.nc"\n[params]'), "g.toml")
        assert run(capsys, ["run", str(cfg2), "--workers", "0"])[0] == 0
    finally:
        os.umask(old)
    store = load_config(cfg).store
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in
             [tmp_path / "cfg.nc", tmp_path / "one.nc", *store.rglob("*.json"),
              *store.rglob("*.nc")]}
    assert len(modes) == 2 + 4 + 4, modes
    assert modes.pop("g.nc", None) is None  # not in the store
    later = {pt.key for pt in expand(load_config(cfg2))}
    for name, mode in modes.items():
        assert mode == (0o660 if name.split(".")[0] in later else 0o644), (name, oct(mode))
    assert stat.S_IMODE((tmp_path / "g.nc").stat().st_mode) == 0o660

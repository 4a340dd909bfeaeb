"""`twolayer store ls|gc`: a real store, damaged in known ways, listed and cleaned exactly.

The reference is what the test did to the store: which records it broke, which files it
orphaned or left behind, their sizes on disk, and the result of the run before the damage.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import run, write
from twolayer.errors import StoreError
from twolayer.experiments import Store, expand, load_config, run_experiment
from twolayer.experiments.maintenance import collect_garbage, inspect_store
from twolayer.io import _host

EXPERIMENT = """
model = "onestep"
method = "theory"
output = "out.nc"
[params]
alpha = [0.5, 1.5]
[sweep]
student = ["tanh", "square"]   # square: mu1 = 0, refused by the theory (a failed point)
lam = [0.01, 0.03, 0.1, 0.3]
"""


def dead_pid() -> int:
    """The PID of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def sizes(paths) -> int:
    return sum(Path(p).stat().st_size for p in paths)


def all_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.fixture
def damaged(tmp_path):
    """A store of 8 points (4 ok, 4 failed); 3 ok points damaged, temporaries and locks."""
    cfg = write(tmp_path, EXPERIMENT)
    exp = load_config(cfg)
    before, info = run_experiment(exp, workers=0)
    assert info["computed"] == 8 and info["ok"] == 4
    store = Store(exp.store)
    ok = [pt for pt in expand(exp) if pt.params["student"] == "tanh"]
    a, b, c, intact = (store._paths(pt.key) for pt in ok)
    a[0].write_text("{not json")  # a damaged record
    with open(b[1], "r+b") as fh:  # a truncated data file
        fh.truncate(100)
    c[0].unlink()  # a lost record: its data file is an orphan
    pid, host = dead_pid(), _host()
    stale = exp.store / a[0].parent.name / f".{a[1].name}.{pid}-{host}.0badc0de.part"
    stale.write_bytes(b"x" * 123)
    live = exp.store / f".x.nc.{os.getpid()}-{host}.0000abcd.part"
    live.write_bytes(b"y" * 7)
    lock = exp.store / f".writer.{pid}-{host}.deadbeef.lock"
    lock.write_text(f"{pid} {host}\n")
    garbage = [a[0], a[1], b[0], b[1], c[1], stale, lock]
    return {"cfg": cfg, "exp": exp, "before": before, "keys": [pt.key for pt in ok],
            "garbage": garbage, "live": live, "intact": intact, "root": exp.store}


def test_ls_counts_what_was_done_to_the_store(damaged, capsys):
    root, (ka, kb, kc, _) = damaged["root"], damaged["keys"]
    info = inspect_store(root)
    assert info["count"] == 5 and info["statuses"] == {"failed": 4, "ok": 1}
    assert info["bytes"] == all_bytes(root)
    assert len(info["failures"]) == 4
    assert all(f["reason"].startswith("ModelAssumptionError:") and "\n" not in f["reason"]
               and not f["transient"] for f in info["failures"])
    invalid = {r["key"]: r["reason"] for r in info["invalid"]}
    assert invalid == {ka: "the record is not valid JSON",
                       kb: "the data file was modified or replaced (its SHA-256 does not "
                           "match)"}
    assert [o["file"] for o in info["orphans"]] == [f"{kc[:2]}/{kc}.nc"]
    temps = {t["file"]: t["stale"] for t in info["temporaries"]}
    assert temps == {damaged["garbage"][5].relative_to(root).as_posix(): True,
                     damaged["live"].name: False}
    assert [(w["alive"]) for w in info["writers"]] == [False]
    code, out, _ = run(capsys, ["store", "ls", str(damaged["cfg"]), "--json"])
    assert code == 0 and json.loads(out) == json.loads(json.dumps(info))
    code, out, _ = run(capsys, ["store", "ls", str(root)])
    assert code == 0 and "5 points (failed 4, ok 1)" in out
    assert f"invalid {ka[:12]}: the record is not valid JSON" in out
    assert "7 file(s) can be removed" in out  # 2 invalid points (2 files each), 1 orphan,
    # 1 stale temporary, 1 dead writer's lock


def test_gc_removes_exactly_the_garbage_and_a_rerun_recomputes_it(damaged, capsys):
    root, garbage = damaged["root"], damaged["garbage"]
    expected = sorted(p.relative_to(root).as_posix() for p in garbage)
    freed = sizes(garbage)
    valid_files = [p for p in root.rglob("*") if p.is_file() and p not in garbage]
    dry = collect_garbage(root, dry_run=True)
    assert sorted(dry["removed"]) == expected and dry["bytes_freed"] == freed
    assert all(p.exists() for p in garbage)
    code, out, err = run(capsys, ["store", "gc", str(root), "--json"])
    assert code == 0, err
    info = json.loads(out)
    assert sorted(info["removed"]) == expected and info["bytes_freed"] == freed
    assert info["kept"] == 5
    assert not any(p.exists() for p in garbage)
    assert all(p.exists() for p in valid_files)  # every valid point, the live temporary
    after = inspect_store(root)
    assert after["count"] == 5 and not after["invalid"] and not after["orphans"]
    assert [t["stale"] for t in after["temporaries"]] == [False] and not after["writers"]
    damaged["live"].unlink()
    # the run computes again exactly the three removed points, and gives the same result
    ds, run_info = run_experiment(damaged["exp"], workers=0)
    assert run_info["computed"] == 3 and run_info["cached"] == 5 and run_info["invalid"] == 0
    ref = damaged["before"]
    np.testing.assert_array_equal(ds["status"].values, ref["status"].values)
    np.testing.assert_allclose(ds["test_error"].values, ref["test_error"].values, rtol=1e-12,
                               equal_nan=True)
    assert np.isfinite(ds["test_error"].sel(student="tanh").values).all()


def test_gc_refuses_while_a_run_writes_and_a_run_waits_for_gc(tmp_path, capsys):
    cfg = write(tmp_path, EXPERIMENT.replace("[0.01, 0.03, 0.1, 0.3]", "[0.01]"))
    exp = load_config(cfg)
    run_experiment(exp, workers=0)
    store = Store(exp.store)
    orphan = exp.store / "ab" / ("ab" + "0" * 62 + ".nc")
    orphan.parent.mkdir(exist_ok=True)  # a real point may share the prefix
    orphan.write_bytes(b"data")
    with store.writing():
        with pytest.raises(StoreError, match=r"a twolayer run \(pid \d+\) is writing the store"):
            collect_garbage(exp.store)
        code, out, err = run(capsys, ["store", "gc", str(exp.store)])
        assert code == 2 and out == "" and err.count("\n") == 1
        assert "is writing the store" in err
    assert orphan.exists()
    assert not list(exp.store.glob("*.lock"))  # both locks were released
    # a live gc lock stops a run from writing; a dead one's is taken over
    gc_lock = exp.store / ".gc.lock"
    gc_lock.write_text(f"{os.getpid()} {_host()}\n")
    with pytest.raises(StoreError, match="is being cleaned by `twolayer store gc`"):
        with store.writing():
            pass
    gc_lock.write_text(f"{dead_pid()} {_host()}\n")
    assert collect_garbage(exp.store)["removed"] == [orphan.relative_to(exp.store).as_posix()]
    assert not gc_lock.exists()


def test_store_commands_on_a_missing_folder(tmp_path, capsys):
    code, out, err = run(capsys, ["store", "ls", str(tmp_path / "nope")])
    assert code == 2 and out == "" and "no such store folder" in err
    code, _, err = run(capsys, ["store", "gc", str(tmp_path / "nope"), "--dry-run"])
    assert code == 2 and "no such store folder" in err

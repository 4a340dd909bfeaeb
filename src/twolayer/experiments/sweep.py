"""Running an experiment: expand the sweep, skip stored points, compute the rest on Dask.

Points are computed by :func:`twolayer.experiments.worker.compute_point` on an embedded
``distributed.LocalCluster`` (``workers`` processes, one thread each), on an existing Dask
scheduler (``scheduler="tcp://host:8786"``, e.g. a dask-jobqueue ``SLURMCluster``), or in this
process one after the other (``workers=0``). Each result is stored as soon as it arrives
(:class:`~twolayer.experiments.store.Store`), so a killed run restarted with the same file
computes only the missing points. At the end all points are read back from the store and merged
into one Dataset (:func:`twolayer.experiments.result.merge`), written as NetCDF.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import xarray as xr

import twolayer
from twolayer.errors import ParameterError, StoreError, StoreWarning
from twolayer.experiments.config import Experiment, load_init
from twolayer.experiments.result import merge, summarize
from twolayer.experiments.store import (
    STORE_FORMAT,
    Record,
    Store,
    activation_fingerprint,
    canonical_json,
    code_fingerprint,
    content_hash,
)
from twolayer.experiments.worker import compute_point
from twolayer.params import OnestepSimulate
from twolayer.results import STATUSES, worst

__all__ = ["Point", "Progress", "expand", "experiment_key", "run_experiment"]


@dataclass(frozen=True)
class Point:
    """One point of the sweep: its place in the grid, its parameters, key and payload."""

    index: tuple[int, ...]
    params: dict[str, Any]  # resolved: defaults, derived p, init overlaps
    key: str
    payload: dict[str, Any]


class Progress(Protocol):
    """What the runner reports while it works (the CLI draws a progress bar from it)."""

    def start(self, total: int, cached: int) -> None: ...

    def advance(self, record: Record) -> None: ...

    def stop(self) -> None: ...


def _resolve(exp: Experiment, params: dict, inits: dict) -> dict:
    """Fill in what the library derives, so the key sees the actual computation."""
    out = dict(params)
    if (exp.model, exp.method) == ("onestep", "simulate") and out["p"] is None:
        out["p"] = OnestepSimulate.of(out).width
    if exp.model == "sgd" and out["init"] is not None:
        if out["init"] not in inits:
            ov = load_init(out["init"], exp.base_dir)
            inits[out["init"]] = {"Q": ov.Q.tolist(), "M": ov.M.tolist(), "P": ov.P.tolist()}
        out["init"] = inits[out["init"]]
    return out


def expand(exp: Experiment) -> list[Point]:
    """Every point of ``exp`` with its content key (C order over the sweep grid)."""
    fingerprints: dict[str, dict] = {}
    inits: dict[str, dict] = {}
    points = []
    for idx, prm in exp.points():
        params = _resolve(exp, prm, inits)
        acts = {}
        for role in ("student", "teacher"):
            name = params[role]
            if name not in fingerprints:
                fingerprints[name] = activation_fingerprint(name)
            acts[role] = fingerprints[name]
        payload = {"format": STORE_FORMAT, "package": "twolayer",
                   "version": twolayer.__version__, "code": code_fingerprint(),
                   "model": exp.model, "method": exp.method, "params": params,
                   "activations": acts}
        points.append(Point(idx, params, content_hash(payload), payload))
    return points


def experiment_key(exp: Experiment, points: list[Point]) -> str:
    """A hash of what the result holds: the axes and every point's key, in order."""
    return content_hash({"mode": exp.mode, "axes": {a: list(v) for a, v in exp.axes.items()},
                         "points": [p.key for p in points]})


def _output_key(out) -> str | None:
    """The ``experiment_key`` of the result at ``out``: None when there is none, "" when the
    file is not a readable sweep result."""
    if not out.exists():
        return None
    try:
        with xr.open_dataset(out, engine="scipy") as f:
            return str(f.attrs.get("experiment_key", ""))
    except Exception:
        return ""


def _check_output(exp: Experiment, key: str, overwrite: bool) -> str | None:
    """Refuse (before any work) to replace a result of a different experiment, or to write
    into the store; returns what the output holds now (see :func:`_output_key`)."""
    from twolayer.io import check_writable

    out, store = exp.output.resolve(), exp.store.resolve()
    if out == store or store in out.parents:
        raise ParameterError(f"output {str(exp.output)!r} is inside the point store "
                             f"{str(exp.store)!r}; set another 'output' or 'store'")
    old = _output_key(exp.output)
    if old is not None and old != key and not overwrite:
        raise ParameterError(
            f"output {str(exp.output)!r} exists and holds a different experiment; pass "
            "--overwrite to replace it, or set another 'output'")
    check_writable(exp.output, overwrite=True)
    return old


_LOCK_WAIT_S = 10.0  # how long a save waits for another run's save of the same output


def _lock(out) -> Any:
    """Create ``.<output>.lock`` (O_CREAT|O_EXCL) holding our PID; a lock whose PID is dead
    (a run killed while saving) is taken over. StoreError if another run holds it."""
    from twolayer.io import pid_alive, write_error

    lock = out.with_name(f".{out.name}.lock")
    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            try:
                pid = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = -1  # being written this instant, or garbage: wait for it
            if pid > 0 and not pid_alive(pid):
                lock.unlink(missing_ok=True)
                continue
            if time.monotonic() > deadline:
                raise StoreError(f"another twolayer run is writing {str(out)!r} (lock "
                                 f"{str(lock)!r}, pid {pid}); this run's points are in the "
                                 "store: run again when it is done") from None
            time.sleep(0.05)
            continue
        except OSError as e:
            raise write_error(out, e) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")
        return lock


def _save_output(ds: xr.Dataset, exp: Experiment, key: str, before: str | None) -> None:
    """Write the merged result if the output still holds what it held when the run began (or
    this experiment): checked again under a lock, just before the atomic rename."""
    from twolayer.io import save_netcdf

    lock = _lock(exp.output)
    try:
        now = _output_key(exp.output)
        if now is not None and now != key and now != before:
            raise StoreError(
                f"output {str(exp.output)!r} was written by a different experiment while this "
                "run worked; this run's points are in the store: set another 'output' and run "
                "again")
        save_netcdf(ds, exp.output, overwrite=True)
    finally:
        lock.unlink(missing_ok=True)


def _check_address(address: str) -> None:
    """A scheduler address Dask can dial ("tcp://host:port", "host:port", "tls://…")."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, loc = parse_address(address if "://" in address else f"tcp://{address}")
        if scheme in ("tcp", "tls"):
            parse_host_port(loc)
    except ValueError as e:
        raise ParameterError(f"--scheduler: {e} (expected e.g. tcp://host:8786)") from None


CONNECT_TIMEOUT_S = 5.0  # to an existing --scheduler


@contextlib.contextmanager
def _dask_client(workers: int, scheduler: str | None) -> Iterator[tuple[Any, str]]:
    """A client of the scheduler at ``scheduler``, or of a LocalCluster started here."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    environ = dict(os.environ)  # the nanny writes its workers' variables into ours as well
    cluster = None
    try:
        # set_as_default=False: as the default scheduler, the client would make xarray take a
        # cluster-wide lock (a scheduler round trip) for every point file this process writes.
        if scheduler:
            try:
                client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S:g}s",
                                set_as_default=False)
            except (OSError, TimeoutError, ValueError) as e:
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                raise ParameterError(f"cannot connect to the Dask scheduler {scheduler!r} "
                                     f"within {CONNECT_TIMEOUT_S:g} s: {first}") from None
            where = f"Dask scheduler {scheduler}"
        else:
            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which sends every
            # NumPy temporary above 64 KiB to mmap/munmap: the theory's fixed-point iterations
            # run ~10x slower. One BLAS/OpenMP thread per worker (Dask's default) is kept.
            unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
            with dask.config.set(unset):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.CRITICAL)
            client = Client(cluster, set_as_default=False)
            where = f"Dask LocalCluster ({workers} worker processes)"
        try:
            yield client, where
        finally:
            with contextlib.suppress(Exception):  # a scheduler that died cannot say goodbye
                client.close()
    finally:
        if cluster is not None:
            cluster.close()
        for k in set(os.environ) - set(environ):
            del os.environ[k]
        os.environ.update(environ)


def _dask(client, points: list[Point], done: Callable[[Record], None]) -> None:
    from distributed import as_completed

    futures = {client.submit(compute_point, pt.key, pt.payload, key=f"twolayer-{pt.key}",
                             pure=False): pt for pt in points}
    left = {pt.key for pt in points}
    try:
        for fut in as_completed(futures, loop=client.loop):
            try:
                rec = fut.result()
            except Exception as e:  # a crashed worker, a lost connection: retried next run
                rec = Record(futures[fut].key, "failed", f"{type(e).__name__}: {e}",
                             transient=True, worker="?")
            fut.release()
            left.discard(rec.key)
            done(rec)
    except Exception as e:  # the scheduler itself is gone: the rest is cut short
        why = f"cut short: {type(e).__name__}: {e}".strip()
        for pt in points:
            if pt.key in left:
                done(Record(pt.key, "failed", why, transient=True, worker="?"))


def _message(counts: dict, status: np.ndarray) -> str:
    """What the sweep's status means, for the result's ``message``."""
    if counts["failed"] == 0:
        return ""
    by = {s: int(np.sum(status == s)) for s in STATUSES[1:] if np.any(status == s)}
    parts = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in by.items())
    return (f"{counts['failed']} of {counts['points']} points are not ok ({parts}); "
            "`twolayer show` lists them with their reasons")


def run_experiment(exp: Experiment, *, workers: int = 2, scheduler: str | None = None,
                   overwrite: bool = False, progress: Progress | None = None,
                   retry_failed: bool = False) -> tuple[xr.Dataset, dict[str, Any]]:
    """Compute the missing points of ``exp``, store them, merge everything, write the output.

    Returns the merged Dataset (also written to ``exp.output``) and the counts
    ``{"points", "ok", "failed", "computed", "cached"}`` (computed and cached count distinct
    keys), the timings and ``invalid``: stored points whose files failed their checks
    (see :class:`~twolayer.experiments.store.Store`), computed again with a StoreWarning;
    ``transient``: points that failed for a reason that is not their own (a lost worker or
    scheduler, an unexpected exception): the run was cut short, a rerun computes them.
    ``retry_failed`` computes again the stored points whose status is ``failed`` (after a
    fix, or with more memory): a failure is otherwise the point's result and is reused.
    Raises ParameterError before any work if the output belongs to another experiment
    (unless ``overwrite``), lies inside the store, or cannot be written; StoreError if a write
    fails (disk full, read-only folder) or another experiment wrote the output meanwhile (the
    points stay in the store). Stale temporaries of killed runs are removed first.
    """
    from twolayer.io import clean_stale_parts

    if workers < 0:
        raise ParameterError(f"the 'workers' parameter must be >= 0; got {workers}")
    if scheduler:
        _check_address(scheduler)
    t0 = time.perf_counter()
    started = time.time()
    points = expand(exp)
    key = experiment_key(exp, points)
    before = _check_output(exp, key, overwrite)
    # temporaries of writers killed (SIGKILL) in an earlier run: theirs only, never a live one's
    clean_stale_parts(exp.store, before=started, recursive=True)
    clean_stale_parts(exp.output.parent, before=started)
    store = Store(exp.store)
    unique = {pt.key: pt for pt in points}
    cached = {k for k, pt in unique.items() if store.has(k, pt.payload)
              and not (retry_failed and store.lookup(k, pt.payload).status == "failed")}
    invalid = dict(store.invalid)
    if invalid:
        first = next(iter(invalid.items()))
        warnings.warn(StoreWarning(
            f"{len(invalid)} stored point(s) failed their checks and are computed again "
            f"(point {first[0][:12]}…: {first[1]})"), stacklevel=2)
    todo = [pt for k, pt in unique.items() if k not in cached]
    fresh: dict[str, Record] = {}

    def done(rec: Record) -> None:
        store.put(rec, unique[rec.key].payload)
        fresh[rec.key] = rec
        if progress is not None:
            progress.advance(rec)

    t_start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if not todo:
            executor, client = "none (every point from the store)", None
        elif workers == 0 and not scheduler:
            executor, client = "serial (in-process)", None
        else:  # connect (or start the cluster) before the progress bar
            client, executor = stack.enter_context(_dask_client(workers, scheduler))
        if todo:  # only now: a scheduler that cannot be reached leaves no empty store behind
            try:
                exp.store.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise ParameterError(f"cannot create the store folder {str(exp.store)!r}: "
                                     f"{e.strerror or e}") from None
            stack.enter_context(store.writing())  # `twolayer store gc` waits for us
        if progress is not None:
            progress.start(len(todo), len(cached))
            stack.callback(progress.stop)
        if client is not None:
            _dask(client, todo, done)
        else:
            for pt in todo:
                done(compute_point(pt.key, pt.payload))
    t_run = time.perf_counter() - t_start
    records = {}
    for k, pt in unique.items():
        rec = store.get(k, pt.payload)
        if rec is None:  # the store was changed under us while this run worked
            why = store.invalid.get(k, "missing")
            raise StoreError(f"point {k} of the store {str(exp.store)!r} changed during the "
                             f"run ({why}); run the same command again")
        records[k] = rec
    ds = merge(exp.axes, exp.mode, [(pt.index, pt.key) for pt in points], records)
    status = ds["status"].values
    transient = sum(records[k].transient for k in unique)
    counts = {"points": len(points), "ok": int(np.sum(status == "ok")),
              "failed": int(np.sum(status != "ok")), "computed": len(todo),
              "cached": len(cached)}
    overall = worst(str(s) for s in status.ravel())
    seconds = np.array([records[pt.key].seconds for pt in points], dtype=float)
    compute_s = float(sum(r.seconds for r in fresh.values()))
    ds.attrs.update(
        model=exp.model, method=exp.method, status=overall,
        message=_message(counts, status), sweep_mode=exp.mode,
        sweep_axes=json.dumps(list(exp.axes)),
        description=exp.description, params=canonical_json(exp.params), config=exp.text,
        config_source=exp.source, version=twolayer.__version__, store_format=STORE_FORMAT,
        experiment_key=key, counts=json.dumps(counts), executor=executor,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        point_seconds=seconds,
        point_cached=np.array([pt.key in cached for pt in points], dtype=np.int8),
    )
    wall = time.perf_counter() - t0
    timings = {"wall_s": wall, "run_s": t_run, "compute_s": compute_s,
               "mean_point_s": compute_s / len(fresh) if fresh else 0.0}
    ds.attrs["timings"] = json.dumps(timings)
    modules = set(exp.activations) | {fp["plugin"] for pt in points
                                      for fp in pt.payload["activations"].values()
                                      if fp.get("plugin")}
    if modules:
        ds.attrs["activation_modules"] = json.dumps(sorted(modules))
    summarize(ds)  # the result must read back (schema, summary) before it is written
    _save_output(ds, exp, key, before)
    return ds, {**counts, **timings, "invalid": len(invalid), "transient": transient}

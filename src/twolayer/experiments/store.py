"""Per-point results on disk, keyed by a content hash of everything that determines them.

The key of a point is the SHA-256 of the canonical JSON (sorted keys, no spaces, shortest
round-trip floats) of its *payload*: store format, package version, model, method, every
parameter after defaults and derived values are filled in (seed, seeds and d included), the
``init`` overlaps themselves rather than their file name, a fingerprint of each activation
(its values and derivatives on a fixed grid, so an activation re-registered under the same name
with a different function gets a different key, and the plugin module that registered it),
and a hash of the package's computing code (every module but the command line, experiments,
plotting and I/O), so results of a development checkout are not reused after its code changed
under an unchanged version number.

Layout: ``<root>/<key[:2]>/<key>.nc`` (the point's Dataset, when it has one) and
``<key>.json`` (status, reason, seconds and the payload itself). Both are written to a temporary
name and renamed; the JSON is written last and marks the point as stored, so a process killed
at any moment leaves either a complete point or none.

The store does not trust its files. The JSON record carries ``data_sha256``, the SHA-256 of the
data file's bytes, and ``record_sha256``, the :func:`content_hash` of the record without that
field; the key is the content hash of the record's payload. A lookup checks all three, the
fields' types and values, and that the payload is the expected one: a data file copied over
another, edited values, a flipped bit, a truncated or garbage file, an edited ``status`` or a
record missing a field all make the point *invalid*, which is treated as absent (the run
computes it again and says so). These are checksums against accidents (copies, edits, broken
disks), not signatures: whoever can write the store can forge a record.

Locks: a run that writes points holds a writer lock, ``<root>/.writer.<pid>-<host>.<random>.lock``
(:meth:`Store.writing`; several runs may write one store at once), and ``twolayer store gc``
holds ``<root>/.gc.lock`` (:meth:`Store.cleaning`); each refuses while the other is held by a
live process. A lock left by a killed process (its PID is not running on this machine) is
ignored and removed by the next gc; one of another machine counts as live.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["STORE_FORMAT", "Record", "Store", "activation_fingerprint", "canonical_json",
           "code_fingerprint", "content_hash", "file_hash"]

STORE_FORMAT = 3  # 2: the result schema of twolayer.results; 3: data and record checksums
# Fixed points where activations are fingerprinted: a grid plus a few irrational values.
_FINGERPRINT_X = np.concatenate([np.linspace(-6.0, 6.0, 121),
                                 [-2.718281828, -0.5772156649, 0.3183098862, 1.414213562]])


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace; tuples as lists; NaN/inf are refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def content_hash(obj: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rounded(a) -> list:
    """Values to 12 significant digits (stable across CPUs); non-finite ones as strings."""
    flat = np.broadcast_to(np.asarray(a, dtype=float), _FINGERPRINT_X.shape)
    return [float(f"{v:.12g}") if math.isfinite(v) else str(v) for v in flat.tolist()]


def activation_fingerprint(name: str) -> dict[str, str | None]:
    """{"name", "sha256", "plugin"}: a hash of σ, σ' and σ'' (when given) on a fixed grid of
    points, and the plugin module that registered it (:func:`twolayer.activations.source`;
    None for a built-in or an activation registered by the calling code)."""
    from twolayer import activations

    act = activations.get(name)
    x = _FINGERPRINT_X.copy()
    with np.errstate(all="ignore"):
        values = {"fn": _rounded(act.fn(x)), "deriv": _rounded(act.deriv(x)),
                  "deriv2": None if act.deriv2 is None else _rounded(act.deriv2(x)),
                  "kinks": [float(k) for k in act.kinks]}
    return {"name": act.name, "sha256": content_hash(values),
            "plugin": activations.source(act.name)}


_NOT_COMPUTING = {"cli", "__main__", "experiments", "plotting", "io", "reproduce"}


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 over the source of the modules that compute results (path and bytes)."""
    import twolayer

    root = Path(twolayer.__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        top = rel.split("/")[0].removesuffix(".py")
        if top in _NOT_COMPUTING or top.startswith("cli_"):
            continue
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass
class Record:
    """The outcome of one point.

    ``status`` is one of :data:`twolayer.results.STATUSES`: "ok", "not_converged" or
    "diverged" (a result that says so; data kept), "failed" (a solver that gave up, or an
    exception: then no data). ``transient``
    marks an error that is not the package's own verdict (a crashed worker, an unexpected
    exception): it is kept for the report but the point is computed again on the next run.
    """

    key: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    data: xr.Dataset | None = None
    transient: bool = False
    worker: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# the fields of a record and their types (bool before int: True is an int)
_FIELDS = {"format": int, "key": str, "status": str, "reason": str, "seconds": (int, float),
           "transient": bool, "worker": str, "has_data": bool, "stored_at": (int, float),
           "data_sha256": (str, type(None)), "payload": dict, "record_sha256": str}


def _record_hash(meta: dict) -> str:
    return content_hash({k: v for k, v in meta.items() if k != "record_sha256"})


def _check_meta(meta: Any, key: str) -> str:
    """Why the record ``meta`` of ``key`` cannot be trusted ("" if it can)."""
    from twolayer.results import STATUSES

    if not isinstance(meta, dict):
        return "the record is not a JSON object"
    for name, typ in _FIELDS.items():
        if name not in meta:
            return f"the record has no {name!r}"
        value = meta[name]
        if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
            return f"the record's {name!r} has the wrong type"
    if set(meta) != set(_FIELDS):
        return f"the record has unknown fields {sorted(set(meta) - set(_FIELDS))}"
    if meta["record_sha256"] != _record_hash(meta):
        return "the record was modified (its checksum does not match)"
    if meta["key"] != key or content_hash(meta["payload"]) != key:
        return "the record belongs to another point (key and payload disagree)"
    if meta["status"] not in STATUSES:
        return f"unknown status {meta['status']!r}"
    if meta["has_data"] != (meta["data_sha256"] is not None):
        return "the record's has_data and data_sha256 disagree"
    return ""


class Store:
    """A folder of point results addressed by content hash (see the module docstring).

    ``invalid`` maps the keys whose files failed a check (since this object was made) to the
    reason; those points are treated as absent.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.invalid: dict[str, str] = {}

    # ------------------------------------------------------------------ locks
    def _lock_owner(self, path: Path) -> tuple[int, bool] | None:
        """(pid, alive) of a lock file, None if it vanished."""
        from twolayer.io import _host, pid_alive

        try:
            text = path.read_text().split()
        except OSError:
            return None
        try:
            pid, host = int(text[0]), text[1] if len(text) > 1 else ""
        except (ValueError, IndexError):
            return -1, True  # being written this instant: live
        return pid, (pid_alive(pid) if host == _host() else True)

    def writers(self) -> list[tuple[Path, int, bool]]:
        """The writer locks: (path, pid, alive)."""
        out = []
        for path in sorted(self.root.glob(".writer.*.lock")):
            owner = self._lock_owner(path)
            if owner is not None:
                out.append((path, *owner))
        return out

    def _take(self, path: Path) -> None:
        """Create the lock ``path`` holding "<pid> <host>"; a dead process's lock is taken
        over, a live one's is a StoreError."""
        from twolayer.io import _host, write_error

        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                owner = self._lock_owner(path)
                if owner is not None and owner[1]:
                    from twolayer.errors import StoreError

                    raise StoreError(f"the store {str(self.root)!r} is being cleaned by "
                                     f"`twolayer store gc` (pid {owner[0]}); run again when "
                                     "it is done") from None
                path.unlink(missing_ok=True)  # a dead process's lock
                continue
            except OSError as e:
                raise write_error(path, e) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()} {_host()}\n")
            return

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold a writer lock while points are written (StoreError while a gc runs)."""
        import secrets

        from twolayer.io import _host

        lock = self.root / f".writer.{os.getpid()}-{_host()}.{secrets.token_hex(4)}.lock"
        self._take(lock)
        try:
            gc = self._lock_owner(self.root / ".gc.lock")
            if gc is not None and gc[1]:
                from twolayer.errors import StoreError

                raise StoreError(f"the store {str(self.root)!r} is being cleaned by "
                                 f"`twolayer store gc` (pid {gc[0]}); run again when it is done")
            yield
        finally:
            lock.unlink(missing_ok=True)

    @contextlib.contextmanager
    def cleaning(self) -> Iterator[list[Path]]:
        """Hold the gc lock; StoreError while a live writer holds a writer lock. Yields the
        writer locks of dead processes (for the gc to remove)."""
        from twolayer.errors import StoreError

        lock = self.root / ".gc.lock"
        self._take(lock)
        try:
            live = [(p, pid) for p, pid, alive in self.writers() if alive]
            if live:
                raise StoreError(f"a twolayer run (pid {live[0][1]}) is writing the store "
                                 f"{str(self.root)!r} (lock {live[0][0].name}); run gc when "
                                 "it is done")
            yield [p for p, _, alive in self.writers() if not alive]
        finally:
            lock.unlink(missing_ok=True)

    # ------------------------------------------------------------------ points
    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.json", folder / f"{key}.nc"

    def _reject(self, key: str, why: str) -> None:
        self.invalid[key] = why

    def _meta(self, key: str, payload: dict | None) -> dict | None:
        meta_path, data_path = self._paths(key)
        try:
            text = meta_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None  # absent: not an error
        except OSError as e:
            self._reject(key, f"cannot read the record: {e}")
            return None
        try:
            meta = json.loads(text)
        except ValueError:
            self._reject(key, "the record is not valid JSON")
            return None
        if isinstance(meta, dict) and meta.get("format") != STORE_FORMAT:
            return None  # another store format: stale, computed again
        why = _check_meta(meta, key)
        if not why and payload is not None and \
                canonical_json(meta["payload"]) != canonical_json(payload):
            why = "the record holds other parameters than its key says"
        if not why and meta["has_data"]:
            try:
                if file_hash(data_path) != meta["data_sha256"]:
                    why = "the data file was modified or replaced (its SHA-256 does not match)"
            except OSError as e:
                why = f"cannot read the data file: {e.strerror or e}"
        if why:
            self._reject(key, why)
            return None
        self.invalid.pop(key, None)
        return meta

    @staticmethod
    def _record(key: str, meta: dict) -> Record:
        return Record(key=key, status=meta["status"], reason=meta["reason"],
                      seconds=float(meta["seconds"]), transient=meta["transient"],
                      worker=meta["worker"])

    def lookup(self, key: str, payload: dict | None = None) -> Record | None:
        """The stored record of ``key`` without its data, if it is intact and matches
        ``payload`` (its data file's checksum is verified too)."""
        meta = self._meta(key, payload)
        return None if meta is None else self._record(key, meta)

    def get(self, key: str, payload: dict | None = None) -> Record | None:
        """The stored record of ``key`` with its Dataset loaded (None if absent, stale or
        invalid: see :attr:`invalid`)."""
        from twolayer.errors import TwolayerError
        from twolayer.io import load_netcdf

        meta = self._meta(key, payload)
        if meta is None:
            return None
        rec = self._record(key, meta)
        if meta["has_data"]:
            try:
                rec.data = load_netcdf(self._paths(key)[1])
            except TwolayerError as e:
                self._reject(key, str(e))
                return None
        return rec

    def has(self, key: str, payload: dict | None = None) -> bool:
        """Whether a reusable (not transient) result of ``key`` is stored."""
        rec = self.lookup(key, payload)
        return rec is not None and not rec.transient

    def put(self, record: Record, payload: dict) -> None:
        """Store ``record`` (data first, then the JSON that marks it complete); a failed write
        raises StoreError and leaves the point absent."""
        from twolayer.io import atomic, save_netcdf, write_error

        meta_path, data_path = self._paths(record.key)
        try:
            meta_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(meta_path.parent, e) from None
        data_sha = None
        if record.data is not None:
            save_netcdf(record.data, data_path, overwrite=True)
            try:
                data_sha = file_hash(data_path)
            except OSError as e:
                raise write_error(data_path, e) from None
        meta = {"format": STORE_FORMAT, "key": record.key, "status": record.status,
                "reason": record.reason, "seconds": float(record.seconds),
                "transient": record.transient, "worker": record.worker,
                "has_data": record.data is not None, "stored_at": time.time(),
                "data_sha256": data_sha, "payload": payload}
        meta["record_sha256"] = _record_hash(meta)
        # the umask's mode (a shared store stays readable); a failed write leaves no JSON
        with atomic(meta_path) as (_, fd), os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(canonical_json(meta))
        self.invalid.pop(record.key, None)

"""Looking after a point store: what it holds (:func:`inspect_store`, ``twolayer store ls``) and
removing what no run can use (:func:`collect_garbage`, ``twolayer store gc``).

What a store folder can hold (layout: :mod:`twolayer.experiments.store`):

- **points**: a record ``<key>.json`` that passes every check (its own checksum, key = hash of
  its payload, its data file's SHA-256), with its data file ``<key>.nc`` when it has data;
- **invalid** records: a record that fails a check (not JSON, edited, a missing or modified
  data file …); a run treats the point as absent and computes it again;
- **orphans**: data files ``<key>.nc`` that no record refers to (the record was lost, or the
  point was stored again without data);
- **temporaries** ``.<name>.<pid>-<host>.<random>.part``: *stale* when their writer is dead
  (the rule of :func:`twolayer.io.parts`), otherwise being written now;
- records of **another store format** (an older twolayer), left alone, and writer locks.

The garbage collector removes the invalid records (with their data files), the orphans, the
stale temporaries and the locks of dead writers — never a valid point, another format's record,
or a live writer's file — and refuses while a live run holds a writer lock
(:meth:`~twolayer.experiments.store.Store.cleaning`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from twolayer.errors import ParameterError
from twolayer.experiments.store import STORE_FORMAT, Store

__all__ = ["collect_garbage", "inspect_store"]

_KEY = re.compile(r"^[0-9a-f]{64}$")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _rel(store: Store, path: Path) -> str:
    return path.relative_to(store.root).as_posix()


def _scan(store: Store) -> dict[str, Any]:
    from twolayer.io import parts

    points, invalid, other, orphans, unknown = [], [], [], [], []
    for folder in sorted(p for p in store.root.iterdir() if p.is_dir()):
        files = {p.name: p for p in folder.iterdir() if p.is_file()}
        referenced: set[str] = set()
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext != ".json" or not _KEY.match(stem) or folder.name != stem[:2]:
                continue
            meta_path, data_path = store._paths(stem)
            try:
                raw = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raw = None
            if isinstance(raw, dict) and isinstance(raw.get("format"), int) and \
                    raw["format"] != STORE_FORMAT:
                other.append({"key": stem, "format": raw["format"],
                              "files": [_rel(store, meta_path)]
                              + ([_rel(store, data_path)] if data_path.exists() else [])})
                referenced.add(data_path.name)
                continue
            rec = store.lookup(stem)
            if rec is None:
                why = store.invalid.get(stem, "unreadable record")
                paths = [meta_path] + ([data_path] if data_path.exists() else [])
                invalid.append({"key": stem, "reason": why,
                                "files": [_rel(store, p) for p in paths],
                                "bytes": sum(_size(p) for p in paths)})
                referenced.add(data_path.name)
                continue
            has_data = bool(raw.get("has_data"))
            if has_data:
                referenced.add(data_path.name)
            points.append({"key": stem, "status": rec.status, "reason": rec.reason,
                           "transient": rec.transient,
                           "bytes": _size(meta_path) + (_size(data_path) if has_data else 0)})
        for name, path in sorted(files.items()):
            stem, ext = os.path.splitext(name)
            if name.endswith(".part"):
                continue
            if ext == ".nc" and _KEY.match(stem) and name not in referenced:
                orphans.append({"file": _rel(store, path), "bytes": _size(path)})
            elif not (ext in (".json", ".nc") and _KEY.match(stem)):
                unknown.append(_rel(store, path))
    temporaries = [{"file": _rel(store, p), "stale": stale, "bytes": _size(p)}
                   for p, stale in parts(store.root, before=time.time(), recursive=True)]
    writers = [{"file": _rel(store, p), "pid": pid, "alive": alive}
               for p, pid, alive in store.writers()]
    total = sum(_size(p) for p in store.root.rglob("*") if p.is_file())
    return {"points": points, "invalid": invalid, "orphans": orphans,
            "temporaries": temporaries, "other_format": other, "writers": writers,
            "unknown": unknown, "bytes": total}


def _store(root: str | os.PathLike) -> Store:
    path = Path(root)
    if not path.is_dir():
        raise ParameterError(f"no such store folder: {str(path)!r}")
    return Store(path)


def inspect_store(root: str | os.PathLike) -> dict[str, Any]:
    """What the store folder ``root`` holds (see the module docstring).

    Returns a dict: ``store``, ``count`` (valid points), ``bytes`` (every file in the folder),
    ``statuses`` ({status: count} of the valid points), ``failures`` (the points whose status
    is not ok: key, status, one-line reason, transient), ``invalid`` (key, reason, files),
    ``orphans`` and ``temporaries`` (file, bytes; temporaries: ``stale``), ``other_format``,
    ``writers`` (lock file, pid, alive) and ``unknown`` (files that are none of these).
    """
    store = _store(root)
    scan = _scan(store)
    points = scan.pop("points")
    return {"store": str(store.root), "count": len(points), "bytes": scan.pop("bytes"),
            "statuses": dict(sorted(Counter(p["status"] for p in points).items())),
            "failures": [{k: p[k] for k in ("key", "status", "reason", "transient")}
                         for p in points if p["status"] != "ok"],
            **scan}


def collect_garbage(root: str | os.PathLike, *, dry_run: bool = False) -> dict[str, Any]:
    """Remove what no run can use: invalid records and their data files, orphan data files,
    stale temporaries, dead writers' locks (never a valid point).

    Holds the store's gc lock; StoreError (one line) while a live run writes the store, also
    with ``dry_run`` (which removes nothing and reports what would go). Returns ``store``,
    ``removed`` (paths relative to the store), ``bytes_freed``, ``dry_run`` and ``kept`` (the
    valid points left).
    """
    store = _store(root)
    with store.cleaning() as dead_locks:
        scan = _scan(store)
        doomed = [f for rec in scan["invalid"] for f in rec["files"]]
        doomed += [o["file"] for o in scan["orphans"]]
        doomed += [t["file"] for t in scan["temporaries"] if t["stale"]]
        doomed += [_rel(store, p) for p in dead_locks]
        freed, removed = 0, []
        for rel in doomed:
            path = store.root / rel
            size = _size(path)
            if not dry_run:
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as e:
                    from twolayer.io import write_error

                    raise write_error(path, e) from None
            removed.append(rel)
            freed += size
        if not dry_run:
            for folder in store.root.iterdir():
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
    return {"store": str(store.root), "removed": removed, "bytes_freed": freed,
            "dry_run": dry_run, "kept": len(scan["points"])}

"""``twolayer store ls|gc DIR``: what a point store holds, and removing what no run can use.

Thin: :mod:`twolayer.experiments.maintenance` does the work. DIR is a store folder, or an
experiment file (.toml), whose ``store`` is then meant.
"""

from __future__ import annotations

from typing import Annotated

import typer

from twolayer.cli.common import Json

app = typer.Typer(help="Inspect and clean a point store (the per-point cache of `run`).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)

Folder = Annotated[str, typer.Argument(
    metavar="DIR", help="A store folder, or an experiment file (.toml): its store.")]


def _folder(path: str) -> str:
    if path.endswith(".toml"):
        from twolayer.experiments import load_config

        return str(load_config(path).store)
    return path


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""  # pragma: no cover


@app.command("ls")
def ls_command(folder: Folder, json_: Json = False) -> None:
    """List a store: points and their statuses, total size, failures with their reasons,
    invalid (damaged) records, orphan data files, temporary files (stale or being written)."""
    from twolayer.experiments.maintenance import inspect_store
    from twolayer.io import dumps

    info = inspect_store(_folder(folder))
    if json_:
        print(dumps(info))
        return
    statuses = ", ".join(f"{s} {n}" for s, n in info["statuses"].items()) or "none"
    print(f"store {info['store']}: {info['count']} points ({statuses}), {_size(info['bytes'])}")
    for f in info["failures"]:
        again = " (computed again by the next run)" if f["transient"] else ""
        print(f"  {f['status']} {f['key'][:12]}: {f['reason']}{again}")
    for r in info["invalid"]:
        print(f"  invalid {r['key'][:12]}: {r['reason']}")
    for o in info["orphans"]:
        print(f"  orphan data file {o['file']} ({_size(o['bytes'])})")
    for t in info["temporaries"]:
        state = "stale (writer dead)" if t["stale"] else "being written"
        print(f"  temporary {t['file']}: {state}")
    if info["other_format"]:
        print(f"  {len(info['other_format'])} record(s) of another store format (kept)")
    for w in info["writers"]:
        state = "running" if w["alive"] else "dead"
        print(f"  writer lock {w['file']}: pid {w['pid']} {state}")
    for u in info["unknown"]:
        print(f"  unknown file {u} (kept)")
    garbage = (sum(len(r["files"]) for r in info["invalid"]) + len(info["orphans"])
               + sum(t["stale"] for t in info["temporaries"])
               + sum(not w["alive"] for w in info["writers"]))
    if garbage:
        print(f"{garbage} file(s) can be removed: twolayer store gc {folder}")


@app.command("gc")
def gc_command(
    folder: Folder,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Say what would be removed; remove nothing.")] = False,
    json_: Json = False,
) -> None:
    """Remove what no run can use: invalid (damaged) records with their data files, orphan
    data files, temporary files of dead writers, locks of dead writers. Never a valid point.
    Refused while a run is writing the store."""
    from twolayer.experiments.maintenance import collect_garbage
    from twolayer.io import dumps

    info = collect_garbage(_folder(folder), dry_run=dry_run)
    if json_:
        print(dumps(info))
        return
    verb = "would remove" if dry_run else "removed"
    for rel in info["removed"]:
        print(f"{verb} {rel}")
    print(f"{verb} {len(info['removed'])} file(s), {_size(info['bytes_freed'])}"
          f"{' to free' if dry_run else ' freed'}; {info['kept']} valid point(s) kept")

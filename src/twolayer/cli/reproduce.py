"""``twolayer reproduce NAME`` and ``twolayer reproduce --list`` (thin: parse, call, print)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from twolayer.cli.common import Json, Overwrite, Scheduler, finish, resumable
from twolayer.cli.experiments import Bar, cut_short


class _Sections(Bar):
    """The run's progress bar, with one line on stderr per experiment of the recipe."""

    def section(self, name: str) -> None:
        print(f"twolayer: {name}", file=sys.stderr)


def reproduce_command(
    name: Annotated[str | None, typer.Argument(
        metavar="NAME", help="Recipe to run (see --list).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the recipes and exit.")] = False,
    full: Annotated[bool, typer.Option(
        "--full", help="The papers' sizes (larger d, more seeds, finer grids): hours, not "
        "minutes.")] = False,
    directory: Annotated[str, typer.Option(
        "--dir", help="Where results, the shared point store and figures go.")]
        = "twolayer-reproduce",
    workers: Annotated[int, typer.Option(
        "--workers", help="Local Dask worker processes (0: compute in this process).")] = 0,
    scheduler: Scheduler = None,
    overwrite: Overwrite = False,
    json_: Json = False,
) -> None:
    """Rebuild a key figure of Cui et al. 2024 or Arnaboldi et al. 2023 from a shipped recipe.

    Each recipe is a set of ordinary experiment files (their TOML text is kept in every
    result), run like `twolayer run`: points are stored as they finish, so an interrupted run
    resumes and nothing is computed twice. The figure goes to DIR/NAME/SIZE/NAME.png and .pdf.
    """
    from twolayer.errors import ParameterError
    from twolayer.io import dumps
    from twolayer.reproduce import RECIPES, reproduce

    if list_:
        if json_:
            print(dumps({"recipes": [{"name": r.name, "paper": r.paper, "title": r.title,
                                      "what": r.what, "experiments": list(r.templates)}
                                     for r in RECIPES.values()]}))
            return
        for r in RECIPES.values():
            print(f"{r.name:<18} {r.title}  [{r.paper}]\n{'':<18} {r.what}")
        return
    if name is None:
        raise ParameterError("give a recipe NAME, or --list to see them: "
                             + ", ".join(RECIPES))
    with resumable():
        out = reproduce(name, directory, size="full" if full else "small", workers=workers,
                        scheduler=scheduler, overwrite=overwrite, progress=_Sections())
    if json_:
        print(dumps(out.as_dict()))
        cut_short(out.transient)
        finish(out.status, cut_short=out.transient > 0)
        return
    for exp, c in out.counts.items():
        print(f"{exp:<16} {c['ok']}/{c['points']} points ok ({c['computed']} computed, "
              f"{c['cached']} from the store)" + (f", {c['failed']} FAILED" if c["failed"]
                                                  else ""))
    if out.status != "ok":
        print("twolayer: some points failed; they are left out of the figure (see "
              "`twolayer show` on the results)", file=sys.stderr)
    print(f"wrote {', '.join(out.figures)}  [{out.seconds:.1f} s]")
    cut_short(out.transient)
    finish(out.status, cut_short=out.transient > 0)


def register(app: typer.Typer) -> None:
    """Add ``reproduce`` to the top-level app."""
    app.command("reproduce")(reproduce_command)

"""``twolayer run FILE.toml`` and ``twolayer show RESULT`` (thin: parse, call, print).

Dask is imported only inside ``run`` (by the sweep runner), so ``twolayer --help`` stays fast.
This module does not import :mod:`twolayer.cli` (which registers these commands), so either can
be imported first.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Replace an output that holds a different experiment.")]
Workers = Annotated[int, typer.Option(
    "--workers", help="Local Dask worker processes, one thread each (0: compute in this process, "
    "one point after the other).")]
Scheduler = Annotated[str | None, typer.Option(
    "--scheduler", help="Address of a running Dask scheduler (tcp://host:8786), e.g. a "
    "dask-jobqueue cluster; replaces the local workers.")]


class _Bar:
    """A rich progress bar on stderr: points done of those to compute, failed, cached, ETA."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("points"), BarColumn(), MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}, cached {task.fields[cached]}"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False)
        self.failed = 0

    def start(self, total: int, cached: int) -> None:
        if total == 0:
            print(f"twolayer: all {cached} points are in the store; nothing to compute",
                  file=sys.stderr)
            return
        self.progress.start()
        self.task = self.progress.add_task("points", total=total, failed=0, cached=cached)

    def advance(self, record) -> None:
        self.failed += not record.ok
        self.progress.update(self.task, advance=1, failed=self.failed)

    def stop(self) -> None:
        self.progress.stop()


def run_command(
    config: Annotated[str, typer.Argument(metavar="FILE.toml", help="Experiment file.")],
    workers: Workers = 2,
    scheduler: Scheduler = None,
    overwrite: Overwrite = False,
    json_: Json = False,
) -> None:
    """Run the experiment in FILE.toml: compute missing points on Dask, store, merge, save.

    Each point is stored as soon as it is done, under a hash of everything that determines it;
    running the same file again (after a crash, or with more sweep values) computes only what
    is missing. The merged result (NetCDF) goes to the file's 'output'.
    """
    from twolayer.experiments import format_summary, load_config, run_experiment, summarize
    from twolayer.io import dumps

    exp = load_config(config)
    try:
        ds, _info = run_experiment(exp, workers=workers, scheduler=scheduler,
                                  overwrite=overwrite, progress=_Bar())
    except KeyboardInterrupt:
        print("twolayer: interrupted; the finished points are stored: run the same command "
              "to resume", file=sys.stderr)
        raise typer.Exit(130) from None
    summary = summarize(ds)
    if json_:
        print(dumps({**summary, "output": str(exp.output), "store": str(exp.store)}))
        return
    print(format_summary(summary, str(exp.output)))
    print(f"wrote {exp.output}")


def show_command(
    result: Annotated[str, typer.Argument(
        metavar="RESULT", help="A result file (.nc), or the experiment file that wrote it.")],
    json_: Json = False,
) -> None:
    """Summarise a stored result: model, method, sweep axes, seeds, failures, timings."""
    from twolayer.experiments import format_summary, summarize
    from twolayer.io import dumps, load_netcdf

    path = result
    if result.endswith(".toml"):
        from twolayer.experiments import load_config

        path = str(load_config(result).output)
    summary = summarize(load_netcdf(path))
    if json_:
        print(dumps({**summary, "path": path}))
        return
    print(format_summary(summary, path))


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``show`` to the top-level app."""
    app.command("run")(run_command)
    app.command("show")(show_command)

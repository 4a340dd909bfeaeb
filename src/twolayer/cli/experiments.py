"""``twolayer run FILE.toml``, ``twolayer show RESULT``, ``twolayer plot RESULT`` (thin).

Dask is imported only inside ``run`` (by the sweep runner), so ``twolayer --help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from twolayer.cli.common import Json, Overwrite, Scheduler, UserError, finish, resumable

Workers = Annotated[int, typer.Option(
    "--workers", help="Local Dask worker processes, one thread each (0: compute in this process, "
    "one point after the other).")]


class Bar:
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
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Compute again the stored points whose status is 'failed' (a "
        "failure is otherwise the point's result and is reused).")] = False,
    json_: Json = False,
) -> None:
    """Run the experiment in FILE.toml: compute missing points on Dask, store, merge, save.

    Each point is stored as soon as it is done, under a hash of everything that determines it;
    running the same file again (after a crash, or with more sweep values) computes only what
    is missing. The merged result (NetCDF) goes to the file's 'output'. Exit status 3 when
    some point is not ok, 4 when the run was cut short (rerun to resume).
    """
    from twolayer.experiments import format_summary, load_config, run_experiment, summarize
    from twolayer.io import dumps

    exp = load_config(config)
    with resumable():
        ds, info = run_experiment(exp, workers=workers, scheduler=scheduler,
                                  overwrite=overwrite, progress=Bar(),
                                  retry_failed=retry_failed)
    summary = summarize(ds)
    if json_:
        print(dumps({**summary, "output": str(exp.output), "store": str(exp.store)}))
    else:
        print(format_summary(summary, str(exp.output)))
        print(f"wrote {exp.output}")
    cut_short(info["transient"])
    finish(ds.attrs["status"], cut_short=info["transient"] > 0)


def cut_short(n: int) -> None:
    """One line on stderr when points failed for a reason that is not theirs."""
    if n:
        print(f"twolayer: {n} point(s) were cut short (a lost scheduler or worker, or an "
              "unexpected error: see their reason); run the same command again to compute them",
              file=sys.stderr)


def show_command(
    result: Annotated[str, typer.Argument(
        metavar="RESULT", help="A result file (.nc), or the experiment file that wrote it.")],
    json_: Json = False,
) -> None:
    """Summarise a stored result: model, method, sweep axes, seeds, failures, timings."""
    from twolayer.experiments import format_summary, summarize
    from twolayer.io import dumps, load_netcdf

    path = _result_path(result)
    summary = summarize(load_netcdf(path))
    if json_:
        print(dumps({**summary, "path": path}))
        return
    print(format_summary(summary, path))


def _result_path(result: str) -> str:
    """A result file, or the output of the experiment file ``result`` (.toml)."""
    if result.endswith(".toml"):
        from twolayer.experiments import load_config

        return str(load_config(result).output)
    return result


def plot_command(
    results: Annotated[list[str], typer.Argument(
        metavar="RESULT...", help="Result files (.nc) of `twolayer run` or of a command's "
        "--out, or the experiment files that wrote them. Several are drawn on one pair of "
        "axes (e.g. a theory and a simulation).")],
    out: Annotated[str | None, typer.Option(
        "--out", help="FILE.png or FILE.pdf: both are written. Default: next to the (first) "
        "result, same name.")] = None,
    x: Annotated[str | None, typer.Option(
        "--x", help="Horizontal axis: alpha (one-step) or t (sgd) by default, or a swept "
        "parameter (each run then taken at its largest alpha / final t).")] = None,
    kind: Annotated[str, typer.Option(
        "--kind", help="auto, curves, panels (one per value of a second parameter) or heatmap "
        "(two swept parameters). Several results: curves only.")] = "auto",
    errors: Annotated[str, typer.Option(
        "--errors", help="Simulations' error bars and bands: std (mean +- std over the N "
        "seeds) or se (mean +- standard error, std/sqrt(N)); the legend says which.")] = "std",
    logx: Annotated[bool, typer.Option("--logx", help="Logarithmic horizontal axis.")] = False,
    logy: Annotated[bool, typer.Option("--logy", help="Logarithmic vertical axis.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing file that is not a twolayer figure.")] = False,
    json_: Json = False,
) -> None:
    """Draw the natural figure of a result, or several results on one pair of axes, as PNG
    and PDF.

    Learning curves (test error vs alpha, the eta = 0 random-features baseline dashed,
    simulations with mean +- std error bars) for the one-step model; excess risk vs time on
    log-log axes for sgd (simulations with a +-1 std band); one curve per swept value, panels for
    a second swept parameter, a heat map (value at the largest alpha / final t) for two
    parameters on a larger grid. Points that failed are left out and named in the legend.
    Several results (a theory and a simulation: `twolayer plot theory.nc sim.nc`) share one
    pair of axes, each legend entry naming its file and method; results whose horizontal axes
    or quantities differ are refused.
    """
    from twolayer.io import dumps
    from twolayer.plotting.results import plot_file

    if errors not in ("std", "se"):
        raise UserError(f"--errors: must be std or se; got {errors!r}")
    files = [_result_path(r) for r in results]
    info = plot_file(files if len(files) > 1 else files[0], out, x=x, kind=kind,
                     overwrite=overwrite, errors=errors, logx=True if logx else None,
                     logy=True if logy else None)
    if json_:
        print(dumps(info))
        return
    png, pdf = info["figures"]
    print(f"wrote {png} and {pdf} ({info['kind']}, x = {info['x']})")


def register(app: typer.Typer) -> None:
    """Add ``run``, ``show`` and ``plot`` to the top-level app."""
    app.command("run")(run_command)
    app.command("show")(show_command)
    app.command("plot")(plot_command)

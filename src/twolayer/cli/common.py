"""What every command shares: options built from the parameter objects, errors, output.

User mistakes raise :class:`UserError` or the package's :class:`~twolayer.errors.TwolayerError`
and become one line on stderr with exit status 2 (:func:`twolayer.cli.main`); results go to
stdout (a table, or one JSON object with ``--json``); progress and warnings go to stderr.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer

from twolayer.errors import ConvergenceWarning, DivergenceWarning, ParameterError, StoreWarning

Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
Overwrite = Annotated[bool, typer.Option(
    "--overwrite", help="Replace existing output files (or a result of another experiment).")]
Out = Annotated[str | None, typer.Option(help="Write the result as NetCDF (FILE.nc).")]
Plot = Annotated[str | None, typer.Option(help="Write a figure (FILE.png, .pdf or .svg).")]
Scheduler = Annotated[str | None, typer.Option(
    "--scheduler", help="Address of a running Dask scheduler (tcp://host:8786), e.g. a "
    "dask-jobqueue cluster; replaces the local workers.")]


#: Exit statuses of every command (README, "Command line"; `twolayer --help`).
EXIT_OK = 0  # done, every result ok
EXIT_USAGE = 2  # a mistake in the command line or its input: nothing computed or written
EXIT_NOT_OK = 3  # done and written, but some result is not ok (not converged, diverged, failed)
EXIT_CUT_SHORT = 4  # the run was cut short (a lost scheduler or worker): rerun to resume
EXIT_HELP = ("Exit status: 0 done, every result ok; 2 a mistake in the command or its input "
             "(one line on stderr, nothing computed); 3 done and results written, but some are "
             "not ok (not converged, diverged, failed: see their status); 4 the run was cut "
             "short (a lost scheduler or worker): run the same command again to resume; 130 "
             "interrupted.")


def exit_status(status: str = "ok", *, cut_short: bool = False) -> int:
    """The exit status of a finished command from its result's ``status`` attribute ("ok",
    "not_converged", "diverged", "failed", "stopped"; a recipe's "incomplete")."""
    if cut_short:
        return EXIT_CUT_SHORT
    return EXIT_OK if status == "ok" else EXIT_NOT_OK


def finish(status: str = "ok", *, cut_short: bool = False) -> None:
    """End a command that wrote its results with :func:`exit_status` (raises unless 0)."""
    code = exit_status(status, cut_short=cut_short)
    if code != EXIT_OK:
        raise typer.Exit(code)


class UserError(Exception):
    """A bad command line (exit status 2)."""


def error(msg: str) -> None:
    """One line on stderr."""
    print(f"twolayer: error: {' '.join(str(msg).split())}", file=sys.stderr)


def warnings_to_stderr() -> None:
    """The package's warnings as one line each on stderr, every time they occur."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"twolayer: warning: {' '.join(str(message).split())}", file=sys.stderr)

    warnings.showwarning = show
    warnings.simplefilter("always", ConvergenceWarning)
    warnings.simplefilter("always", DivergenceWarning)
    warnings.simplefilter("always", StoreWarning)


@contextlib.contextmanager
def resumable() -> Iterator[None]:
    """Ctrl-C during a sweep: say that the finished points are stored, exit 130."""
    try:
        yield
    except KeyboardInterrupt:
        print("twolayer: interrupted; the finished points are stored: run the same command "
              "to resume", file=sys.stderr)
        raise typer.Exit(130) from None


# --------------------------------------------------------------------------- parsing
def floats(name: str, text: str) -> list[float]:
    """A comma-separated list of finite numbers (``--alpha 0.5,1,2``); empty text: []."""
    if not text.strip():
        return []
    parts = [s.strip() for s in text.split(",")]
    try:
        vals = [float(s) for s in parts]
    except ValueError:
        raise UserError(f"--{name}: cannot parse {text!r} as a comma-separated list of numbers"
                        ) from None
    if not vals or any(not math.isfinite(v) for v in vals):
        raise UserError(f"--{name}: values must be finite numbers; got {text!r}")
    return vals


def check_outputs(out: str | None, plot: str | None, overwrite: bool) -> None:
    """Refuse before any work: existing files (unless --overwrite), one path for both, formats."""
    from twolayer.io import check_writable

    if out is not None and plot is not None and _same_path(out, plot):
        raise UserError(f"--out and --plot name the same file {out!r}")
    check_writable(out, overwrite=overwrite)
    check_writable(plot, overwrite=overwrite)
    if plot is not None and not plot.lower().endswith((".png", ".pdf", ".svg")):
        raise UserError(f"--plot: unsupported figure format {plot!r} (use .png, .pdf or .svg)")


def _same_path(a: str, b: str) -> bool:
    import os

    return os.path.abspath(a) == os.path.abspath(b)


# --------------------------------------------------------------------------- options from params
def _option(cls, name: str) -> inspect.Parameter:
    """The typer option of one parameter: name, type, default and help from ``cls``."""
    field = cls.model_fields[name]
    flag = "--" + name.replace("_", "-")
    ann, default, doc = field.annotation, field.get_default(call_default_factory=True), \
        cls.doc(name)
    args = get_args(ann)
    if ann is bool or (get_origin(ann) in (Union, type(int | None)) and set(args) == {
            bool, type(None)}):  # a switch; unset (None) leaves the choice to the method
        typ = bool if ann is bool else bool | None
        opt = typer.Option(f"{flag}/--no-{name.replace('_', '-')}", help=doc)
    elif name in cls.lists or name in cls.per_step:
        typ = str if default is not None else str | None
        if default is not None:
            default = ",".join(f"{v:g}" for v in (default if isinstance(default, list)
                                                  else [default]))
        opt = typer.Option(flag, help=doc + ", comma-separated")
    elif get_origin(ann) is Literal:
        typ, opt = str, typer.Option(flag, help=f"{doc} (one of: {', '.join(args)})")
    elif ann in (int, float, str):
        typ, opt = ann, typer.Option(flag, help=doc)
    elif get_origin(ann) in (Union, type(int | None)) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        typ, opt = inner | None, typer.Option(flag, help=doc)
    else:  # int | "inf", a file path for an object: given as text, validated by the model
        typ = str | None if default is None else str
        default = default if default is None else str(default)
        opt = typer.Option(flag, help=doc)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[typ, opt])


def params_command(cls) -> Callable[[Callable], Callable]:
    """A typer command whose options are ``cls``'s parameters, then ``body``'s own options.

    ``body(prm, **own)`` receives the validated parameter object (a mistake is a
    ParameterError: one line, exit 2).
    """

    def wrap(body: Callable) -> Callable:
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
               for p in list(inspect.signature(body, eval_str=True).parameters.values())[1:]]
        fields = [_option(cls, n) for n in cls.model_fields]

        def command(**given: Any):
            values = {n: given.pop(n) for n in cls.model_fields}
            for n in (*cls.lists, *cls.per_step):
                if values[n] is not None:
                    values[n] = floats(n.replace("_", "-"), values[n])
            try:
                prm = cls.of(values)
            except ParameterError as e:  # name the option as typed: "--t-max: …"
                bad = next((n for n in cls.model_fields if f"'{n}' parameter" in str(e)), None)
                flag = f"--{bad.replace('_', '-')}: " if bad else ""
                raise UserError(flag + str(e)) from None
            return body(prm, **given)

        params = fields + own
        command.__signature__ = inspect.Signature(params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__name__, command.__doc__ = body.__name__, body.__doc__
        return command

    return wrap


# --------------------------------------------------------------------------- output
def save_result(ds, out: str | None, overwrite: bool) -> None:
    """``--out FILE.nc``: the result as NetCDF (nothing without ``--out``)."""
    if out:
        from twolayer.io import save_netcdf

        save_netcdf(ds, out, overwrite=overwrite)


def table(columns: dict[str, list], title: str) -> None:
    """A right-aligned table on stdout."""
    from rich.console import Console
    from rich.table import Table

    t = Table()
    for name in columns:
        t.add_column(name, justify="right")
    for row in zip(*columns.values(), strict=True):
        t.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console = Console(width=max(100, 16 * len(columns)))
    console.print(title, markup=False)
    console.print(t)


def emit_json(obj: dict, ds=None, seconds: float | None = None) -> None:
    """One JSON object on stdout; with a result, its schema fields (status, message, params,
    version) are added."""
    import json

    from twolayer import __version__
    from twolayer.io import dumps

    if ds is not None:
        obj = {**obj, "status": ds.attrs["status"], "message": ds.attrs["message"],
               "params": json.loads(ds.attrs["params"])}
    obj["version"] = __version__
    if seconds is not None:
        obj["seconds"] = seconds
    print(dumps(obj))


def status_line(ds) -> None:
    """One line on stdout when a result is not ok (its status and what to try)."""
    if ds.attrs["status"] != "ok":
        print(f"status: {ds.attrs['status']} — {ds.attrs['message']}")

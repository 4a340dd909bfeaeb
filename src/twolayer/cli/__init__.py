"""The command line ``twolayer`` (thin: parse, call the library, print or save).

One module per command group — :mod:`~twolayer.cli.onestep`, :mod:`~twolayer.cli.sgd`,
:mod:`~twolayer.cli.experiments` (run, show, plot), :mod:`~twolayer.cli.store` (store ls|gc),
:mod:`~twolayer.cli.reproduce` — and
:mod:`~twolayer.cli.common` for what they share (options built from the parameter objects of
:mod:`twolayer.params`, errors, output). User mistakes exit with status 2 and one line on stderr;
a result that is not ok exits 3, a run cut short 4 (:func:`twolayer.cli.common.exit_status`).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from twolayer import __version__
from twolayer.cli import experiments, onestep, reproduce, sgd, store
from twolayer.cli.common import EXIT_HELP, EXIT_USAGE, UserError, error, warnings_to_stderr
from twolayer.errors import TwolayerError

__all__ = ["app", "main", "run"]

app = typer.Typer(
    help="Exact high-dimensional theory and simulations of two-layer neural networks.\n\n"
    + EXIT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(onestep.app, name="onestep")
app.add_typer(sgd.app, name="sgd")
app.add_typer(store.app, name="store")
experiments.register(app)
reproduce.register(app)


def _version(value: bool) -> None:
    if value:
        print(f"twolayer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version.")] = False,
    activations: Annotated[str | None, typer.Option(
        "--activations", metavar="MODULE[,MODULE]",
        help="Import these modules (dotted names, comma-separated) before anything else: "
        "activations they register are usable by name (--student, --teacher). Installed "
        "plugins of the entry-point group 'twolayer.activations' load by themselves.")] = None,
) -> None:
    """twolayer: theory curves beside simulations, for two-layer networks."""
    if activations is not None:
        from twolayer.activations import load_modules

        names = [m.strip() for m in activations.split(",")]
        if not all(names):
            raise UserError(f"--activations: expected MODULE[,MODULE]; got {activations!r}")
        try:
            load_modules(names)
        except TwolayerError as e:
            raise UserError(f"--activations: {e}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv``; user mistakes become one line on stderr and status 2.

    Typer's command-line errors (click's ``UsageError`` family) are recognised by their
    ``exit_code`` and ``format_message``.
    """
    warnings_to_stderr()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        rv = app(args=argv or ["--help"], prog_name="twolayer", standalone_mode=False)
    except (UserError, TwolayerError) as e:
        error(str(e))
        return EXIT_USAGE
    except BrokenPipeError:
        return 1
    except Exception as e:
        code = getattr(e, "exit_code", None)
        if type(e).__name__ == "Abort":
            error("aborted")
            return 130
        if code is None:
            raise
        if hasattr(e, "format_message") and code != 0:
            error(e.format_message())
        return int(code)
    return rv if isinstance(rv, int) else 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())

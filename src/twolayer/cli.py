"""Command-line interface (thin: parse, call the library, print or save).

User mistakes exit with status 2 and one line on stderr; results go to stdout (a table, or one
JSON object with ``--json``); progress goes to stderr.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from typing import Annotated

import typer

from twolayer import __version__
from twolayer.errors import ConvergenceWarning, DivergenceWarning, TwolayerError

app = typer.Typer(
    help="Exact high-dimensional theory and simulations of two-layer neural networks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
onestep_app = typer.Typer(
    help="One giant gradient step then a ridge readout, after Cui et al. 2024: "
    "theory and simulation",
    no_args_is_help=True,
)
app.add_typer(onestep_app, name="onestep")


class UserError(Exception):
    """A bad command line (exit status 2)."""


def _err(msg: str) -> None:
    print(f"twolayer: error: {msg}", file=sys.stderr)


def _floats(name: str, text: str) -> list[float]:
    parts = [s.strip() for s in text.split(",")]
    try:
        vals = [float(s) for s in parts]
    except ValueError:
        raise UserError(
            f"--{name}: cannot parse {text!r} as a comma-separated list of numbers"
        ) from None
    if not vals or any(not math.isfinite(v) for v in vals):
        raise UserError(f"--{name}: values must be finite numbers; got {text!r}")
    return vals


def _version_cb(value: bool) -> None:
    if value:
        print(f"twolayer {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """twolayer: theory curves beside simulations, for two-layer networks."""


Student = Annotated[str, typer.Option(help="Student activation (name from the registry).")]
Teacher = Annotated[str, typer.Option(help="Teacher activation (name from the registry).")]
Alpha0 = Annotated[float, typer.Option("--alpha0", help="Step samples per dimension, n0/d.")]
Eta = Annotated[float, typer.Option(help="Learning rate η̃ of the step (0 = random features).")]
Lam = Annotated[str, typer.Option(help="Ridge penalty λ (comma-separated list allowed).")]
Alpha = Annotated[str, typer.Option(help="Readout samples per dimension n/d, comma-separated.")]
Noise = Annotated[float, typer.Option(help="Label noise variance Δ.")]
Seed = Annotated[int, typer.Option(help="Base random seed.")]
Out = Annotated[str | None, typer.Option(help="Write the result as NetCDF (FILE.nc).")]
Plot = Annotated[str | None, typer.Option(help="Write a figure (FILE.png or .pdf).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]


def _prepare_outputs(out, plot, overwrite):
    from twolayer.io import check_writable

    check_writable(out, overwrite=overwrite)
    check_writable(plot, overwrite=overwrite)
    if plot is not None and not plot.lower().endswith((".png", ".pdf", ".svg")):
        raise UserError(f"--plot: unsupported figure format {plot!r} (use .png, .pdf or .svg)")


def _by_lam(arr, n_lam):
    """1-d over α for a single λ, else α × λ nested lists."""
    return arr[:, 0] if n_lam == 1 else arr


def _table(columns: dict[str, list], title: str) -> None:
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


def _warn_to_stderr():
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"twolayer: warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    warnings.simplefilter("always", ConvergenceWarning)
    warnings.simplefilter("always", DivergenceWarning)


def _srf_note(th) -> str:
    return (f"sRF: bulk scale {th.attrs['bulk_scale']:.4f}, spike {th.attrs['spike']:.4f}, "
            f"alignment {th.attrs['alignment']:.4f}")


@onestep_app.command("theory")
def onestep_theory(
    student: Student = "tanh",
    teacher: Teacher = "tanh",
    alpha0: Alpha0 = 0.5,
    eta: Eta = 1.0,
    lam: Lam = "0.01",
    alpha: Alpha = "0.2,0.6,1,1.6,2,3",
    noise: Noise = 0.0,
    beta: Annotated[float, typer.Option(help="Width ratio β = p/d.")] = 1.0,
    d: Annotated[str, typer.Option(help="'inf' (Marchenko–Pastur bulk) or a finite d.")] = "inf",
    draws: Annotated[int, typer.Option(help="Finite d: bulk draws to average.")] = 1,
    seed: Seed = 0,
    out: Out = None,
    plot: Plot = None,
    json_: Json = False,
    overwrite: Overwrite = False,
) -> None:
    """Spiked random-features theory of the test error vs α (RF baseline: --eta 0)."""
    from twolayer.onestep import rf_theory, theory

    alphas, lams = _floats("alpha", alpha), _floats("lam", lam)
    d_val: str | int = d
    if d.strip().lower() not in ("inf", "infinity"):
        try:
            d_val = int(d)
        except ValueError:
            raise UserError(f"--d: expected 'inf' or an integer; got {d!r}") from None
    _prepare_outputs(out, plot, overwrite)
    kw = dict(alphas=alphas, lam=lams, noise=noise, beta=beta, d=d_val, draws=draws, seed=seed)
    t0 = time.perf_counter()
    th = theory(student, teacher, alpha0=alpha0, eta=eta, **kw)
    elapsed = time.perf_counter() - t0
    th.attrs["seconds"] = elapsed
    if out:
        from twolayer.io import save_netcdf

        save_netcdf(th, out, overwrite=overwrite)
    if plot:
        from twolayer.plotting import plot_onestep

        dense = {**kw, "alphas": _dense(alphas)}
        th_d = theory(student, teacher, alpha0=alpha0, eta=eta, **dense)
        rf = rf_theory(student, teacher, **dense) if eta > 0 else None
        plot_onestep(plot, theory=th_d, rf=rf, title=_title(student, teacher, alpha0, eta, noise))
    _emit_theory(th, json_, elapsed)


def _dense(alphas: list[float]) -> list[float]:
    """A fine α grid over the requested range, for smooth theory lines in figures."""
    import numpy as np

    lo, hi = min(alphas), max(alphas)
    return sorted({*alphas, *np.linspace(lo, hi, 60).tolist()}) if hi > lo else list(alphas)


def _title(student, teacher, alpha0, eta, noise) -> str:
    return f"σ={student}, σ⋆={teacher}, α0={alpha0:g}, η̃={eta:g}, Δ={noise:g}"


def _emit_theory(th, json_: bool, elapsed: float) -> None:
    import json

    from twolayer.io import dumps

    n_lam = th.sizes["lam"]
    if json_:
        obj = {
            "alpha": th["alpha"].values, "lam": th["lam"].values,
            "test_error": _by_lam(th["test_error"].values, n_lam),
            "train_error": _by_lam(th["train_error"].values, n_lam),
            "converged": _by_lam(th["converged"].values, n_lam),
            "residual": _by_lam(th["residual"].values, n_lam),
            "iterations": _by_lam(th["iterations"].values, n_lam),
            "srf": {k: th.attrs[k] for k in ("bulk_scale", "bulk_shrink", "spike", "alignment")},
            "params": json.loads(th.attrs["params"]), "version": __version__,
            "seconds": elapsed,
        }
        print(dumps(obj))
        return
    for j, lam in enumerate(th["lam"].values):
        cols = {
            "alpha": [float(a) for a in th["alpha"].values],
            "test error": [float(v) for v in th["test_error"].values[:, j]],
            "train error": [float(v) for v in th["train_error"].values[:, j]],
            "converged": ["yes" if c else "NO" for c in th["converged"].values[:, j]],
        }
        _table(cols, f"one-step theory (d={th.attrs['spectrum']}), λ={lam:g}")
    print(_srf_note(th) + f"  [{elapsed:.2f} s]")


@onestep_app.command("simulate")
def onestep_simulate(
    student: Student = "tanh",
    teacher: Teacher = "tanh",
    alpha0: Alpha0 = 0.5,
    eta: Eta = 1.0,
    lam: Lam = "0.01",
    alpha: Alpha = "0.2,0.6,1,1.6,2,3",
    noise: Noise = 0.0,
    beta: Annotated[float, typer.Option(help="Width ratio β = p/d (if --p is not given).")] = 1.0,
    d: Annotated[int, typer.Option(help="Input dimension d.")] = 1000,
    p: Annotated[int | None, typer.Option(help="Hidden width p (default β·d).")] = None,
    seeds: Annotated[int, typer.Option(help="Independent runs.")] = 3,
    seed: Seed = 0,
    n_test: Annotated[int, typer.Option("--n-test", help="Test samples per run.")] = 10000,
    float32: Annotated[bool, typer.Option("--float32", help="Features in float32.")] = False,
    theory_: Annotated[
        bool, typer.Option("--theory/--no-theory", help="Also give the d=inf theory.")
    ] = True,
    out: Out = None,
    plot: Plot = None,
    json_: Json = False,
    overwrite: Overwrite = False,
) -> None:
    """Simulate the network (giant step + ridge readout) over seeds, beside the theory."""
    from twolayer.onestep import rf_theory, simulate, theory

    alphas, lams = _floats("alpha", alpha), _floats("lam", lam)
    _prepare_outputs(out, plot, overwrite)
    if not math.isfinite(beta) or beta <= 0:
        raise UserError(f"--beta must be a positive finite number; got {beta}")
    if p is None:
        if d < 1:
            raise UserError(f"--d must be >= 1; got {d}")
        p = max(1, round(beta * d))
    t0 = time.perf_counter()

    def progress(done, total):
        print(f"  run {done}/{total} done ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)

    sim = simulate(student, teacher, alpha0=alpha0, eta=eta, lam=lams, alphas=alphas, d=d, p=p,
                   noise=noise, seeds=seeds, seed=seed, n_test=n_test,
                   dtype="float32" if float32 else "float64", progress=progress)
    elapsed = time.perf_counter() - t0
    sim.attrs["seconds"] = elapsed
    th = rf = None
    kw = dict(alphas=alphas, lam=lams, noise=noise, beta=p / d)
    if theory_ or plot:
        try:
            th = theory(student, teacher, alpha0=alpha0, eta=eta, **kw)
            rf = rf_theory(student, teacher, **kw) if eta > 0 and alpha0 > 0 else None
        except TwolayerError as e:  # e.g. no spiked form: simulate anyway
            print(f"twolayer: warning: no theory: {e}", file=sys.stderr)
    if out:
        from twolayer.io import save_netcdf

        save_netcdf(sim, out, overwrite=overwrite)
    if plot:
        from twolayer.plotting import plot_onestep

        th_d = rf_d = None
        if th is not None:
            dense = {**kw, "alphas": _dense(alphas)}
            th_d = theory(student, teacher, alpha0=alpha0, eta=eta, **dense)
            rf_d = rf_theory(student, teacher, **dense) if rf is not None else None
        plot_onestep(plot, theory=th_d, simulation=sim, rf=rf_d,
                     title=_title(student, teacher, alpha0, eta, noise) + f", p={p}")
    _emit_sim(sim, th, json_, elapsed)


def _emit_sim(sim, th, json_: bool, elapsed: float) -> None:
    import json

    from twolayer.io import dumps

    n_lam = sim.sizes["lam"]
    diag = {k: sim[k].values for k in ("spike_sv", "spike_overlap", "w1_overlap", "bulk_scale")}
    if json_:
        obj = {
            "alpha": sim["alpha"].values, "lam": sim["lam"].values,
            "test_error": _by_lam(sim["test_error_mean"].values, n_lam),
            "test_error_std": _by_lam(sim["test_error_std"].values, n_lam),
            "test_error_seeds": [_by_lam(x, n_lam) for x in sim["test_error"].values],
            "train_error": _by_lam(sim["train_error_mean"].values, n_lam),
            "diagnostics": diag,
            "params": json.loads(sim.attrs["params"]), "version": __version__,
            "seconds": elapsed,
        }
        if th is not None:
            obj["theory_test_error"] = _by_lam(th["test_error"].values, n_lam)
            obj["theory_converged"] = _by_lam(th["converged"].values, n_lam)
            obj["srf"] = {k: th.attrs[k] for k in ("bulk_scale", "spike", "alignment")}
        print(dumps(obj))
        return
    for j, lam in enumerate(sim["lam"].values):
        cols = {
            "alpha": [float(a) for a in sim["alpha"].values],
            "simulation": [float(v) for v in sim["test_error_mean"].values[:, j]],
            "± std": [float(v) for v in sim["test_error_std"].values[:, j]],
        }
        if th is not None:
            cols["theory (d=inf)"] = [float(v) for v in th["test_error"].values[:, j]]
        prm = json.loads(sim.attrs["params"])
        _table(cols, f"one-step test error: d={prm['d']}, p={prm['p']}, "
               f"{sim.sizes['seed']} seeds, λ={lam:g}")
    print("step diagnostics (mean over seeds): "
          + ", ".join(f"{k} {float(v.mean()):.4f}" for k, v in diag.items()))
    if th is not None:
        print("theory " + _srf_note(th))
    print(f"[{elapsed:.1f} s]")


from twolayer.cli_sgd import sgd_app  # noqa: E402  (it imports the shared options above)

app.add_typer(sgd_app, name="sgd")

from twolayer.cli_experiments import register as _register_experiments  # noqa: E402

_register_experiments(app)

from twolayer.cli_reproduce import register as _register_reproduce  # noqa: E402

_register_reproduce(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: maps user mistakes to one line on stderr and exit status 2.

    Typer's command-line errors (click's ``UsageError`` family, vendored in recent typer) are
    recognised by their ``exit_code`` and ``format_message``.
    """
    _warn_to_stderr()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        argv = ["--help"]
    try:
        rv = app(args=argv, prog_name="twolayer", standalone_mode=False)
    except (UserError, TwolayerError) as e:
        _err(str(e))
        return 2
    except BrokenPipeError:
        return 1
    except Exception as e:
        code = getattr(e, "exit_code", None)
        if type(e).__name__ == "Abort":
            _err("aborted")
            return 130
        if code is None:
            raise
        if hasattr(e, "format_message") and code != 0:
            _err(" ".join(e.format_message().split()))
        return int(code)
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script wrapper around :func:`main`."""
    sys.exit(main())

"""One point of a sweep: call the library function, judge its result, never raise.

:func:`compute_point` runs on a Dask worker (or in-process with ``--workers 0``). It gets the
point's key and payload (see :mod:`twolayer.experiments.store`), checks that this process has
the same package version and the same activation definitions as the client, calls the library
with warnings recorded, and returns a :class:`~twolayer.experiments.store.Record`.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import xarray as xr

from twolayer.errors import ConvergenceWarning, DivergenceWarning, TwolayerError
from twolayer.experiments.store import Record, activation_fingerprint, code_fingerprint

__all__ = ["RUNNERS", "compute_point"]


class EnvironmentMismatch(RuntimeError):
    """The worker's package version or activation registry differs from the client's."""


def _onestep_theory(p: dict) -> xr.Dataset:
    from twolayer.onestep import theory

    return theory(p["student"], p["teacher"], alpha0=p["alpha0"], eta=p["eta"], lam=p["lam"],
                  alphas=p["alpha"], noise=p["noise"], beta=p["beta"], d=p["d"],
                  draws=p["draws"], seed=p["seed"])


def _onestep_simulate(p: dict) -> xr.Dataset:
    from twolayer.onestep import simulate

    return simulate(p["student"], p["teacher"], alpha0=p["alpha0"], eta=p["eta"], lam=p["lam"],
                    alphas=p["alpha"], d=p["d"], p=p["p"], noise=p["noise"], seeds=p["seeds"],
                    seed=p["seed"], n_test=p["n_test"],
                    dtype="float32" if p["float32"] else "float64")


def _overlaps(init: dict | None):
    if init is None:
        return None
    from twolayer.sgd.init import Overlaps

    return Overlaps(*(np.array(init[k], dtype=float) for k in ("Q", "M", "P")))


def _sgd_ode(p: dict) -> xr.Dataset:
    from twolayer.sgd import ode, ode_wide

    solve = ode_wide if p["wide"] else ode
    return solve(p["student"], p["teacher"], p=p["p"], k=p["k"], gamma=p["gamma"],
                 t_max=p["t_max"], noise=p["noise"], d=p["d"], seed=p["seed"],
                 init_scale=p["init_scale"], init=_overlaps(p["init"]), variance=p["variance"],
                 spherical=p["spherical"], method=p["method"], dt=p["dt"])


def _sgd_simulate(p: dict) -> xr.Dataset:
    from twolayer.sgd import simulate

    return simulate(p["student"], p["teacher"], p=p["p"], k=p["k"], d=p["d"], gamma=p["gamma"],
                    t_max=p["t_max"], noise=p["noise"], seeds=p["seeds"], seed=p["seed"],
                    init_scale=p["init_scale"], spherical=p["spherical"],
                    init=_overlaps(p["init"]), float32=p["float32"])


RUNNERS: dict[tuple[str, str], Callable[[dict], xr.Dataset]] = {
    ("onestep", "theory"): _onestep_theory,
    ("onestep", "simulate"): _onestep_simulate,
    ("sgd", "ode"): _sgd_ode,
    ("sgd", "simulate"): _sgd_simulate,
}


def _assess(model: str, method: str, ds: xr.Dataset, notes: list[str]) -> tuple[str, str]:
    """(status, reason) of a finished computation, from the result itself."""
    said = "; ".join(notes)
    if (model, method) == ("onestep", "theory"):
        bad = ~ds["converged"].values
        if bad.any():
            return "not_converged", said or (
                f"the fixed point did not converge at {int(bad.sum())} of {bad.size} "
                "(alpha, lam) points")
    elif (model, method) == ("onestep", "simulate"):
        bad = ~np.isfinite(ds["test_error"].values)
        if bad.any():
            return "diverged", said or (
                f"non-finite test error at {int(bad.sum())} of {bad.size} (seed, alpha, lam) "
                "entries")
    elif method == "ode":
        status = ds.attrs.get("status", "ok")
        if status != "ok":
            return status, said or f"stopped at t = {ds.attrs.get('t_stop')}"
    elif method == "simulate":
        at = ds["diverged_at"].values
        if np.isfinite(at).any():
            return "diverged", said or (
                f"{int(np.isfinite(at).sum())} of {at.size} runs diverged (first at "
                f"t = {np.nanmin(at):.4g})")
    return "ok", said


def _worker_name() -> str:
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return get_worker().address
        except ValueError:  # not inside a Dask worker
            pass
    return "local"


def _check_environment(payload: dict) -> None:
    import twolayer

    if payload["version"] != twolayer.__version__:
        raise EnvironmentMismatch(f"the worker runs twolayer {twolayer.__version__}, the client "
                                  f"{payload['version']}")
    if payload["code"] != code_fingerprint():
        raise EnvironmentMismatch("the worker's twolayer source differs from the client's "
                                  "(same version, other code)")
    for role, fp in payload["activations"].items():
        if activation_fingerprint(fp["name"]) != fp:
            raise EnvironmentMismatch(
                f"the {role} activation {fp['name']!r} is not defined the same way on the "
                "worker as on the client (register it in the workers too)")


def compute_point(key: str, payload: dict) -> Record:
    """Compute one point; exceptions become an "error" record (see :class:`Record`)."""
    t0 = time.perf_counter()
    worker = _worker_name()
    model, method = payload["model"], payload["method"]
    try:
        _check_environment(payload)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = RUNNERS[(model, method)](payload["params"])
        notes = [str(w.message) for w in caught
                 if issubclass(w.category, (ConvergenceWarning, DivergenceWarning))]
        status, reason = _assess(model, method, ds, notes)
        return Record(key, status, reason, time.perf_counter() - t0, ds, worker=worker)
    except TwolayerError as e:  # the package's own verdict on these parameters: final
        return Record(key, "error", f"{type(e).__name__}: {e}", time.perf_counter() - t0,
                      worker=worker)
    except Exception as e:  # anything else may be the machine's fault: retried next run
        return Record(key, "error", f"{type(e).__name__}: {e}", time.perf_counter() - t0,
                      transient=True, worker=worker)

"""One point of a sweep: call the library function, judge its result, never raise.

:func:`compute_point` runs on a Dask worker (or in-process with ``--workers 0``). It gets the
point's key and payload (see :mod:`twolayer.experiments.store`), imports the plugin modules
that define its activations, checks that this process has the same package version and the same
activation definitions as the client, builds the
parameter object from the payload, computes it with warnings recorded, checks the result
against the schema (:func:`twolayer.results.validate`) and returns a
:class:`~twolayer.experiments.store.Record`.
"""

from __future__ import annotations

import sys
import time
import warnings

import xarray as xr

from twolayer.errors import ConvergenceWarning, DivergenceWarning, TwolayerError
from twolayer.experiments.store import Record, activation_fingerprint, code_fingerprint
from twolayer.params import spec
from twolayer.results import validate

__all__ = ["compute_point"]


class EnvironmentMismatch(RuntimeError):
    """The worker's package version or activation registry differs from the client's."""


def _one_line(text: str) -> str:
    """A reason as one line (a summary prints one line per failed point)."""
    return " ".join(str(text).split())


def _assess(ds: xr.Dataset, notes: list[str]) -> tuple[str, str]:
    """(status, reason) of a finished computation: the result's own schema verdict."""
    validate(ds)
    status, message = ds.attrs["status"], ds.attrs["message"]
    if status == "ok":
        return status, _one_line("; ".join(notes))
    return status, _one_line(message or "; ".join(notes))


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
    from twolayer import activations

    # the plugin modules that define the point's activations: imported here too (a Dask worker
    # is another process); one that fails to import there is the worker's fault (transient)
    try:
        activations.load_modules(sorted({fp["plugin"] for fp in payload["activations"].values()
                                         if fp.get("plugin")}))
    except TwolayerError as e:
        raise EnvironmentMismatch(f"on the worker: {e}") from None
    for role, fp in payload["activations"].items():
        if activation_fingerprint(fp["name"]) != fp:
            raise EnvironmentMismatch(
                f"the {role} activation {fp['name']!r} is not defined the same way on the "
                "worker as on the client (register it in the workers too)")


def compute_point(key: str, payload: dict) -> Record:
    """Compute one point; exceptions become a "failed" record without data (see :class:`Record`)."""
    t0 = time.perf_counter()
    worker = _worker_name()
    model, method = payload["model"], payload["method"]
    try:
        _check_environment(payload)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = spec(model, method).of(payload["params"]).compute()
        notes = [str(w.message) for w in caught
                 if issubclass(w.category, (ConvergenceWarning, DivergenceWarning))
                 and str(w.message) != ds.attrs.get("message")]
        status, reason = _assess(ds, notes)
        return Record(key, status, reason, time.perf_counter() - t0, ds, worker=worker)
    except TwolayerError as e:  # the package's own verdict on these parameters: final
        return Record(key, "failed", _one_line(f"{type(e).__name__}: {e}"),
                      time.perf_counter() - t0, worker=worker)
    except Exception as e:  # anything else may be the machine's fault: retried next run
        return Record(key, "failed", _one_line(f"{type(e).__name__}: {e}"),
                      time.perf_counter() - t0, transient=True, worker=worker)

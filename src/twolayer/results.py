"""One schema for every result, single or swept: what a Dataset must carry, and its check.

Attributes of every result (:data:`REQUIRED`):

- ``model``, ``method`` — which computation (a key of :data:`twolayer.params.METHODS`);
- ``version`` — the package version that computed it;
- ``params`` — JSON of the parameter object (for a sweep: its base parameters);
- ``status`` — one of :data:`STATUSES`: ``ok``; ``not_converged`` (a fixed point missed its
  tolerance somewhere: values kept, flagged); ``diverged`` (a run or an integration blew up: NaN
  from then on); ``stopped`` (interrupted before the end); ``failed`` (nothing or only part was
  computed: a solver gave up or an error was raised);
- ``message`` — what happened and what to try ("" when ok);
- ``seconds`` — wall time of the computation (optional, never part of the data);
- ``activation_modules`` — JSON ``{role: module}`` of the student/teacher activations that a
  plugin module registered (``--activations``, entry points; only when there is one).

Element-wise verdicts of a single result live in its own variables: ``converged`` (one-step
theory, per (alpha, lam)), ``diverged_at`` (simulations, per seed). A sweep's points fail
separately: a merged sweep result also has ``status``, ``reason`` and ``point_key`` variables
on its sweep dimensions and the attributes ``sweep_mode``, ``sweep_axes`` and
``experiment_key``; its ``status`` attribute is the worst of its points'.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import xarray as xr

from twolayer.errors import TwolayerError

__all__ = ["REQUIRED", "STATUSES", "SchemaError", "stamp", "validate", "worst"]

#: statuses in order of severity
STATUSES = ("ok", "stopped", "not_converged", "diverged", "failed")
REQUIRED = ("model", "method", "version", "params", "status", "message")
SWEEP = ("sweep_mode", "sweep_axes", "experiment_key")


class SchemaError(TwolayerError, ValueError):
    """A Dataset that is not a twolayer result (the message says what is missing)."""


def worst(statuses: Iterable[str]) -> str:
    """The most severe of ``statuses`` ("ok" for none)."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    return max(statuses, key=lambda s: rank[s], default="ok")


def stamp(ds: xr.Dataset, prm, status: str = "ok", message: str = "", **extra) -> xr.Dataset:
    """Write the schema's attributes (from the parameter object ``prm``) onto ``ds``."""
    import twolayer

    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    ds.attrs.update(model=prm.model, method=prm.method, version=twolayer.__version__,
                    params=prm.to_json(), status=status, message=message, **extra)
    plugins = activation_plugins(prm)
    if plugins:
        ds.attrs["activation_modules"] = json.dumps(plugins, sort_keys=True)
    return ds


def activation_plugins(prm) -> dict[str, str]:
    """{role: plugin module} for the student and teacher activations of ``prm`` that a plugin
    module registered (:func:`twolayer.activations.source`); empty for built-ins."""
    from twolayer import activations

    out = {}
    for role in ("student", "teacher"):
        name = getattr(prm, role, None) if not isinstance(prm, dict) else prm.get(role)
        src = activations.source(name) if isinstance(name, str) else None
        if src:
            out[role] = src
    return out


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check ``ds`` against the schema; raise :class:`SchemaError` naming the first problem."""
    from twolayer.params import METHODS

    a = ds.attrs
    missing = [k for k in REQUIRED if k not in a]
    if missing:
        raise SchemaError(f"not a twolayer result: the attributes {', '.join(missing)} are "
                          "missing (write one with `twolayer run` or a command's --out)")
    cls = METHODS.get((a["model"], a["method"]))
    if cls is None:
        raise SchemaError(f"unknown model and method {a['model']!r} {a['method']!r}")
    if a["status"] not in STATUSES:
        raise SchemaError(f"status {a['status']!r} is not one of {', '.join(STATUSES)}")
    if not isinstance(a["message"], str):
        raise SchemaError("the message attribute must be a string")
    try:
        params = json.loads(a["params"])
    except (TypeError, ValueError):
        params = None
    if not isinstance(params, dict):
        raise SchemaError("the params attribute must be a JSON object")
    absent = [v for v in cls.outputs if v not in ds.variables]
    if absent and is_sweep(ds) and "status" in ds.variables and \
            all(str(s) == "failed" for s in np.ravel(ds["status"].values)):
        absent = []  # a sweep whose every point failed has no data at all
    if absent:
        raise SchemaError(f"a {cls.model} {cls.method} result needs the variables "
                          f"{', '.join(absent)}")
    if is_sweep(ds):
        _validate_sweep(ds)
    elif a["status"] == "ok":
        _validate_single_ok(ds)
    return ds


def is_sweep(ds: xr.Dataset) -> bool:
    """Whether ``ds`` is a merged sweep (``twolayer run``) rather than a single result."""
    return "experiment_key" in ds.attrs


def _validate_sweep(ds: xr.Dataset) -> None:
    missing = [k for k in SWEEP if k not in ds.attrs]
    missing += [v for v in ("status", "reason", "point_key") if v not in ds.variables]
    if missing:
        raise SchemaError(f"a sweep result needs {', '.join(missing)}")
    points = [str(s) for s in np.ravel(ds["status"].values)]
    bad = sorted(set(points) - set(STATUSES))
    if bad:
        raise SchemaError(f"per-point statuses {bad} are not among {', '.join(STATUSES)}")
    if ds.attrs["status"] != worst(points):
        raise SchemaError(f"the status attribute {ds.attrs['status']!r} is not the worst of the "
                          f"points' ({worst(points)!r})")


def _validate_single_ok(ds: xr.Dataset) -> None:
    """An ``ok`` single result has no element that says otherwise."""
    if "converged" in ds.variables and not bool(np.all(ds["converged"].values)):
        raise SchemaError("status is 'ok' but some points did not converge")
    if "diverged_at" in ds.variables and bool(np.isfinite(ds["diverged_at"].values).any()):
        raise SchemaError("status is 'ok' but some runs diverged")

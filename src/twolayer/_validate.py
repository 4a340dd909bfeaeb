"""Parameter checks at the boundary, with one message format (as scikit-learn's)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from twolayer.errors import ParameterError


def real(name: str, value, *, low: float | None = None, strict: bool = False) -> float:
    """A finite float, optionally ``> low`` (strict) or ``>= low``."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(
            f"the {name!r} parameter must be a real number; got {value!r}"
        ) from None
    if not math.isfinite(x):
        raise ParameterError(f"the {name!r} parameter must be finite; got {value!r}")
    if low is not None and (x <= low if strict else x < low):
        op = ">" if strict else ">="
        raise ParameterError(f"the {name!r} parameter must be {op} {low:g}; got {x:g}")
    return x


def integer(name: str, value, *, low: int = 1) -> int:
    """An integer ``>= low``."""
    if isinstance(value, bool):
        raise ParameterError(f"the {name!r} parameter must be an integer; got {value!r}")
    try:
        i = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"the {name!r} parameter must be an integer; got {value!r}") from None
    if i != value and not (isinstance(value, float) and value.is_integer()):
        raise ParameterError(f"the {name!r} parameter must be an integer; got {value!r}")
    if i < low:
        raise ParameterError(f"the {name!r} parameter must be >= {low}; got {i}")
    return i


def reals(name: str, values, *, low: float | None = None, strict: bool = False) -> np.ndarray:
    """A non-empty 1-d array of checked reals."""
    if np.isscalar(values):
        values = [values]
    vals = list(values) if isinstance(values, Iterable) else [values]
    if not vals:
        raise ParameterError(f"the {name!r} parameter must hold at least one value")
    return np.array([real(name, v, low=low, strict=strict) for v in vals], dtype=float)

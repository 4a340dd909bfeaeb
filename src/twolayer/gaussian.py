"""Gaussian expectations by quadrature, vectorised over any leading shape.

``expect(g)`` returns E[g(z)] for z ~ N(0, 1). ``g`` receives the quadrature nodes as an array of
shape ``(n,)`` placed on a new trailing axis, so it may close over arrays of any shape ``S`` by
indexing them with ``[..., None]``; the result has shape ``S``.

Smooth integrands use Gauss–Hermite (probabilists' weight, exact for polynomials of degree
< 2n). Integrands with kinks or jumps (relu, its derivative) converge only like 1/n with
Gauss–Hermite; pass their locations in z-space as ``breaks`` and the integral is split there and
done by Gauss–Legendre on each piece of [−L, L] (L = 12, outside which the Gaussian mass is
below 1e-32).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss

__all__ = ["expect", "hermite_rule"]

_L = 12.0
_SQRT2PI = np.sqrt(2.0 * np.pi)


@cache
def hermite_rule(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the n-point Gauss–Hermite rule for the N(0, 1) measure."""
    x, w = hermegauss(n)
    return x, w / w.sum()


@cache
def _legendre_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    return leggauss(n)


def expect(
    g: Callable[[np.ndarray], np.ndarray],
    breaks: np.ndarray | None = None,
    n: int = 64,
) -> np.ndarray:
    """E[g(z)], z ~ N(0, 1), by ``n``-point quadrature (per piece when ``breaks`` are given).

    ``breaks`` has shape ``S + (m,)``: m points in z where g is not smooth, for each element of
    the leading shape ``S``. Then ``g`` receives nodes of shape ``S + (m + 1) * n`` flattened on the
    last axis (one Gauss–Legendre rule per piece).
    """
    if breaks is None:
        z, w = hermite_rule(n)
        return np.asarray(g(z)) @ w
    breaks = np.clip(np.sort(np.asarray(breaks, dtype=float), axis=-1), -_L, _L)
    lead = breaks.shape[:-1]
    edges = np.concatenate(
        [np.full((*lead, 1), -_L), breaks, np.full((*lead, 1), _L)], axis=-1
    )
    lo, hi = edges[..., :-1, None], edges[..., 1:, None]
    t, wt = _legendre_rule(n)
    half = 0.5 * (hi - lo)
    z = (lo + hi) * 0.5 + half * t  # S + (m+1, n)
    w = half * wt * np.exp(-0.5 * z * z) / _SQRT2PI
    shape = (*lead, z.shape[-2] * z.shape[-1])
    return np.sum(np.asarray(g(z.reshape(shape))) * w.reshape(shape), axis=-1)

"""The erf student's z-moments for the wide ODE, fused: a Numba pass over (ν-node, unit).

Same formulas as :func:`twolayer.sgd.wide._erf` (the NumPy reference the tests compare with):
X = m + √v z, σ(x) = erf(x/√2); with r_a = 1 + a v the tilt e^{−aX²/2} gives the factor
K_a = e^{−a m²/(2 r_a)}/√r_a and the Gaussian N(m/r_a, v/r_a). Owen's T, which E σ² needs, is
SciPy's ``owens_t`` evaluated beforehand on row blocks in threads (the ufunc releases the GIL);
everything else is one compiled loop, parallel over ν-nodes, with no temporaries.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numba as nb
import numpy as np
from scipy import special

from twolayer.sgd._kernels import PARALLEL_LOCK

_C = math.sqrt(2.0 / math.pi)
_SQ2 = math.sqrt(2.0)


_WORKERS = max(1, min(8, os.cpu_count() or 1))


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_WORKERS)


def owens_t_rows(h: np.ndarray, a: np.ndarray) -> np.ndarray:
    """T(h[n, j], a[j]) for a (N, p) array h, row blocks in threads."""
    out = np.empty_like(h)
    n = h.shape[0]
    if n < 2 * _WORKERS or h.size < 50_000:
        return special.owens_t(h, a, out=out)
    edges = np.linspace(0, n, _WORKERS + 1).astype(int)

    def block(i):
        s = slice(edges[i], edges[i + 1])
        special.owens_t(h[s], a, out=out[s])

    list(_pool().map(block, range(_WORKERS)))
    return out


@nb.njit(cache=True, parallel=True, error_model="numpy")
def _fill(m, v, t0, t2, out):
    """out[0..8] = E σ, σ', σ'', σ'², σσ', σσ'', σσ'², σ²σ'², σ² at every (node, unit);
    t0 = T(m/√r1, 1/√r2), t2 = T(m2/√(1+v2), 1/√(1+2v2)) with m2 = m/r2, v2 = v/r2."""
    n_nodes, n_units = m.shape
    for n in nb.prange(n_nodes):
        for j in range(n_units):
            vj = v[j]
            x = m[n, j]
            r1 = 1.0 + vj
            r2 = 1.0 + 2.0 * vj
            m1 = x / r1
            v1 = vj / r1
            m2 = x / r2
            v2 = vj / r2
            s1 = math.sqrt(1.0 + v1)
            g1 = _C * math.exp(-0.5 * x * m1) / math.sqrt(r1)
            h = _C * _C * math.exp(-x * m2) / math.sqrt(r2)
            e1 = math.erf(m1 / (_SQ2 * s1))
            e2 = math.erf(m2 / (_SQ2 * math.sqrt(1.0 + v2)))
            ysy = m1 * e1 + v1 * _C * math.exp(-0.5 * m1 * m1 / (1.0 + v1)) / s1
            out[0, n, j] = math.erf(x / (_SQ2 * math.sqrt(r1)))
            out[1, n, j] = g1
            out[2, n, j] = -g1 * m1
            out[3, n, j] = h
            out[4, n, j] = g1 * e1
            out[5, n, j] = -g1 * ysy
            out[6, n, j] = h * e2
            out[7, n, j] = h * (1.0 - 8.0 * t2[n, j])
            out[8, n, j] = 1.0 - 8.0 * t0[n, j]


def erf_moments(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The nine moments (9, N, p) of X = m + s z for means m (N, p) and stds s (p,)."""
    m = np.ascontiguousarray(m, dtype=float)
    v = np.asarray(s, dtype=float) ** 2
    r1, r2 = 1.0 + v, 1.0 + 2.0 * v
    t0 = owens_t_rows(m / np.sqrt(r1), 1.0 / np.sqrt(r2))
    v2 = v / r2
    t2 = owens_t_rows(m / (r2 * np.sqrt(1.0 + v2)), 1.0 / np.sqrt(1.0 + 2.0 * v2))
    out = np.empty((9, *m.shape))
    with PARALLEL_LOCK:
        _fill(m, v, t0, t2, out)
    return out

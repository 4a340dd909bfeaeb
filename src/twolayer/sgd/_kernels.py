"""Numba kernels: the erf ODE right-hand side and the batched SGD steps.

Compiled on first use and cached on disk (``cache=True``), so later processes load them in a
fraction of a second.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_2PI = 2.0 / math.pi
_4PI2 = 4.0 / math.pi**2


@nb.njit(cache=True, fastmath=False)
def erf_flow(c, p, v, var_coef, noise):
    """(dQ/dt, dM/dt) for erf(x/√2) student and teacher, closed forms (Saad & Solla 1995).

    ``c`` is Ω = [[Q, M], [Mᵀ, P]], ``v`` the error weights. Gradient term through
    I3(j, b, c) = (2/π) (Ω_bc (1 + Ω_jj) − Ω_jb Ω_jc) / ((1 + Ω_jj) √Λ3), variance term through
    I4 = (4/π²) arcsin(Λ0 / √(Λ1 Λ2)) / √Λ4 and J2 = (2/π) / √Λ4.
    """
    n = c.shape[0]
    t = np.zeros((p, n))
    for j in range(p):
        a1 = 1.0 + c[j, j]
        for cc in range(n):
            lam3 = a1 * (1.0 + c[cc, cc]) - c[j, cc] * c[j, cc]
            f = _2PI * v[cc] / (a1 * math.sqrt(lam3))
            for b in range(n):
                t[j, b] += f * (c[b, cc] * a1 - c[j, b] * c[j, cc])
    dq = np.empty((p, p))
    dm = np.empty((p, n - p))
    for j in range(p):
        for m in range(n - p):
            dm[j, m] = t[j, p + m]
        for q in range(p):
            dq[j, q] = t[j, q] + t[q, j]
    if var_coef == 0.0:
        return dq, dm
    lam1 = np.empty(n)
    for j in range(p):
        ajj = 1.0 + c[j, j]
        for q in range(j, p):
            aqq = 1.0 + c[q, q]
            cjq = c[j, q]
            lam4 = ajj * aqq - cjq * cjq
            for a in range(n):
                cja = c[j, a]
                cqa = c[q, a]
                lam1[a] = (lam4 * (1.0 + c[a, a]) - cqa * cqa * ajj - cja * cja * aqq
                           + 2.0 * cjq * cja * cqa)
            s = 0.0
            for a in range(n):
                cja = c[j, a]
                cqa = c[q, a]
                row = 0.0
                for b in range(a, n):
                    cjb = c[j, b]
                    cqb = c[q, b]
                    lam0 = (lam4 * c[a, b] - cqa * cqb * ajj - cja * cjb * aqq
                            + cjq * (cja * cqb + cjb * cqa))
                    arg = lam0 / math.sqrt(lam1[a] * lam1[b])
                    if arg > 1.0:
                        arg = 1.0
                    elif arg < -1.0:
                        arg = -1.0
                    w = v[b] if b == a else 2.0 * v[b]
                    row += w * math.asin(arg)
                s += v[a] * row
            val = var_coef * (_4PI2 * s + _2PI * noise) / math.sqrt(lam4)
            dq[j, q] += val
            if q != j:
                dq[q, j] += val
    return dq, dm


# The activations of the compiled SGD step, coded by Activation.kernel_id (twolayer.activations).


@nb.njit(cache=True, fastmath=True)
def _act(kind, x):
    """σ(x) for the activation with kernel_id ``kind``."""
    if kind == 0:  # erf(x/√2)
        return math.erf(x * 0.7071067811865476)
    if kind == 1:  # relu
        return x if x > 0.0 else 0.0
    if kind == 2:  # linear
        return x
    if kind == 3:  # square
        return x * x
    return math.tanh(x)  # 4


@nb.njit(cache=True, fastmath=True)
def _dact(kind, x):
    """σ'(x) for the activation with kernel_id ``kind``."""
    if kind == 0:
        return 0.7978845608028654 * math.exp(-0.5 * x * x)
    if kind == 1:
        return 1.0 if x > 0.0 else 0.0
    if kind == 2:
        return 1.0
    if kind == 3:
        return 2.0 * x
    th = math.tanh(x)
    return 1.0 - th * th


@nb.njit(cache=True, fastmath=True)
def sgd_block(w, wt, xs, noise, lr, sk, tk, spherical, alive):
    """Run ``xs.shape[1]`` SGD steps on every live run; ``w`` (S, p, d) is updated in place.

    ``xs`` (S, B, d) are the inputs, ``noise`` (S, B) the label noise √Δ ξ, ``lr`` = γ/p.
    Student/teacher activations are coded by ``sk``/``tk`` (their ``kernel_id``). A run whose
    weights stop being finite is marked dead in ``alive`` and left alone.
    """
    n_runs, p, d = w.shape
    k = wt.shape[1]
    inv_sqrt_d = 1.0 / math.sqrt(d)
    lam = np.empty(p)
    coef = np.empty(p)
    for s in range(n_runs):
        if not alive[s]:
            continue
        for step in range(xs.shape[1]):
            x = xs[s, step]
            y = 0.0
            for r in range(k):
                acc = 0.0
                for i in range(d):
                    acc += wt[s, r, i] * x[i]
                y += _act(tk, acc * inv_sqrt_d)
            y = y / k + noise[s, step]
            yhat = 0.0
            for j in range(p):
                acc = 0.0
                for i in range(d):
                    acc += w[s, j, i] * x[i]
                lam[j] = acc * inv_sqrt_d
                yhat += _act(sk, lam[j])
            yhat /= p
            err = yhat - y
            if not math.isfinite(err):
                alive[s] = False
                break
            for j in range(p):
                coef[j] = lr * err * _dact(sk, lam[j]) * inv_sqrt_d
            for j in range(p):
                cj = coef[j]
                for i in range(d):
                    w[s, j, i] -= cj * x[i]
            if spherical:
                for j in range(p):
                    nrm = 0.0
                    for i in range(d):
                        nrm += w[s, j, i] * w[s, j, i]
                    scale = math.sqrt(d / nrm)
                    for i in range(d):
                        w[s, j, i] *= scale

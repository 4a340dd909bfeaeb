"""Numba kernels: the erf ODE right-hand side and the batched SGD steps.

Compiled on first use and cached on disk (``cache=True``), so later processes load them in a
fraction of a second.
"""

from __future__ import annotations

import math
import threading

import numba as nb
import numpy as np

# Kernels with ``parallel=True`` are entered under this lock: where Numba falls back to its
# workqueue threading layer (no OpenMP or TBB), two threads launching parallel kernels at once
# abort the process (e.g. a Dask worker with several threads). Each kernel uses every core.
PARALLEL_LOCK = threading.Lock()

_2PI = 2.0 / math.pi
_4PI2 = 4.0 / math.pi**2

# arcsin of Cephes (asin.c, S. L. Moshier): rational approximations on |x| ≤ 0.625 and, through
# arcsin(x) = π/2 − 2 arcsin(√((1−x)/2)), above; within 1 ulp of libm on [-1, 1] (tests). Both
# branches are computed and one selected, so a loop of it vectorises (with error_model="numpy":
# no zero-division checks), ~6x faster than the libm call that dominates the variance term.


@nb.njit(cache=True, inline="always", error_model="numpy")
def asin(x):
    """arcsin(x) for |x| ≤ 1 (Cephes; ≤ 1 ulp from libm)."""
    a = abs(x)
    zz = a * a
    small = a * (zz * (((((4.253011369004428248960e-3 * zz - 6.019598008014123785661e-1) * zz
                          + 5.444622390564711410273e0) * zz - 1.626247967210700244449e1) * zz
                        + 1.956261983317594739197e1) * zz - 8.198089802484824371615e0)
                 / (((((zz - 1.474091372988853791896e1) * zz + 7.049610280856842141659e1) * zz
                      - 1.471791292232726029859e2) * zz + 1.395105614657485689735e2) * zz
                    - 4.918853881490881290097e1)) + a
    y = 1.0 - a
    r = y * ((((2.967721961301243206100e-3 * y - 5.634242780008963776856e-1) * y
               + 6.968710824104713396794e0) * y - 2.556901049652824852289e1) * y
             + 2.853665548261061424989e1) / ((((y - 2.194779531642920639778e1) * y
                                               + 1.470656354026814941758e2) * y
                                              - 3.838770957603691357202e2) * y
                                             + 3.424398657913078477438e2)
    s = math.sqrt(y + y)
    big = ((7.85398163397448309616e-1 - s) - (s * r - 6.123233995736765886130e-17)
           + 7.85398163397448309616e-1)
    return math.copysign(big if a > 0.625 else small, x)


@nb.njit(cache=True, error_model="numpy", parallel=True)
def _erf_variance(c, p, v, sa, var_coef, noise, dq):
    """Add var_coef · sa_j sa_l ((4/π²) Σ_ab v_a v_b I4[j,l,a,b] + Δ J2[j,l]) to dq, streamed.

    For each pair j ≤ l the (a, b) sum runs over a ≤ b with O(p + k) scratch (x_b = Ω_jb,
    y_b = Ω_lb, 1/√Λ1_b, the arcsines of one row); Λ0 is linear in (Ω_ab, x_b, y_b) with
    coefficients fixed per (j, l, a). The arcsines of a row are one vectorised loop. Rows are
    shared out in pairs (j, p − 1 − j), equal work per pair, over the threads; each dq entry
    is written by one row's thread only (row j writes dq[j, l] and dq[l, j], l ≥ j).
    """
    for i in nb.prange((p + 1) // 2):
        _erf_variance_row(c, p, v, sa, var_coef, noise, dq, i)
        if p - 1 - i != i:
            _erf_variance_row(c, p, v, sa, var_coef, noise, dq, p - 1 - i)


@nb.njit(cache=True, error_model="numpy")
def _erf_variance_row(c, p, v, sa, var_coef, noise, dq, j):
    """The pairs (j, l ≥ j) of :func:`_erf_variance`."""
    n = c.shape[0]
    x = np.empty(n)
    y = np.empty(n)
    rs = np.empty(n)
    buf = np.empty(n)
    ajj = 1.0 + c[j, j]
    for q in range(j, p):
        aqq = 1.0 + c[q, q]
        cjq = c[j, q]
        lam4 = ajj * aqq - cjq * cjq
        for a in range(n):
            cja = c[j, a]
            cqa = c[q, a]
            x[a] = cja
            y[a] = cqa
            rs[a] = 1.0 / math.sqrt(lam4 * (1.0 + c[a, a]) - cqa * cqa * ajj
                                    - cja * cja * aqq + 2.0 * cjq * cja * cqa)
        s = 0.0
        for a in range(n):
            al = cjq * y[a] - x[a] * aqq  # Λ0 = Λ4 Ω_ab + al·x_b + be·y_b
            be = cjq * x[a] - y[a] * ajj
            ra = rs[a]
            for b in range(a, n):
                arg = (lam4 * c[a, b] + al * x[b] + be * y[b]) * (ra * rs[b])
                buf[b] = asin(min(max(arg, -1.0), 1.0))
            row = v[a] * buf[a]
            for b in range(a + 1, n):
                row += 2.0 * v[b] * buf[b]
            s += v[a] * row
        val = sa[j] * sa[q] * (var_coef * (_4PI2 * s + _2PI * noise) / math.sqrt(lam4))
        dq[j, q] += val
        if q != j:
            dq[q, j] += val


@nb.njit(cache=True, fastmath=False)
def erf_flow(c, p, v, var_coef, noise):
    """:func:`erf_flow_scaled` with the second layer at 1 (the committee machine)."""
    return erf_flow_scaled(c, p, v, np.ones(p), var_coef, noise)


@nb.njit(cache=True, fastmath=False)
def erf_flow_scaled(c, p, v, sa, var_coef, noise):
    """(dQ/dt, dM/dt) for erf(x/√2) student and teacher, closed forms (Saad & Solla 1995).

    ``c`` is Ω = [[Q, M], [Mᵀ, P]], ``v`` the error weights, ``sa`` the second layer (the
    gradient of w_j carries sa_j: drift rows × sa_j, variance term × sa_j sa_l). Gradient term
    through
    I3(j, b, c) = (2/π) (Ω_bc (1 + Ω_jj) − Ω_jb Ω_jc) / ((1 + Ω_jj) √Λ3), variance term through
    I4 = (4/π²) arcsin(Λ0 / √(Λ1 Λ2)) / √Λ4 and J2 = (2/π) / √Λ4 (:func:`_erf_variance`).
    Memory O(p + k) besides Ω and the outputs.
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
            dm[j, m] = sa[j] * t[j, p + m]
        for q in range(p):
            dq[j, q] = sa[j] * t[j, q] + sa[q] * t[q, j]
    if var_coef == 0.0:
        return dq, dm
    _erf_variance(c, p, v, sa, var_coef, noise, dq)
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


@nb.njit(cache=True, fastmath=True, inline="always")
def _teacher_label(wt, s, x, tk, inv_sqrt_d):
    """(1/k) Σ_r σ⋆(w*_r·x/√d) for run s (the noise is added by the caller)."""
    k, d = wt.shape[1], wt.shape[2]
    y = 0.0
    for r in range(k):
        acc = 0.0
        for i in range(d):
            acc += wt[s, r, i] * x[i]
        y += _act(tk, acc * inv_sqrt_d)
    return y / k


@nb.njit(cache=True, fastmath=True, inline="always")
def _preactivations(w, s, x, inv_sqrt_d, lam):
    """λ_j = w_j·x/√d of run s into ``lam``."""
    p, d = w.shape[1], w.shape[2]
    for j in range(p):
        acc = 0.0
        for i in range(d):
            acc += w[s, j, i] * x[i]
        lam[j] = acc * inv_sqrt_d


@nb.njit(cache=True, fastmath=True, inline="always")
def _renormalise(w, s):
    """‖w_j‖² = d for every unit of run s (the spherical variant)."""
    p, d = w.shape[1], w.shape[2]
    for j in range(p):
        nrm = 0.0
        for i in range(d):
            nrm += w[s, j, i] * w[s, j, i]
        scale = math.sqrt(d / nrm)
        for i in range(d):
            w[s, j, i] *= scale


@nb.njit(cache=True, fastmath=True)
def sgd_block(w, wt, xs, noise, lr, sk, tk, spherical, alive):
    """Run ``xs.shape[1]`` SGD steps on every live run; ``w`` (S, p, d) is updated in place.

    ``xs`` (S, B, d) are the inputs, ``noise`` (S, B) the label noise √Δ ξ, ``lr`` = γ/p.
    Student/teacher activations are coded by ``sk``/``tk`` (their ``kernel_id``). A run whose
    weights stop being finite is marked dead in ``alive`` and left alone.
    """
    n_runs, p, d = w.shape
    inv_sqrt_d = 1.0 / math.sqrt(d)
    lam = np.empty(p)
    coef = np.empty(p)
    for s in range(n_runs):
        if not alive[s]:
            continue
        for step in range(xs.shape[1]):
            x = xs[s, step]
            y = _teacher_label(wt, s, x, tk, inv_sqrt_d) + noise[s, step]
            _preactivations(w, s, x, inv_sqrt_d, lam)
            yhat = 0.0
            for j in range(p):
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
                _renormalise(w, s)


@nb.njit(cache=True, fastmath=True)
def sgd_batch_block(w, wt, sa, xs, noise, lrs, lras, shrink, batch, sk, tk, spherical, alive,
                    grad):
    """Mini-batch SGD steps with a second layer and weight decay; ``w``, ``sa`` in place.

    Step i uses the inputs xs[s, i·b:(i+1)·b] (b = ``batch``) and the error e = ŷ − y,
    ŷ = (1/p) Σ_j sa_j σ(λ_j): w_j ← shrink_i w_j − lrs_i (1/b) Σ_μ e_μ sa_j σ'(λ_jμ) x_μ/√d
    (lrs_i = γ_i/p, shrink_i = 1 − γ_i ω/(p d)), sa_j ← sa_j − lras_i (1/b) Σ_μ e_μ σ(λ_jμ)
    (lras_i = γ_a,i/d). ``grad`` (p, d) is scratch.
    """
    n_runs, p, d = w.shape
    inv_sqrt_d = 1.0 / math.sqrt(d)
    lam = np.empty(p)
    ga = np.empty(p)
    for s in range(n_runs):
        if not alive[s]:
            continue
        for step in range(lrs.shape[0]):
            grad[:, :] = 0.0
            ga[:] = 0.0
            esum = 0.0
            for mu in range(step * batch, (step + 1) * batch):
                x = xs[s, mu]
                y = _teacher_label(wt, s, x, tk, inv_sqrt_d) + noise[s, mu]
                _preactivations(w, s, x, inv_sqrt_d, lam)
                yhat = 0.0
                for j in range(p):
                    yhat += sa[s, j] * _act(sk, lam[j])
                err = yhat / p - y
                esum += abs(err)
                for j in range(p):
                    ga[j] += err * _act(sk, lam[j])
                    cj = err * sa[s, j] * _dact(sk, lam[j])
                    for i in range(d):
                        grad[j, i] += cj * x[i]
            if not math.isfinite(esum):
                alive[s] = False
                break
            cw = lrs[step] * inv_sqrt_d / batch
            for j in range(p):
                for i in range(d):
                    w[s, j, i] = shrink[step] * w[s, j, i] - cw * grad[j, i]
            for j in range(p):
                sa[s, j] -= lras[step] * ga[j] / batch
            if spherical:
                _renormalise(w, s)

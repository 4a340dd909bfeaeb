"""Gaussian orthant probabilities and truncated moments; the exact relu SGD-variance term.

Conventions: x ~ N(0, Σ) in dimension m ≤ 4, S a set of coordinates, 1_S = Π_{i∈S} 1{x_i > 0}.

- :func:`orthant` — P(x > 0). m ≤ 3 in closed form (Sheppard): 1/2, 1/4 + asin ρ/2π and
  1/8 + Σ_{i<j} asin ρ_ij/4π. m = 4 by Plackett's identity ∂P/∂ρ_ik = φ₂(0, 0; ρ_ik)·
  P(x_j, x_l > 0 | x_i = x_k = 0) along R(t) = (1 − t)I + tR from P(I) = 1/16; with
  s = asin(tρ_ik) each of the six terms is (1/2π) ∫_0^{asin ρ_ik} P₂(c_ik(s)) ds, a bounded
  integrand (c_ik the conditional correlation of x_j, x_l under R(t)). As R(t) ⪰ (1 − t)I, a
  near-singular R only shows next to t = 1, as a change of the integrand over a width ~λ_min(R).
  So s = asin ρ_ik · u(2 − u) (widths η become √η in u) and the integral over u ∈ [0, 1] is
  globally adaptive Gauss–Kronrod 7/15 to an estimated 1e-13 (QUADPACK's estimate), from a
  start graded towards u = 1 when det R is small; the Schur complement is written so that it
  does not cancel as ρ_ik → ±1. Against 30-digit mpmath it is good to ~1e-16, also at
  1 − ρ = 1e-14.
- :func:`moment` — E[x_a x_b 1_S] for any a, b (in S or not, a = b allowed), by Stein's lemma
  twice (Tallis 1961):

      E[x_a x_b 1_S] = Σ_ab P(S) + Σ_{i ≠ i' ∈ S} Σ_bi ⟨w_a, ê_{i'|i}⟩/(2π|w_i|)
                                                 · P(x_{S∖{i,i'}} > 0 | x_i = x_i' = 0),

  where x_u = ⟨w_u, z⟩ with z ~ N(0, I) (Σ = WWᵀ) and ê_{i'|i} is the unit vector of w_i'
  orthogonal to w_i. The conditional orthant is of dimension ≤ 2, so closed.
- :func:`relu_i4` — Σ_ab v_a v_b E[θ(x_j) θ(x_l) h_a(x_a) h_b(x_b)] (p × p) for a relu
  student (σ' = θ, h = relu on students) and a relu or linear teacher, with the error weights
  v = (−1/p, …, 1/k, …) of :func:`twolayer.sgd.integrals.error_weights`. Each term is
  E[x_a x_b 1_S] with S = {j, l} ∪ {a, b if relu} once repeated units are merged
  (θ² = θ; x_a² when a = b).

Numerics. The two Stein terms of a nearly parallel pair (w_i, w_i') are O(1) and depend on the
direction in which they differ; only their sum is continuous. So they are computed from one
factor W of Σ (eigendecomposition, negative eigenvalues of rounding set to 0) by orthogonal
projections, not from Σ by Schur complements (which square the conditioning), and every w_u
gets an extra private coordinate of size √(ε Σ_uu), ε = 1e-16: this keeps distinct units at
least 1e-8 apart in angle, so rounding cannot flip those directions. The jitter moves the result
by O(ε) in general and by O(√ε) = 1e-8 at exactly singular Σ, about the accuracy to which a
float Σ defines the answer there (the integrals are Hölder-½ in Σ at alignment). A unit with
zero variance contributes 0 (relu(0) = relu'(0) = 0). Everything is compiled by Numba.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = ["moment", "orthant", "relu_i4"]

_INV_2PI = 1.0 / (2.0 * math.pi)
_JITTER = 1e-16
_TOL = 1e-13  # absolute, per Plackett term
_MAX_INTERVALS = 64
_MAX_GRADE = 16

# Gauss–Kronrod 7/15 on [−1, 1]: Kronrod nodes (≥ 0), their weights, and the Gauss weights
# of the odd-indexed nodes (the 7-point Gauss rule).
_XK = np.array([0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                0.207784955007898467600689403773245, 0.0])
_WK = np.array([0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                0.204432940075298892414161999234649, 0.209482141084727828012999174891714])
_WG = np.array([0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                0.381830050505118944950369775488975, 0.417959183673469387755102040816327])


# --------------------------------------------------------------------------- orthants


@nb.njit(cache=True)
def _asin(r):
    return math.asin(min(1.0, max(-1.0, r)))


@nb.njit(cache=True)
def _plackett_integrand(s, rho, rji, rjk, rli, rlk, rjl):
    """P(x_j, x_l > 0 | x_i = x_k = 0) under R(t), t = sin(s)/ρ_ik (so tρ_ik = sin s).

    The Schur complement Bᵀ A⁻¹ B, A = [[1, r], [r, 1]], is written with the differences
    ρ_ji ∓ ρ_jk over det A = cos² s and the sums over 1 ± r, so that it does not cancel when
    ρ_ik → ±1 (x_i and x_k nearly (anti)parallel).
    """
    r = math.sin(s)
    t = r / rho
    det = math.cos(s) ** 2
    sg = 1.0 if r >= 0.0 else -1.0  # (1 − |r|)/det = 1/(1 + |r|)
    dj, dl = rji - sg * rjk, rli - sg * rlk
    soft = sg / (1.0 + abs(r))
    cjj = 1.0 - t * t * (dj * dj / det + 2.0 * soft * rji * rjk)
    cll = 1.0 - t * t * (dl * dl / det + 2.0 * soft * rli * rlk)
    cjl = t * rjl - t * t * (dj * dl / det + soft * (rji * rlk + rjk * rli))
    den = math.sqrt(max(cjj, 0.0) * max(cll, 0.0))
    if den <= 1e-300:
        return 0.25
    return 0.25 + _INV_2PI * _asin(cjl / den)


@nb.njit(cache=True)
def _integrand_u(u, upper, rho, rji, rjk, rli, rlk, rjl):
    """The Plackett integrand in u ∈ [0, 1], s = upper·u(2 − u): s-features of width η at the
    upper end (where R(t) reaches a near-singular R) become u-features of width √η."""
    s = upper * u * (2.0 - u)
    return 2.0 * upper * (1.0 - u) * _plackett_integrand(s, rho, rji, rjk, rli, rlk, rjl)


@nb.njit(cache=True)
def _gk15(lo, hi, upper, rho, rji, rjk, rli, rlk, rjl):
    """Kronrod 15-point value on [lo, hi] and QUADPACK's error estimate (qk15): the
    Kronrod − Gauss-7 difference δ, mapped to a·min(1, (200 δ/a)^1.5), a = ∫|f − mean|."""
    half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
    f = np.empty(15)
    f[7] = _integrand_u(mid, upper, rho, rji, rjk, rli, rlk, rjl)
    for q in range(7):
        f[q] = _integrand_u(mid - half * _XK[q], upper, rho, rji, rjk, rli, rlk, rjl)
        f[14 - q] = _integrand_u(mid + half * _XK[q], upper, rho, rji, rjk, rli, rlk, rjl)
    kron, gauss = _WK[7] * f[7], _WG[3] * f[7]
    for q in range(7):
        kron += _WK[q] * (f[q] + f[14 - q])
        if q % 2 == 1:
            gauss += _WG[q // 2] * (f[q] + f[14 - q])
    mean = 0.5 * kron
    asc = _WK[7] * abs(f[7] - mean)
    for q in range(7):
        asc += _WK[q] * (abs(f[q] - mean) + abs(f[14 - q] - mean))
    err = abs(kron - gauss)
    if asc > 0.0 and err > 0.0:
        err = asc * min(1.0, (200.0 * err / asc) ** 1.5)
    return kron * half, err * half


@nb.njit(cache=True)
def _plackett_term(rho, rji, rjk, rli, rlk, rjl, n_grade):
    """∫_0^{asin ρ} P₂(c(s)) ds by globally adaptive Gauss–Kronrod 7/15 in u (QUADPACK's QAG
    idea): bisect the interval of largest error estimate until their sum is below _TOL.

    The start is [0, 1] cut at u = 1 − 10^-m, m = 1..n_grade: when R is nearly singular the
    integrand changes over a width ~λ_min(R) in t next to t = 1, which a single interval's
    nodes would step over without noticing.
    """
    upper = _asin(rho)
    if upper == 0.0:
        return 0.0
    los = np.empty(_MAX_INTERVALS)
    his = np.empty(_MAX_INTERVALS)
    vals = np.empty(_MAX_INTERVALS)
    errs = np.empty(_MAX_INTERVALS)
    lo = 0.0
    for n in range(n_grade + 1):
        hi = 1.0 - 10.0 ** -(n + 1) if n < n_grade else 1.0
        los[n], his[n] = lo, hi
        vals[n], errs[n] = _gk15(lo, hi, upper, rho, rji, rjk, rli, rlk, rjl)
        lo = hi
    n = n_grade + 1
    while n < _MAX_INTERVALS and errs[:n].sum() > _TOL:
        worst = np.argmax(errs[:n])
        lo, hi = los[worst], his[worst]
        mid = 0.5 * (lo + hi)
        his[worst] = mid
        vals[worst], errs[worst] = _gk15(lo, mid, upper, rho, rji, rjk, rli, rlk, rjl)
        los[n], his[n] = mid, hi
        vals[n], errs[n] = _gk15(mid, hi, upper, rho, rji, rjk, rli, rlk, rjl)
        n += 1
    return vals[:n].sum()


@nb.njit(cache=True)
def _det4(r):
    """Determinant of a 4 × 4 matrix by elimination with partial pivoting."""
    a = r.copy()
    det = 1.0
    for c in range(4):
        piv = c
        for q in range(c + 1, 4):
            if abs(a[q, c]) > abs(a[piv, c]):
                piv = q
        if a[piv, c] == 0.0:
            return 0.0
        if piv != c:
            for q in range(4):
                a[c, q], a[piv, q] = a[piv, q], a[c, q]
            det = -det
        det *= a[c, c]
        for q in range(c + 1, 4):
            f = a[q, c] / a[c, c]
            for w in range(c, 4):
                a[q, w] -= f * a[c, w]
    return det


@nb.njit(cache=True)
def _orthant4(r):
    """P(x > 0) for a 4 × 4 correlation matrix r (Plackett's reduction, see the docstring)."""
    # λ_min(R) ≥ det R / 2.4: a feature of width λ_min in t lies at 1 − u ~ √λ_min; below
    # det = 1e-2 the start is graded down to 1 − u = 0.1 √det
    det = _det4(r)
    n_grade = 0
    if det < 1e-2:
        n_grade = min(_MAX_GRADE, math.ceil(1.0 - 0.5 * math.log10(max(det, 1e-30))))
    total = 1.0 / 16.0
    for i in range(4):
        for k in range(i + 1, 4):
            j = 0
            while j == i or j == k:
                j += 1
            l = 6 - i - k - j  # noqa: E741
            rho = r[i, k]
            if rho != 0.0:
                total += _INV_2PI * _plackett_term(rho, r[j, i], r[j, k], r[l, i], r[l, k],
                                                   r[j, l], n_grade)
    return total


@nb.njit(cache=True)
def _orthant_corr(r, idx, m):
    """P(x_u > 0 for u in idx[:m]) for a correlation matrix r, m ≤ 4."""
    if m == 0:
        return 1.0
    if m == 1:
        return 0.5
    if m == 2:
        return 0.25 + _INV_2PI * _asin(r[idx[0], idx[1]])
    if m == 3:
        s = _asin(r[idx[0], idx[1]]) + _asin(r[idx[0], idx[2]]) + _asin(r[idx[1], idx[2]])
        return 0.125 + 0.5 * _INV_2PI * s
    sub = np.empty((4, 4))
    for u in range(4):
        for w in range(4):
            sub[u, w] = r[idx[u], idx[w]]
    return _orthant4(sub)


# --------------------------------------------------------------------------- moments


@nb.njit(cache=True)
def _factor(cov):
    """Rows w_u with ⟨w_u, w_v⟩ = Σ_uv (+ ε Σ_uu on the diagonal): m × 2m, see Numerics."""
    m = cov.shape[0]
    lam, vec = np.linalg.eigh(cov)
    w = np.zeros((m, 2 * m))
    for u in range(m):
        for q in range(m):
            w[u, q] = vec[u, q] * math.sqrt(max(lam[q], 0.0))
        w[u, m + u] = math.sqrt(_JITTER * cov[u, u])
    return w


@nb.njit(cache=True)
def _dot(x, y):
    s = 0.0
    for q in range(x.size):
        s += x[q] * y[q]
    return s


@nb.njit(cache=True)
def _project_out(x, e):
    """x minus its component along the unit vector e, twice (Gram–Schmidt, reorthogonalised)."""
    y = x.copy()
    for _ in range(2):
        c = _dot(y, e)
        for q in range(y.size):
            y[q] -= c * e[q]
    return y


@nb.njit(cache=True)
def _moment_rows(w, pos, n_pos, a, b):
    """E[x_a x_b 1_S] for x_u = ⟨w_u, z⟩, S = pos[:n_pos] (distinct rows), Stein twice."""
    m = w.shape[0]
    gram = w @ w.T
    corr = np.empty((m, m))
    for u in range(m):
        for v in range(m):
            corr[u, v] = gram[u, v] / math.sqrt(gram[u, u] * gram[v, v])
    total = gram[a, b] * _orthant_corr(corr, pos, n_pos)
    rest = np.empty(2, dtype=np.int64)
    for ii in range(n_pos):
        i = pos[ii]
        if gram[b, i] == 0.0:
            continue
        norm_i = math.sqrt(gram[i, i])
        e1 = w[i] / norm_i
        for jj in range(n_pos):
            if jj == ii:
                continue
            i2 = pos[jj]
            r = _project_out(w[i2], e1)
            e2 = r / math.sqrt(_dot(r, r))
            coef = gram[b, i] * _dot(w[a], e2) * _INV_2PI / norm_i
            n_rest = 0
            for kk in range(n_pos):
                if kk != ii and kk != jj:
                    rest[n_rest] = pos[kk]
                    n_rest += 1
            if n_rest == 0:
                prob = 1.0
            elif n_rest == 1:
                prob = 0.5
            else:
                q1 = _project_out(_project_out(w[rest[0]], e1), e2)
                q2 = _project_out(_project_out(w[rest[1]], e1), e2)
                c = _dot(q1, q2) / math.sqrt(_dot(q1, q1) * _dot(q2, q2))
                prob = 0.25 + _INV_2PI * _asin(c)
            total += coef * prob
    return total


@nb.njit(cache=True)
def _moment_cov(cov, pos, n_pos, a, b):
    """E[x_a x_b 1_S] for x ~ N(0, cov); 0 when a unit involved has zero variance."""
    if not np.all(np.isfinite(cov)):
        return np.nan
    for u in range(cov.shape[0]):
        if cov[u, u] <= 0.0:
            return 0.0
    return _moment_rows(_factor(cov), pos, n_pos, a, b)


@nb.njit(cache=True)
def _slot(units, m, u):
    for q in range(m):
        if units[q] == u:
            return q
    return -1


@nb.njit(cache=True)
def _relu_i4_kernel(omega, p, v, relu_teacher):
    n = omega.shape[0]
    out = np.zeros((p, p))
    quad = np.empty(4, dtype=np.int64)
    units = np.empty(4, dtype=np.int64)
    slots = np.empty(4, dtype=np.int64)
    pos = np.empty(4, dtype=np.int64)
    for j in range(p):
        for l in range(j, p):  # noqa: E741
            acc = 0.0
            for a in range(n):
                for b in range(a, n):
                    quad[0], quad[1], quad[2], quad[3] = j, l, a, b
                    m = 0
                    for q in range(4):  # merge repeated units: one variable each
                        s = _slot(units, m, quad[q])
                        if s < 0:
                            units[m] = quad[q]
                            s = m
                            m += 1
                        slots[q] = s
                    n_pos = 0
                    for q in range(4):  # S: σ'(x_j), σ'(x_l), and relu units among a, b
                        inside = q < 2 or quad[q] < p or relu_teacher
                        if inside and _slot(pos, n_pos, slots[q]) < 0:
                            pos[n_pos] = slots[q]
                            n_pos += 1
                    cov = np.empty((m, m))
                    for u in range(m):
                        for w in range(m):
                            cov[u, w] = omega[units[u], units[w]]
                    weight = v[a] * v[b] * (1.0 if a == b else 2.0)
                    acc += weight * _moment_cov(cov, pos, n_pos, slots[2], slots[3])
            out[j, l] = acc
            out[l, j] = acc
    return out


# --------------------------------------------------------------------------- public


def _as_cov(cov) -> np.ndarray:
    cov = np.ascontiguousarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or not 1 <= cov.shape[0] <= 4:
        raise ValueError(f"need a square covariance of size 1 to 4; got shape {cov.shape}")
    return cov


def orthant(cov) -> float:
    """P(x > 0) for x ~ N(0, cov), cov of size m ≤ 4 (only the correlations matter)."""
    cov = _as_cov(cov)
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    m = cov.shape[0]
    return float(_orthant_corr(corr, np.arange(m, dtype=np.int64), m))


def moment(cov, positive, a: int, b: int) -> float:
    """E[x_a x_b Π_{i ∈ positive} 1{x_i > 0}] for x ~ N(0, cov), cov of size m ≤ 4.

    ``positive`` lists distinct coordinates; a and b may be in it or not, and equal.
    """
    cov = _as_cov(cov)
    pos = np.asarray(positive, dtype=np.int64)
    if np.unique(pos).size != pos.size or np.any((pos < 0) | (pos >= cov.shape[0])):
        raise ValueError(f"positive must list distinct coordinates of x; got {positive}")
    padded = np.zeros(4, dtype=np.int64)
    padded[: pos.size] = pos
    return float(_moment_cov(cov, padded, pos.size, int(a), int(b)))


def relu_i4(omega, p: int, v, relu_teacher: bool) -> np.ndarray:
    """Σ_ab v_a v_b E[θ(x_j) θ(x_l) h_a(x_a) h_b(x_b)] (p × p), relu student.

    ``omega`` is Ω = [[Q, M], [Mᵀ, P]] (students first), ``v`` the error weights; the teacher
    is relu (``relu_teacher``) or linear.
    """
    return _relu_i4_kernel(np.ascontiguousarray(omega, dtype=np.float64), int(p),
                           np.ascontiguousarray(v, dtype=np.float64), bool(relu_teacher))

"""The SGD-variance term for smooth activations without closed forms (tanh, sigmoid, sin, …).

S[j, l] = Σ_ab v_a v_b E[σ'(x_j) σ'(x_l) h_a(x_a) h_b(x_b)] for x ~ N(0, Ω), students j, l < p,
h_a = σ on students and σ⋆ on teachers, v the error weights (−1/p, …, 1/k, …).

Sequential conditioning. Each term is written in the order (x_j, x_l, x_a, x_b) as
x = L z with L lower triangular (Cholesky, a zero pivot where a unit is a copy of, or perfectly
correlated with, earlier ones: that axis then has a single node), z ~ N(0, I₄):

- (z_1, z_2) carry σ'(x_j) σ'(x_l), on one grid shared by every (a, b) of the pair (j, l);
- z_3 carries h_a given (x_j, x_l), on one grid shared by every b;
- z_4 goes into a 1-D table: given (x_j, x_l, x_a), x_b has the mean y = Σ_{c≤3} L_bc z_c and
  the std L_bb, and E[h_b | ·] = m_b(y) = E[h_b(y + L_bb ζ)] is tabulated on a uniform y-grid
  (spacing ≤ 1/32) and interpolated (4-point Lagrange).

An a in {j, l} has no z_3 integral, and of a pair (a, b) with one unit in {j, l} that one is
put in the place of a. Outer nodes where w σ'σ' is below 1e-12 of its largest value are dropped
(σ' decays for tanh, sigmoid, softplus). The cost is one z_1 z_2 z_3 grid and one m_b table per
(j ≤ l, a ≤ b): O(p² n² N³), n = p + k, with N = 25 nodes per axis for Ω ≲ 0.34 and
≈ 2·radius·√Ω_max/h_x = 40 √Ω_max above.

Every 1-D rule is the trapezoid rule on N(0, 1) (:func:`twolayer.gaussian.trapezoid_rule`), with
the spacing of axis c chosen in x-units: h_c = min(h_z, h_x / max_r |L_rc|). It converges
exponentially in 1/h_x for integrands analytic in a strip around the real axis (tanh and its
derivatives: |Im x| < π/2), whatever the variance, where Gauss–Hermite needs n ∝ Ω. The
activations are sampled once per call on a uniform x-grid (spacing 1/128, 4-point Lagrange,
relative interpolation error ~1e-10) so the kernel can be compiled by Numba.

Accuracy (h_x = 0.35, h_z = 0.6, radius 7): ~2e-6 of the scale of S in the worst 1-D case
(sech⁴ tanh², the diagonal term of tanh); against an independent dense quadrature, ≤ 3e-7 of
the scale for every pair of tanh, sigmoid, softplus, sin with diag Ω from 0.05 to 5 and
correlations up to 0.999 (tests).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from twolayer.activations import Activation
from twolayer.gaussian import (
    TRAPEZOID_H_X,
    TRAPEZOID_H_Z,
    TRAPEZOID_RADIUS,
    lagrange_weights,
    trapezoid_rule,
)

__all__ = ["variance_sum"]

_DX = 1.0 / 128  # activation table
_DY = 1.0 / 32  # table of m_b
_ZERO = 1e-12  # a conditional variance below _ZERO · Ω_rr is a zero pivot
_PRUNE = 1e-12  # outer nodes with weight w σ'σ' < _PRUNE · max are dropped (error < 1e-8)

# The shared rules of twolayer.gaussian, compiled. Numba's disk cache of a kernel below does not
# notice an edit of those functions in gaussian.py: after one, delete this folder's
# __pycache__/smooth.*.nbi (or touch this file).
_rule = nb.njit(cache=True)(trapezoid_rule)  # (scale, h_x, h_z, radius) -> nodes, weights
_lagrange = nb.njit(cache=True)(lagrange_weights)  # t -> 4 weights


def variance_sum(student: Activation, teacher: Activation, omega: np.ndarray, p: int,
                 v: np.ndarray) -> np.ndarray:
    """S[j, l] = Σ_ab v_a v_b E[σ'(x_j) σ'(x_l) h_a(x_a) h_b(x_b)] (p × p), x ~ N(0, Ω)."""
    omega = np.ascontiguousarray(omega, dtype=np.float64)
    # every node of every rule has |x_r| ≤ (radius + h_z) · ‖L_r‖₁ ≤ 2 (radius + h_z) √Ω_rr
    half = 2.0 * (TRAPEZOID_RADIUS + TRAPEZOID_H_Z) * math.sqrt(max(np.max(np.diag(omega)),
                                                                   1e-300)) + 0.5
    x = np.arange(-half, half + _DX, _DX)
    table = np.stack([student.deriv(x), student.fn(x), teacher.fn(x)]).astype(np.float64)
    return _variance_sum(omega, p, np.asarray(v, dtype=np.float64), table, x[0], _DX,
                         TRAPEZOID_H_X, TRAPEZOID_H_Z, TRAPEZOID_RADIUS)


@nb.njit(cache=True)
def _interp(tab, row, x0, inv_dx, x):
    """4-point Lagrange interpolation of tab[row] (uniform grid from x0) at x.

    The polynomial of :func:`twolayer.gaussian.lagrange_weights`, written with one division
    (rounding differs from Σ c_m f_m in the last bit; the kernels' numbers are kept as they were).
    """
    u = (x - x0) * inv_dx
    i = math.floor(u)
    i = min(max(i, 1), tab.shape[1] - 3)
    t = u - i
    tm, t1, t2 = t + 1.0, t - 1.0, t - 2.0
    return (-t * t1 * t2 * tab[row, i - 1] + 3.0 * tm * t1 * t2 * tab[row, i]
            - 3.0 * tm * t * t2 * tab[row, i + 1] + tm * t * t1 * tab[row, i + 2]) / 6.0


@nb.njit(cache=True)
def _pivot(c, r, scale2):
    """Column of the Cholesky factor for pivot r of the residual covariance c (zero pivot → 0)."""
    col = np.zeros(c.shape[0])
    if c[r, r] > _ZERO * scale2:
        col[:] = c[:, r] / math.sqrt(c[r, r])
    return col


@nb.njit(cache=True)
def _variance_sum(omega, p, v, tab, x0, dx, h_x, h_z, radius):
    n = omega.shape[0]
    inv_dx = 1.0 / dx
    unit_row = np.empty(n, dtype=np.int64)
    for r in range(n):
        unit_row[r] = 1 if r < p else 2
    out = np.zeros((p, p))
    for j in range(p):
        for q in range(j, p):
            c = omega.copy()
            col1 = _pivot(c, j, omega[j, j])
            for r in range(n):
                for s in range(n):
                    c[r, s] -= col1[r] * col1[s]
            col2 = _pivot(c, q, omega[q, q])
            for r in range(n):
                for s in range(n):
                    c[r, s] -= col2[r] * col2[s]
            z1, w1 = _rule(np.max(np.abs(col1)), h_x, h_z, radius)
            z2, w2 = _rule(np.max(np.abs(col2)), h_x, h_z, radius)
            n1, n2 = z1.size, z2.size
            weight = np.empty(n1 * n2)  # w σ'(x_j) σ'(x_q) on the outer grid
            for i1 in range(n1):
                for i2 in range(n2):
                    weight[i1 * n2 + i2] = w1[i1] * w2[i2] * _interp(
                        tab, 0, x0, inv_dx, col1[j] * z1[i1] + col2[j] * z2[i2]) * _interp(
                        tab, 0, x0, inv_dx, col1[q] * z1[i1] + col2[q] * z2[i2])
            # keep the nodes that matter (σ' decays for tanh, sigmoid, ...)
            keep = np.flatnonzero(np.abs(weight) > _PRUNE * np.max(np.abs(weight)))
            no = keep.size
            weight = weight[keep]
            mean = np.empty((n, no))  # E[x_r | x_j, x_q] on the kept outer nodes
            for o in range(no):
                i1, i2 = divmod(keep[o], n2)
                for r in range(n):
                    mean[r, o] = col1[r] * z1[i1] + col2[r] * z2[i2]
            total = 0.0
            for a in range(n):
                a_in = a == j or a == q
                ca = c.copy()
                col3 = _pivot(ca, a, omega[a, a])
                for r in range(n):
                    for s in range(n):
                        ca[r, s] -= col3[r] * col3[s]
                z3, w3 = _rule(np.max(np.abs(col3)), h_x, h_z, radius)
                n3 = z3.size
                ha = np.empty((no, n3))  # w σ'σ' h_a on the grid of (z_1, z_2, z_3)
                for o in range(no):
                    for i3 in range(n3):
                        ha[o, i3] = weight[o] * w3[i3] * _interp(
                            tab, unit_row[a], x0, inv_dx, mean[a, o] + col3[a] * z3[i3])
                for b in range(n):
                    b_in = b == j or b == q
                    if (b_in and not a_in) or (b_in == a_in and b < a):
                        continue
                    coef = v[a] * v[b] * (1.0 if a == b else 2.0)
                    total += coef * _pair_term(ha, mean[b], col3[b], z3, ca[b, b], omega[b, b],
                                               tab, unit_row[b], x0, inv_dx, h_x, h_z, radius)
            out[j, q] = total
            out[q, j] = total
    return out


@nb.njit(cache=True)
def _smoothed(tab, row, x0, dx, sd, y0, dy, size, h_x, h_z, radius):
    """m(y) = E[h(y + sd·ζ)] on the grid y0 + i·dy (i < size), h = tab[row], by the trapezoid rule.

    The node spacing in x is a multiple r·dx of the table's, so the 4-point weights are shared
    by all nodes of one y: four strided sums per grid point.
    """
    m = np.empty(size)
    r = math.floor(min(h_x, sd * h_z) / dx)
    inv_dx = 1.0 / dx
    if r == 0:  # sd < dx/h_z: too little smoothing for the strided rule
        z, w = _rule(sd, h_x, h_z, radius)
        for i in range(size):
            acc = 0.0
            for k in range(z.size):
                acc += w[k] * _interp(tab, row, x0, inv_dx, y0 + i * dy + sd * z[k])
            m[i] = acc
        return m
    h = r * dx / sd
    kmax = math.ceil(radius / h)
    w = np.empty(2 * kmax + 1)
    for k in range(-kmax, kmax + 1):
        w[k + kmax] = math.exp(-0.5 * (k * h) ** 2)
    w /= w.sum()
    last = tab.shape[1] - 1
    for i in range(size):
        u = (y0 + i * dy - x0) * inv_dx
        i0 = math.floor(u)
        lo, hi = i0 - 1 - kmax * r, i0 + 2 + kmax * r
        if lo < 0 or hi > last:
            acc = 0.0
            for k in range(-kmax, kmax + 1):
                acc += w[k + kmax] * _interp(tab, row, x0, inv_dx, y0 + i * dy + k * r * dx)
            m[i] = acc
            continue
        c0, c1, c2, c3 = _lagrange(u - i0)
        s0 = s1 = s2 = s3 = 0.0
        for k in range(2 * kmax + 1):
            ix = lo + k * r
            s0 += w[k] * tab[row, ix]
            s1 += w[k] * tab[row, ix + 1]
            s2 += w[k] * tab[row, ix + 2]
            s3 += w[k] * tab[row, ix + 3]
        m[i] = c0 * s0 + c1 * s1 + c2 * s2 + c3 * s3
    return m


@nb.njit(cache=True)
def _pair_term(ha, mean_b, c3, z3, var_b, omega_bb, tab, row, x0, inv_dx, h_x, h_z, radius):
    """Σ_{o,i} ha[o, i] m_b(mean_b[o] + c3 z3[i]) with m_b(y) = E[h_b(y + √var_b ζ)].

    m_b is tabulated with a spacing dy that divides c3·(z3 spacing), so along z3 the 4-point
    weights stay the same and the table index moves by a whole step.
    """
    no, n3 = ha.shape
    acc = 0.0
    if var_b <= _ZERO * omega_bb:  # x_b is fixed by (x_j, x_q, x_a): h_b itself
        for o in range(no):
            for i3 in range(n3):
                acc += ha[o, i3] * _interp(tab, row, x0, inv_dx, mean_b[o] + c3 * z3[i3])
        return acc
    step = 0
    dy = _DY
    if n3 > 1 and c3 != 0.0:
        along = c3 * (z3[1] - z3[0])  # change of the mean of x_b from one z3 node to the next
        step = math.ceil(abs(along) / _DY)
        dy = abs(along) / step
        if along < 0:
            step = -step
    y_max = np.max(np.abs(mean_b)) + abs(c3) * np.max(np.abs(z3)) + 3 * dy
    size = math.ceil(2.0 * y_max / dy) + 1
    y0 = -0.5 * (size - 1) * dy
    m = _smoothed(tab, row, x0, 1.0 / inv_dx, math.sqrt(var_b), y0, dy, size, h_x, h_z, radius)
    for o in range(no):
        u = (mean_b[o] + c3 * z3[0] - y0) / dy
        i0 = math.floor(u)
        c0, c1, c2, c3w = _lagrange(u - i0)
        s = 0.0
        for i3 in range(n3):
            ix = i0 + i3 * step
            s += ha[o, i3] * (c0 * m[ix - 1] + c1 * m[ix] + c2 * m[ix + 1] + c3w * m[ix + 2])
        acc += s
    return acc

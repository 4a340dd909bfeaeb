"""Gaussian integrals of the committee-machine ODEs, contracted as the ODEs use them.

The local fields x = (λ_1..λ_p, ν_1..ν_k) are N(0, Ω) with Ω = [[Q, M], [Mᵀ, P]] (students
first). Unit a has activation h_a = σ (student, a < p) or σ⋆ (teacher). The noiseless error is
e = y* − ŷ = Σ_a v_a h_a(x_a) with v = (−1/p, …, −1/p, 1/k, …, 1/k). The ODEs need

- I2[a, b]       = E[h_a h_b]                       (risk R = ½ vᵀ I2 v)
- I3[j, b, c]    = E[σ'(x_j) x_b h_c(x_c)]          (gradient term)
- I4[j, l, a, b] = E[σ'(x_j) σ'(x_l) h_a h_b]       (SGD-variance term)
- J2[j, l]       = E[σ'(x_j) σ'(x_l)]               (its label-noise part)

An :class:`Engine` returns the contractions directly: :meth:`Engine.risk` and
:meth:`Engine.flow`, which gives (dQ/dt, dM/dt).

I3 is reduced to pair integrals by Stein's lemma, I3[j,b,c] = Ω_bj E[σ''_j h_c] + Ω_bc E[σ'_j h'_c],
so it stays well conditioned when a student aligns with a teacher. Pair integrals use closed
forms when both activations have the same :attr:`~twolayer.activations.Activation.closed_form`
(erf, relu, linear, square: built-ins only, never a user's function registered under such a
name); 2-D Gauss–Hermite (40 nodes per axis, exact) when both are polynomial (linear, square,
he1–he4); 160 Gauss–Hermite nodes per axis when one is kinked; and otherwise (tanh, sigmoid,
softplus, sin, mixed pairs, …) the 2-D trapezoid rule in x-units of
:func:`twolayer.gaussian.trapezoid_rule` on the Cholesky factor, spaced for the largest variance
in the batch: ≤ 3e-8 relative against
nested adaptive quadrature for diag Ω from 0.05 to 5 and |ρ| up to 0.999 (tests), where 40-node
Gauss–Hermite was off by 2e-3 at Ω ~ 2 and by up to 9% at Ω ~ 5 for tanh (tanh' has poles at
±iπ/2, so Gauss–Hermite needs n ∝ Ω nodes).

The contracted I4 is closed for erf (Saad & Solla), reduces to I2 for a linear student, and uses
4-D Gauss–Hermite (10 nodes per axis, exact) when both activations are polynomial. Other smooth
activations go to :mod:`twolayer.sgd.smooth`: sequential conditioning on (x_j, x_l, x_a, x_b),
trapezoid rules in x-units, the last integral as a tabulated smoothed function; ≤ 3e-7 of the
scale against an independent dense quadrature (the former 4-D Gauss–Hermite was ~10% off at
Ω_jj ≈ 2.4, and ~5–30× slower at p = k = 8 to 2). For a relu student with a relu or linear
teacher it is exact (:mod:`twolayer.sgd.orthant`): relu = x·θ(x) and relu' = θ turn every term
into a truncated moment E[x_a x_b 1{x_S > 0}] over an orthant of dimension ≤ 4, reduced by
Stein's lemma to orthant probabilities (closed up to dimension 3, one 1-D integral in
dimension 4). Other kinked pairs have no variance term (a quadrature is ~10% wrong on the
kinks), so :meth:`Engine.variance` raises :class:`~twolayer.errors.ModelAssumptionError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from twolayer import activations
from twolayer.activations import Activation
from twolayer.errors import ModelAssumptionError
from twolayer.gaussian import hermite_rule, tensor_rule, trapezoid_rule

# Imported where they are used, so a run loads only what it needs: twolayer.sgd.orthant (relu
# variance term), twolayer.sgd.smooth (smooth variance term), twolayer.sgd._kernels (erf).

__all__ = ["Engine", "engine", "error_weights"]

_TWO_PI = 2.0 / math.pi
_NODES_2D = 40  # Gauss–Hermite per axis for two polynomial activations (exact)
_NODES_2D_KINK = 160  # per axis when a kinked activation has no closed form for the pair
# 4-D Gauss–Hermite for polynomial activations only, per axis (10⁴ nodes): exact for degree ≤ 19
# per axis (σ'σ'h_a h_b has degree ≤ 14 for he4). Smooth activations: twolayer.sgd.smooth.
_NODES_4D = 10


def error_weights(p: int, k: int, a: np.ndarray | None = None) -> np.ndarray:
    """v with e = y* − ŷ = Σ_a v_a h_a: −a_j/p on the students (a_j = 1 when ``a`` is None),
    1/k on the teachers; ``a`` of shape (..., p) gives v of shape (..., p + k)."""
    if a is None:
        return np.concatenate([np.full(p, -1.0 / p), np.full(k, 1.0 / k)])
    a = np.asarray(a, dtype=float)
    return np.concatenate([-a / p, np.full((*a.shape[:-1], k), 1.0 / k)], axis=-1)


# --------------------------------------------------------------------------- pair integrals
# Each closed form takes (caa, cbb, cab) arrays and returns, for one family f (keyed by
# Activation.closed_form):
#   "ff": E[f(a) f(b)],  "d1d1": E[f'(a) f'(b)],  "d2f": E[f''(a) f(b)].


def _erf_pairs(kind, caa, cbb, cab):
    if kind == "ff":
        return _TWO_PI * np.arcsin(np.clip(cab / np.sqrt((1 + caa) * (1 + cbb)), -1, 1))
    lam = np.sqrt(np.maximum((1 + caa) * (1 + cbb) - cab**2, 1e-300))
    if kind == "d1d1":
        return _TWO_PI / lam
    return -_TWO_PI * cab / ((1 + caa) * lam)


def _relu_pairs(kind, caa, cbb, cab):
    norm = np.sqrt(np.maximum(caa * cbb, 1e-300))
    cos = np.clip(cab / norm, -1.0, 1.0)
    theta = np.arccos(cos)
    if kind == "ff":
        return norm * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    if kind == "d1d1":
        return (np.pi - theta) / (2 * np.pi)
    # E[δ(a) relu(b)] = φ_a(0) · E[relu(b) | a = 0]
    return np.sqrt(np.maximum(caa * cbb - cab**2, 0.0)) / (2 * np.pi * np.maximum(caa, 1e-300))


def _linear_pairs(kind, caa, cbb, cab):
    return {"ff": cab, "d1d1": np.ones_like(cab), "d2f": np.zeros_like(cab)}[kind]


def _square_pairs(kind, caa, cbb, cab):
    return {"ff": caa * cbb + 2 * cab**2, "d1d1": 4 * cab, "d2f": 2 * cbb}[kind]


_CLOSED_PAIRS = {"erf": _erf_pairs, "relu": _relu_pairs, "linear": _linear_pairs,
                 "square": _square_pairs}


def _pair_rules(fa: Activation, fb: Activation, caa, cbb, cab):
    """1-D rules along z_1, z_2 for the pair integrals of fa, fb at these covariances.

    Gauss–Hermite (exact) for two polynomial activations, many Gauss–Hermite nodes for a kinked
    one, else the trapezoid rule in x-units for the largest standard deviation in the batch
    (it bounds every entry of the Cholesky factor; so a batch split in blocks that share the
    largest variance gets the same rule).
    """
    if fa.kinks or fb.kinks:
        return (hermite_rule(_NODES_2D_KINK),) * 2
    if fa.polynomial and fb.polynomial:
        return (hermite_rule(_NODES_2D),) * 2
    top = max(float(np.max(caa, initial=0.0)), float(np.max(cbb, initial=0.0)))
    return (trapezoid_rule(math.sqrt(top)),) * 2


def _pair_factor(caa, cbb, cab):
    """(sa, r, s) with x_a = sa z_1, x_b = r z_1 + s z_2 (Cholesky; sa = 0 → r = 0)."""
    sa = np.sqrt(np.maximum(caa, 0.0))
    r = np.divide(cab, sa, out=np.zeros_like(cab * sa), where=sa > 0)
    return sa, r, np.sqrt(np.maximum(cbb - r**2, 0.0))


def _pair_quad(f, g, caa, cbb, cab, rules, budget: int = 1 << 22):
    """E[f(x_a) g(x_b)] for (x_a, x_b) ~ N(0, [[caa, cab], [cab, cbb]]), element-wise.

    Runs in chunks of at most ``budget`` (pair, node, node) evaluations, so its scratch is
    bounded whatever the number of pairs (each entry is computed alone: chunking changes nothing).
    """
    (z1, w1), (z2, w2) = rules
    sa, r, s = _pair_factor(*np.broadcast_arrays(caa, cbb, cab))
    shape = sa.shape
    sa, r, s = sa.ravel(), r.ravel(), s.ravel()
    z1 = z1[:, None]
    out = np.empty(sa.size)
    step = max(1, budget // (z1.size * z2.size))
    for lo in range(0, sa.size, step):
        sl = slice(lo, lo + step)
        xb = r[sl, None, None] * z1 + s[sl, None, None] * z2
        out[sl] = ((f(sa[sl, None, None] * z1) * g(xb)) @ w2) @ w1
    return out.reshape(shape)


_FNS = {"ff": ("fn", "fn"), "d1d1": ("deriv", "deriv"), "d2f": ("deriv2", "fn")}


def _closed_pair(fa: Activation, fb: Activation):
    """The closed-form pair integrals of fa and fb (both of one family), or None."""
    return _CLOSED_PAIRS.get(fa.closed_form) if fa.closed_form == fb.closed_form else None


def _pair(kind: str, fa: Activation, fb: Activation, caa, cbb, cab):
    """Pair integral of ``kind`` between activation fa on x_a and fb on x_b (see _CLOSED_PAIRS)."""
    closed = _closed_pair(fa, fb)
    if closed is not None:
        return closed(kind, caa, cbb, cab)
    if kind == "d2f" and fa.closed_form == "relu":
        # relu'' = δ: E[δ(x_a) g(x_b)] = φ(0)/√caa · E[g(x_b) | x_a = 0], a 1-D integral.
        ca = np.maximum(caa, 1e-300)
        sd = np.sqrt(np.maximum(cbb - cab**2 / ca, 0.0))
        z, w = hermite_rule(_NODES_2D) if fb.polynomial or fb.kinks else trapezoid_rule(
            float(np.max(sd, initial=0.0)))
        return (fb.fn(sd[..., None] * z) @ w) / np.sqrt(2 * np.pi * ca)
    ga, gb = (getattr(act, attr) for act, attr in zip((fa, fb), _FNS[kind], strict=True))
    return _pair_quad(ga, gb, caa, cbb, cab, _pair_rules(fa, fb, caa, cbb, cab))


def _pairs(kind: str, rows: Activation, cols: Activation, omega, r_sl, c_sl):
    """Pair integrals between units ``r_sl`` (activation rows) and ``c_sl`` (cols); batched."""
    d = np.diagonal(omega, axis1=-2, axis2=-1)
    caa, cbb = np.broadcast_arrays(d[..., r_sl, None], d[..., None, c_sl])
    return _pair(kind, rows, cols, caa, cbb, omega[..., r_sl, c_sl])


# --------------------------------------------------------------------------- engines


@dataclass(frozen=True)
class Engine:
    """Gaussian integrals for a student activation σ and a teacher activation σ⋆.

    ``risk(omega, p)`` accepts a batch of covariances (..., p+k, p+k). ``flow(omega, p, noise,
    var_coef)`` returns (dQ/dt, dM/dt) of the ODE with the variance term scaled by
    ``var_coef`` (γ/p for SGD, 0 for gradient flow) and label noise Δ = ``noise``.
    """

    student: Activation
    teacher: Activation

    def _rows(self, kind: str, omega: np.ndarray, p: int) -> np.ndarray:
        """Pair integrals with a student (σ) in the row and any unit in the column."""
        s, t = slice(0, p), slice(p, None)
        return np.concatenate([_pairs(kind, self.student, self.student, omega, s, s),
                               _pairs(kind, self.student, self.teacher, omega, s, t)], axis=-1)

    def i2(self, omega: np.ndarray, p: int) -> np.ndarray:
        """I2[a, b] = E[h_a h_b] (batched over leading axes)."""
        top = self._rows("ff", omega, p)
        tt = _pairs("ff", self.teacher, self.teacher, omega, slice(p, None), slice(p, None))
        bottom = np.concatenate([np.swapaxes(top[..., p:], -1, -2), tt], axis=-1)
        return np.concatenate([top, bottom], axis=-2)

    def risk(self, omega: np.ndarray, p: int, a: np.ndarray | None = None) -> np.ndarray:
        """Excess risk ½ E[(y* − ŷ)²] (array over the leading axes of ``omega``); ``a`` (...,
        p): second-layer weights, ŷ = (1/p) Σ_j a_j σ(λ_j) (None: all 1)."""
        v = error_weights(p, omega.shape[-1] - p, a)
        if a is None:
            return 0.5 * np.einsum("...ab,a,b->...", self.i2(omega, p), v, v)
        return 0.5 * np.einsum("...ab,...a,...b->...", self.i2(omega, p), v, v)

    def readout(self, omega: np.ndarray, p: int, a: np.ndarray) -> np.ndarray:
        """E[(y − ŷ) σ(λ_j)] (p,) at one covariance: minus the second layer's gradient."""
        return self._rows("ff", omega, p) @ error_weights(p, omega.shape[0] - p, a)

    def risk_of_weights(self, student: np.ndarray, teacher: np.ndarray,
                        budget: int = 1 << 24, a: np.ndarray | None = None) -> float:
        """Excess risk of weights (p, d), (k, d) (second layer ``a``, None: all 1) without
        forming p × p arrays.

        Q is built and contracted ``budget`` pair-evaluations at a time (quadrature nodes
        included), so memory stays ∝ budget + p·d even at p = 10⁴. For activations of degree
        ≤ 2 the risk is that of the summaries (mean row, WᵀW/p): O(p·d²).
        """
        from twolayer.sgd import quadratic

        if quadratic.applies(self.student, self.teacher):
            return quadratic.risk_of_weights(self.student, self.teacher, student, teacher)
        p, d = student.shape
        k = teacher.shape[0]
        qd = np.einsum("jd,jd->j", student, student) / d
        P = teacher @ teacher.T / d
        pd = np.diag(P)
        st = _pair("ff", self.student, self.teacher, qd[:, None], pd[None], student @ teacher.T / d)
        tt = _pair("ff", self.teacher, self.teacher, pd[:, None], pd[None], P)
        per_pair = 1
        if _closed_pair(self.student, self.student) is None:
            qmax = np.full(1, np.max(qd))
            per_pair = math.prod(z.size for z, _ in _pair_rules(self.student, self.student,
                                                                qmax, qmax, qmax))
        rows = max(1, budget // (p * per_pair))
        ss = 0.0
        for lo in range(0, p, rows):
            hi = min(p, lo + rows)
            cab = student[lo:hi] @ student.T / d
            pairs = _pair("ff", self.student, self.student, qd[lo:hi, None], qd[None], cab)
            ss += float(np.sum(pairs) if a is None else a[lo:hi] @ pairs @ a)
        st = float(np.sum(st) if a is None else np.sum(a @ st))
        return 0.5 * (ss / p**2 - 2.0 * st / (p * k) + float(np.sum(tt)) / k**2)

    def flow(self, omega: np.ndarray, p: int, noise: float, var_coef: float,
             a: np.ndarray | None = None):
        """(dQ/dt, dM/dt) at ``omega`` (one covariance, shape (p+k, p+k)).

        ``a`` (p,): second-layer weights (None: all 1); the gradient of w_j carries a_j, so
        dM_j· and the drift of dQ_jl gain a_j (a_l), the variance term a_j a_l.
        """
        v = error_weights(p, omega.shape[0] - p, a)
        # Stein: I3[j,b,c] = Ω_bj A[j,c] + Ω_bc B[j,c], A = E[σ''_j h_c], B = E[σ'_j h'_c].
        a2 = self._rows("d2f", omega, p)
        b = self._rows("d1d1", omega, p)
        t = omega[:, :p].T * (a2 @ v)[:, None] + (b * v) @ omega
        if a is not None:
            t = a[:, None] * t
        dq = t[:, :p] + t[:, :p].T
        if var_coef:
            var = self.variance(omega, p, noise, a)
            dq = dq + var_coef * (var if a is None else np.outer(a, a) * var)
        return dq, t[:, p:]

    def variance(self, omega: np.ndarray, p: int, noise: float,
                 a: np.ndarray | None = None) -> np.ndarray:
        """Σ_ab v_a v_b I4[j,l,a,b] + Δ J2[j,l] (p × p), v the error weights of ``a``."""
        v = error_weights(p, omega.shape[0] - p, a)
        j2 = _pairs("d1d1", self.student, self.student, omega, slice(0, p), slice(0, p))
        s_form, t_form = self.student.closed_form, self.teacher.closed_form
        if s_form == "linear":
            quad = np.full((p, p), v @ self.i2(omega, p) @ v)  # σ' = 1: I4 = I2
        elif s_form == "relu" and t_form in ("relu", "linear"):
            from twolayer.sgd import orthant

            quad = orthant.relu_i4(omega, p, v, relu_teacher=t_form == "relu")
        elif self.student.kinks or self.teacher.kinks:
            raise ModelAssumptionError(
                "the SGD-variance term (γ/p)·E[e² σ'σ'] is exact for kinked activations only "
                "with a relu student and a relu or linear teacher; not for "
                f"{self.student.name}/{self.teacher.name}. Use gradient flow (variance off) "
                "or a smooth activation"
            )
        elif self.student.polynomial and self.teacher.polynomial:
            quad = _i4_contracted_quad(self, omega, p, v)
        else:
            from twolayer.sgd import smooth

            quad = smooth.variance_sum(self.student, self.teacher, omega, p, v)
        return quad + noise * j2


@cache
def _rule_4d(n: int):
    return tensor_rule([hermite_rule(n)] * 4)  # nodes (N, 4), weights (N,)


def _i4_contracted_quad(eng: Engine, omega, p, v, chunk: int = 256):
    """Σ_ab v_a v_b E[σ'_j σ'_l h_a h_b] by 4-D Gauss–Hermite, using j ≤ l and a ≤ b.

    For polynomial activations only (exact there); smooth ones go to :mod:`twolayer.sgd.smooth`.
    Streamed: for each j the (l ≥ j, a ≤ b) quadruples are made ``chunk`` at a time, so the
    scratch is O(p + k)² index entries plus a chunk of (chunk, 10⁴, 4) nodes.
    """
    n = omega.shape[0]
    nodes, w = _rule_4d(_NODES_4D)
    aa, bb = np.triu_indices(n)
    coef_ab = v[aa] * v[bb] * np.where(aa == bb, 1.0, 2.0)
    ds = eng.student.deriv
    s = np.zeros((p, p))
    for j in range(p):
        # quadruple q ↦ (l, a, b) = (j + q // n_ab, aa[q % n_ab], bb[q % n_ab])
        total = (p - j) * aa.size
        acc = np.zeros(p - j)
        for lo in range(0, total, chunk):
            q = np.arange(lo, min(total, lo + chunk))
            lq, ab = q // aa.size, q % aa.size
            ix = np.stack([np.full(q.size, j), j + lq, aa[ab], bb[ab]], axis=-1)
            cov = omega[ix[:, :, None], ix[:, None, :]]  # (T, 4, 4)
            lam, vec = np.linalg.eigh(cov)
            root = vec * np.sqrt(np.maximum(lam, 0.0))[:, None, :]
            x = np.einsum("tij,nj->tni", root, nodes)  # (T, N, 4)
            prod = ds(x[..., 0]) * ds(x[..., 1])
            for slot in (2, 3):
                xs = x[..., slot]
                is_student = (ix[:, slot] < p)[:, None]
                prod = prod * np.where(is_student, eng.student.fn(xs), eng.teacher.fn(xs))
            np.add.at(acc, lq, (prod @ w) * coef_ab[ab])
        s[j, j:] = acc
    return s + np.triu(s, 1).T


@cache
def _erf_flow():
    """The compiled erf right-hand side (Numba is imported and the kernel loaded on first use)."""
    from twolayer.sgd._kernels import erf_flow_scaled

    return erf_flow_scaled


@cache
def _erf_weights(p: int, k: int) -> np.ndarray:
    """error_weights(p, k), made once per shape: the kernel only reads it."""
    return error_weights(p, k)


@cache
def _ones(p: int) -> np.ndarray:
    return np.ones(p)


@dataclass(frozen=True)
class ErfEngine(Engine):
    """erf(x/√2) student and teacher: every integral in closed form, RHS compiled by Numba."""

    def flow(self, omega, p, noise, var_coef, a=None):
        k = omega.shape[0] - p
        v, a = (_erf_weights(p, k), _ones(p)) if a is None else (
            error_weights(p, k, a), np.ascontiguousarray(a, dtype=np.float64))
        from twolayer.sgd._kernels import PARALLEL_LOCK

        with PARALLEL_LOCK:  # the variance term runs on every core
            return _erf_flow()(np.ascontiguousarray(omega, dtype=np.float64), p, v, a,
                               float(var_coef), float(noise))


def engine(student: str | Activation, teacher: str | Activation) -> Engine:
    """The integral engine for this pair of activations (closed forms where they exist)."""
    s, t = activations.get(student), activations.get(teacher)
    for act in (s, t):
        if act.kinks and act.closed_form not in _CLOSED_PAIRS:
            raise ModelAssumptionError(
                f"the SGD ODE needs E[σ''·h] in closed form for the kinked activation "
                f"{act.name!r}; register a smooth version (deriv2 defined everywhere)"
            )
        if act.deriv2 is None:
            raise ModelAssumptionError(
                f"activation {act.name!r} has no second derivative; the SGD ODE needs it"
            )
    if s.closed_form == t.closed_form == "erf":
        return ErfEngine(s, t)
    return Engine(s, t)

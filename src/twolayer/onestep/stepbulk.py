"""The d = ∞ bulk of the first layer after giant steps, as it is (deterministic equivalents).

The spiked surrogate of :mod:`twolayer.onestep.theory` replaces the bulk of W by √c·W0: a
Marchenko–Pastur spectrum, the spike's bulk projections spread evenly, the teacher's in proportion
to the eigenvalue. Past η̃²/α0 ≈ 1 it is measurably off (tanh/tanh α0 = 0.5, η̃ = 2: −6%;
relu/tanh α0 = η̃ = 2: +6%; three steps of η̃ = 3: −7 to −11%), because each step's noise part
lives in the span of its n_t step samples and the part of the step linear in the bulk is a random
matrix too. Here that structure is kept.

Model (constant second layer). Before step t every row is the common spike plus a bulk row w_j;
with κ = ĝ_{t−1}·x, λ = rκ + h, h = w_j·x, the step's σ'(λ) = ν1(κ) + ν2(κ) h + φ (φ ⊥ 1, h
given κ; ν1 = E σ'(λ), ν2 = E σ''(λ), v(κ) = E σ'(λ)² − ν1² − c ν2²) and ρ = y − μ0(κ), as in
:func:`~twolayer.onestep.spectrum.step_maps`. The ν1 term moves the spike; the rest is

    w_j ← A_t w_j + (η̃_t/n_t) Σ_μ ρ_μ φ_jμ x_μ,    A_t = I + (1/n_t) Σ_μ η̃_t ρ_μ ν2(κ_μ) x_μx_μᵀ.

Gaussian equivalence of φ (independent, variance v(κ_μ); at one step the finite-d post-step
theory on W so drawn and on the real W1 agree within 0.5%) makes the rows, given the samples,
i.i.d. N(0, C_T) with d·C_t = K_t, K_0 = I and

    K_t = A_t K_{t−1} A_t + k_t T_t,   T_t = (1/n_t) Σ_μ ρ_μ² v(κ_μ) x_μx_μᵀ,   k_t = η̃_t²/α0_t.

Two kinds of deterministic equivalents then give every bulk average the fixed point needs
(Ω = W Π Wᵀ, Π = I − ĝĝᵀ, ĝ the last spike direction, ζ̂ ∝ Πθ):

- neurons (Silverstein): m(z) = (1/p) tr(Ω − z)⁻¹ = 1/(−z + τ), τ = (1 − (1/d) tr N)/s with
  s = βm and N = (I + sK_T)⁻¹; and, with Φ_uv = uᵀv − uᵀNv for unit u, v,
  (Wĝ)ᵀ(Ω − z)⁻¹Wĝ = Φ_gg/(1 − Φ_gg), (Wĝ)ᵀ(Ω − z)⁻¹Wζ̂ = Φ_gζ/(1 − Φ_gg) and
  (Wζ̂)ᵀ(Ω − z)⁻¹Wζ̂ = Φ_ζζ + Φ_gζ²/(1 − Φ_gg) (the projection Π by Sherman–Morrison).
- step samples, level by level (:class:`StepLevel`): N_t = (I + sK_t)⁻¹ is rational in the
  Gaussian X_t. The linear pencil u = X_t x/√n, a = A_t x, b = K_{t−1} a, q = X_t b/√n,
  x + s(A_t b + k_t T_t x) = rhs is linear in X_t; its deterministic equivalent has a 3 × 3
  operator block on the d side, rational in K_{t−1} with a single pole, and a 2 × 2 block per
  sample (a function of the sample's weights). So level t needs level t − 1 only at one point:
  (1/d) tr N_{t−1}(s') and its forms on span(θ, ξ_1, …, ξ_{t−1}), s' = δ'/α. The samples'
  coordinates along θ and ĝ_{t−1}, on which their weights depend, are deterministic rank-two
  parts solved exactly (Woodbury); the step's fresh direction ξ_t enters as a source X_⊥ᵀ(ρν1).
  At one step with μ2 = 0 this is the weighted Marchenko–Pastur law of T with a Schur
  complement in θ.

The averages are Stieltjes transforms G(z) = ∫ dμ(D)/(D − z) of four spectral measures (the
eigenvalues; and the squared projections of Wĝ, Wζ̂ and their product on the eigenvectors),
evaluated at the real z0 = −(λ + V̂2)/V̂1 < 0 where the fixed point needs them, with G' by a
complex step: no discretised spectrum, no random matrix. Without the step's randomness they
are the surrogate's Marchenko–Pastur transforms exactly (tested).

Checked: one level and two levels against the d × d matrices of drawn steps (within 0.7% at
d = 2000; two levels unbiased over 6 draws at d = 1500), m(z) against the real W1 within 0.3%,
the test errors against simulation in the one-step model's documentation. Not covered: a
Gaussian second layer (every neuron its own spike; use simulation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.polynomial.legendre import leggauss

from twolayer import activations, gaussian
from twolayer.errors import ModelAssumptionError
from twolayer.onestep.spectrum import step_maps

__all__ = ["StepBulk", "step_bulk"]

_TINY = 1e-10
_H = 1e-30  # complex step for G'(z)


def _split_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E over t ~ N(0, 1): Gauss–Legendre on [−8, 0] and [0, 8] (n nodes
    each) with the Gaussian density, so a kink of σ⋆ at 0 (relu's) costs nothing."""
    x, w = leggauss(n)
    t = np.concatenate([4.0 * (x - 1.0), 4.0 * (x + 1.0)])
    wt = np.concatenate([w, w]) * 4.0 * np.exp(-0.5 * t * t)
    return t, wt / wt.sum()


def _with_label_noise(rho, wt, noise: float, n_noise: int, *carried):
    """The rule with label noise: each node split into n_noise Gauss–Hermite nodes ξ, the
    residual ρ + √Δ ξ, the weights multiplied, the ``carried`` per-node arrays repeated.
    Returns (ρ, weights, *carried); without noise they are returned as they are."""
    if not noise > 0:
        return (rho, wt, *carried)
    xi, wx = gaussian.hermite_rule(n_noise)
    rho = (rho[:, None] + math.sqrt(noise) * xi[None, :]).ravel()
    return (rho, np.outer(wt, wx).ravel(), *(np.repeat(a, len(xi)) for a in carried))


def _residual_rule(teacher, mu0: float, noise: float, n: int = 60, n_noise: int = 32):
    """Nodes (θ·x, ρ) and weights for E over one first-step sample: ρ = σ⋆(t) + √Δ ξ − μ0.

    t by :func:`_split_rule`, ξ by n_noise-point Gauss–Hermite when Δ > 0: test errors change by
    < 1e-9 (Δ = 0) and < 6e-5 relative (Δ = 0.5, against 48 noise nodes).
    """
    t, wt = _split_rule(n)
    rho, wt, t = _with_label_noise(teacher.fn(t) - mu0, wt, noise, n_noise, t)
    return t, rho, wt


class _Start:
    """The bulk before any step: K = I, so N(s) = (I + sK)⁻¹ = I/(1 + s); E_0 = span(θ)."""

    dim = 1

    def trace(self, s):
        return 1.0 / (1.0 + s)

    def sweep(self, s):
        return 1.0 / (1.0 + s), 0.0

    def forms(self, s):
        return (1.0 / (1.0 + np.asarray(s, complex)))[..., None, None] * np.eye(1)


@dataclass(eq=False)
class StepLevel:
    """One step's sample level: N_t(s) = (I + s K_t)⁻¹ with K_t = A K_{t−1} A + k T,
    A = I + (1/n) Σ_μ R_S(μ) x_μx_μᵀ, T = (1/n) Σ_μ R_T(μ) x_μx_μᵀ (d·C_t = K_t).

    The sample law is a rule: ``coords`` (m × nodes) are the samples' coordinates along the
    orthonormal directions ``P`` (m × dim of E_{t−1}, rows in the basis (θ, ξ_1, …, ξ_{t−1}))
    on which the weights depend, ``wt`` the weights of the nodes; ``rs``, ``rt`` the weights
    R_S, R_T and ``c`` the source of the step's fresh direction ξ_t ∝ X_⊥ᵀc per node. ``trace(s)``
    is (1/d) tr N_t(s), ``forms(s)`` the matrix of N_t(s) on E_t = span(θ, ξ_1, …, ξ_t).
    """

    prev: object  # the level below (_Start for the first step)
    alpha0: float
    k: float
    coords: np.ndarray = field(repr=False)
    wt: np.ndarray = field(repr=False)
    rs: np.ndarray = field(repr=False)
    rt: np.ndarray = field(repr=False)
    c: np.ndarray = field(repr=False)
    P: np.ndarray = field(repr=False)
    tol: float = 1e-13
    max_iter: int = 20000
    _warm: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def dim(self) -> int:
        return self.prev.dim + 1

    @property
    def source_norm(self) -> float:  # ‖X_⊥ᵀc‖/n = √(E c²/α0)
        return math.sqrt(float(self.wt @ self.c**2) / self.alpha0)

    def _n_blocks(self, s, g):
        """The per-sample blocks G[u|q, Eu|Eq] from the d-block traces g = (g_x1, g_x2, g_b1,
        g_b2) (variables x, b = K a; equations 1, 2)."""
        gx1, gx2, gb1, gb2 = (x[..., None] for x in g)
        sv, rs, krt, a0 = s[..., None], self.rs, self.k * self.rt, self.alpha0
        b11 = 1.0 + (gx1 * sv * krt - gx2 * rs) / a0
        b12 = gx1 * sv * rs / a0
        b21 = (gb1 * sv * krt - gb2 * rs) / a0
        b22 = 1.0 + gb1 * sv * rs / a0
        det = b11 * b22 - b12 * b21
        return b22 / det, -b12 / det, -b21 / det, b11 / det  # uu, uq, qu, qq

    def _self_energy(self, s, gn):
        guu, guq, gqu, gqq = gn
        sv, rs, krt, w = s[..., None], self.rs, self.k * self.rt, self.wt
        return (-((sv * rs * gqu + sv * krt * guu) @ w), -((sv * rs * gqq + sv * krt * guq) @ w),
                (rs * guu) @ w, (rs * guq) @ w)  # Σ1x, Σ1b, Σ2x, Σ2b

    @staticmethod
    def _d_block(s, sig):
        """α, β', p, γ', δ' of the d-block M(K) = [[α, 0, β'], [−p, 1, −γ'], [0, −K, 1]] on
        (x, a, b): its inverse is rational in K with the one pole α + δ'K, δ' = β'p − αγ'."""
        s1x, s1b, s2x, s2b = sig
        al, be, p, ga = 1.0 - s1x, s - s1b, 1.0 + s2x, s2b
        return al, be, p, ga, be * p - al * ga

    def sweep(self, s):
        """One update of the self-consistency at s (any shape), from the last state of that
        shape, with one update of the levels below at s' = δ'/α: (the new (1/d) tr N_t(s), the
        largest relative change at this level or below). Sweeping every level together costs
        the slowest level's iterations, not their product."""
        s = np.asarray(s, complex)
        g = self._warm.get(s.shape)
        if g is None:
            n0 = 1.0 / (1.0 + s)
            g = (n0, -s * n0, n0, n0)
        al, be, p, ga, de = self._d_block(s, self._self_energy(s, self._n_blocks(s, g)))
        n1, below = self.prev.sweep(de / al)
        new = (n1 / al - ga * (1 - n1) / de, -be * (1 - n1) / de, p * (1 - n1) / de,
               al * (1 - n1) / de)
        change = max(float(np.max(np.abs(a - b) / (np.abs(a) + 1e-300)))
                     for a, b in zip(new, g, strict=True))
        self._warm[s.shape] = new
        return new[0], max(change, below)

    def solve(self, s):
        """The d-block traces (g_x1, g_x2, g_b1, g_b2) at s (any shape): the self-consistency of
        the pencil, every level swept together until none changes by more than ``tol``; NaN if
        that takes over ``max_iter`` sweeps."""
        s = np.asarray(s, complex)
        for _ in range(self.max_iter):
            _, change = self.sweep(s)
            if not change > self.tol:  # NaN counts as not settled
                return self._warm[s.shape]
        self._warm.pop(s.shape, None)
        return tuple(np.full(s.shape, np.nan, complex) for _ in range(4))

    def trace(self, s):
        return self.solve(s)[0]

    def forms(self, s) -> np.ndarray:
        """N_t(s) on E_t (…, dim, dim): the deterministic rank-m parts of the samples (their
        coordinates along P) and the source of ξ_t solved exactly (Woodbury in the 2m
        coordinates of x and b along P); the rest of E_{t−1} through the level below."""
        s = np.asarray(s, complex)
        g = self.solve(s)
        gn = self._n_blocks(s, g)
        guu, guq, gqu, gqq = gn
        sig = self._self_energy(s, gn)
        al, be, p, ga, de = self._d_block(s, sig)
        f = self.prev.forms(de / al)  # N_{t−1}(δ'/α) on E_{t−1}
        one = np.eye(self.prev.dim) - f
        a_, b_, p_, g_, d_ = (x[..., None, None] for x in (al, be, p, ga, de))
        blocks = {("x", 1): f / a_ - g_ * one / d_, ("x", 2): -b_ * one / d_,
                  ("b", 1): p_ * one / d_, ("b", 2): a_ * one / d_}  # M(K)⁻¹ on E_{t−1}
        P, co, w = self.P, self.coords, self.wt
        m, m0 = P.shape
        sv, rs, krt, a0 = s[..., None], self.rs, self.k * self.rt, self.alpha0
        pu = (guu * g[0][..., None] + guq * g[2][..., None]) / a0  # response to the source
        pq = (gqu * g[0][..., None] + gqq * g[2][..., None]) / a0

        def pair(fun):  # E[coord_e coord_f fun] (…, m, m)
            return np.stack([np.stack([(co[e] * co[f] * fun) @ w for f in range(m)], -1)
                             for e in range(m)], -2)

        eye = np.eye(m)
        s1x, s1b, s2x, s2b = (x[..., None, None] * eye for x in sig)
        lam = np.concatenate([  # rows (E1, E2) × e, columns (x, b) × f; P carries no Σ
            np.concatenate([pair(sv * rs * gqu + sv * krt * guu) + s1x,
                            pair(sv * rs * gqq + sv * krt * guq) + s1b], -1),
            np.concatenate([-pair(rs * guu) + s2x, -pair(rs * guq) + s2b], -1)], -2)

        def proj(key):
            return np.einsum("ij,...jk,lk->...il", P, blocks[key], P)

        vmu = np.concatenate([np.concatenate([proj(("x", 1)), proj(("x", 2))], -1),
                              np.concatenate([proj(("b", 1)), proj(("b", 2))], -1)], -2)
        lhs = np.eye(2 * m) + vmu @ lam

        def m_inv(r1, r2):
            return tuple(np.einsum("...ij,...j->...i", blocks[(v, 1)], r1)
                         + np.einsum("...ij,...j->...i", blocks[(v, 2)], r2) for v in "xb")

        out = np.zeros((*s.shape, self.dim, self.dim), complex)
        ng = self.source_norm
        for j in range(self.dim):
            source = j == m0  # the last column: the source X_⊥ᵀc of ξ_t
            if source:
                r1 = np.stack([-((co[e] * self.c * (sv * rs * pq + sv * krt * pu)) @ w)
                               for e in range(m)], -1) @ P
                r2 = np.stack([(co[e] * self.c * rs * pu) @ w for e in range(m)], -1) @ P
            else:
                r1 = np.zeros((*s.shape, m0), complex)
                r1[..., j] = 1.0
                r2 = np.zeros_like(r1)
            x0, b0 = m_inv(r1, r2)
            z0 = np.concatenate([x0 @ P.T, b0 @ P.T], -1)
            z = np.linalg.solve(lhs, z0[..., None])[..., 0]
            corr = np.einsum("...ij,...j->...i", lam, z)
            x, _ = m_inv(r1 - corr[..., :m] @ P, r2 - corr[..., m:] @ P)
            xp, bp = z[..., :m], z[..., m:]
            along = (self.c**2 * pu) @ w if source else 0.0  # ξ_t·x ‖X_⊥ᵀc‖/n
            for e in range(m):
                along = (along + ((self.c * co[e] * (guu - 1.0)) @ w) * xp[..., e]
                         + ((self.c * co[e] * guq) @ w) * bp[..., e])
            out[..., :m0, j] = x / ng if source else x
            out[..., m0, j] = along / ng**2 if source else along / ng
        return out


@dataclass(eq=False)
class StepBulk:
    """The deterministic equivalents of the bulk of W after the step(s) (module docstring).

    ``stieltjes(z)`` returns, for each measure (``w``: eigenvalues of Ω with mass 1; ``spike``,
    ``teacher``, ``cross``: the squared projections of Wĝ, Wζ̂ and their product), the triple
    (mass, G(z), G'(z)) on the shape of z (real, < 0). It can replace a
    :class:`~twolayer.onestep.spectrum.SpectralRule` in :func:`twolayer.onestep.theory.solve`.
    ``ghat`` and ``zhat`` are ĝ and ζ̂ in the basis (θ, ξ_1, …, ξ_T) of the top level.
    """

    beta: float
    top: StepLevel
    ghat: np.ndarray
    zhat: np.ndarray
    label: str = "step bulk"
    tol: float = 1e-13
    max_iter: int = 20000
    _warm: dict = field(default_factory=dict, init=False, repr=False)

    def _solve(self, z: np.ndarray) -> np.ndarray:
        """m(z) at complex z: m = 1/(−z + τ), τ = (1 − (1/d) tr N(βm))/(βm); plain iteration from
        the last solution of the same shape, damped from the start if that does not settle;
        NaN where neither does (the caller reports it)."""
        key = np.shape(z)
        start = self._warm.pop(key, None)
        for damp in (0.0, 0.5):
            m = start if start is not None else 1.0 / (1.0 - z)
            for _ in range(self.max_iter):
                s = self.beta * m
                n, below = self.top.sweep(s)  # one sweep of every level at once
                mn = 1.0 / (-z + (1.0 - n) / s)
                done = ((np.abs(mn.real - m.real) <= self.tol * np.abs(mn.real))
                        & (np.abs(mn.imag - m.imag) <= self.tol * np.abs(mn.imag) + 1e-300))
                m = (1 - damp) * mn + damp * m
                if np.all(done) and below <= self.tol:
                    self._warm[key] = m
                    return m
            start = None
        return np.where(done, m, np.nan)

    def _transforms(self, z: np.ndarray) -> dict[str, np.ndarray]:
        m = self._solve(z)
        phi = np.eye(self.top.dim) - self.top.forms(self.beta * m)  # Φ_uv = uᵀv − uᵀNv
        g, zt = self.ghat, self.zhat
        pgg = np.einsum("i,...ij,j->...", g, phi, g)
        pgz = np.einsum("i,...ij,j->...", g, phi, zt)
        pzz = np.einsum("i,...ij,j->...", zt, phi, zt)
        return {"w": m, "spike": pgg / (1.0 - pgg), "cross": pgz / (1.0 - pgg),
                "teacher": pzz + pgz * pgz / (1.0 - pgg)}

    @cached_property
    def masses(self) -> dict[str, float]:
        """Total mass of each measure: 1, and β uᵀK_Tv for (u, v) = (ĝ, ĝ), (ζ̂, ζ̂), (ĝ, ζ̂),
        from N(s) = I − sK_T + O(s²) (Richardson at s = 1e-6, 2e-6)."""
        s = np.array([1e-6, 2e-6], complex)
        k2 = (np.eye(self.top.dim) - self.top.forms(s).real) / s.real[:, None, None]
        k2 = 2 * k2[0] - k2[1]
        g, z = self.ghat, self.zhat
        return {"w": 1.0, "spike": self.beta * float(g @ k2 @ g),
                "teacher": self.beta * float(z @ k2 @ z), "cross": self.beta * float(g @ k2 @ z)}

    def stieltjes(self, z) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:
        """(mass, G(z), G'(z)) of the four measures at real z < 0 (any shape)."""
        z = np.asarray(z, float)
        scale = _H * np.maximum(1.0, np.abs(z))
        tr = self._transforms(z + 1j * scale)
        masses = self.masses
        return {k: (masses[k], v.real, v.imag / scale) for k, v in tr.items()}


def step_bulk(student, teacher, alpha0, eta, beta: float = 1.0, noise: float = 0.0,
              n_kappa: int = 16) -> StepBulk:
    """The :class:`StepBulk` after one step (α0, η̃) or several (sequences, one entry per
    step) of ``student`` on ``teacher`` with label noise Δ.

    Step t's weights are those of :func:`~twolayer.onestep.spectrum.step_maps` before it
    (conditional on κ = ĝ_{t−1}·x: ν1 = E σ'(λ), ν2 = E σ''(λ), v = E σ'(λ)² − ν1² − c ν2²,
    ρ = y − μ0(κ)): R_S = η̃ ρ ν2, R_T = ρ² v, k = η̃²/α0, source ρ ν1. The first step's law is
    one-dimensional (θ·x and the label noise); a later step's adds ĝ_{t−1}·x, on an
    ``n_kappa``-point Hermite rule. Refuses (:class:`ModelAssumptionError`) a student with
    μ1 = 0 (no spike) and no step at all.
    """
    s = activations.get(student)
    a0s, etas = np.atleast_1d(alpha0).tolist(), np.atleast_1d(eta).tolist()
    if abs(s.mu(1)) < _TINY:
        raise ModelAssumptionError(f"student {s.name!r} has mu1 = E sigma'(z) = 0: the step "
                                   "makes no uniform spike")
    steps = [(a, e) for a, e in zip(a0s, etas, strict=True)]
    if not any(a > 0 and e > 0 for a, e in steps):
        raise ModelAssumptionError("no step (eta = 0 or alpha0 = 0): the bulk is W0, use bulk "
                                   "'mp'")
    maps = step_maps(student, teacher, a0s, etas, noise)
    level = _Start()
    for i, (a0, e) in enumerate(steps):
        if a0 == 0 or e == 0:  # W stays; keep the basis (θ, ξ_1, …) aligned with the maps
            level = _Idle(level)
            continue
        before = maps[i - 1] if i else None
        level = _level(s, activations.get(teacher), level, a0, e, noise, before, n_kappa)
    last = maps[-1]
    g = np.asarray(last.direction, float)[: level.dim]
    g = g / np.linalg.norm(g)
    zeta = np.eye(level.dim)[0] - g[0] * g
    label = (f"step bulk(alpha0={','.join(f'{a:g}' for a in a0s)}, "
             f"eta={','.join(f'{x:g}' for x in etas)}, beta={beta:g})")
    return StepBulk(beta, level, g, zeta / np.linalg.norm(zeta), label)


@dataclass(eq=False)
class _Idle:
    """A step with η̃ = 0 or α0 = 0: W unchanged, a direction ξ_t that nothing points along."""

    prev: object

    @property
    def dim(self) -> int:
        return self.prev.dim + 1

    def trace(self, s):
        return self.prev.trace(s)

    def sweep(self, s):
        return self.prev.sweep(s)

    def forms(self, s):
        f = self.prev.forms(s)
        out = np.zeros((*f.shape[:-2], self.dim, self.dim), complex)
        out[..., :-1, :-1] = f
        out[..., -1, -1] = self.prev.trace(s)
        return out


def _level(s, t, prev, alpha0, eta, noise, before, n_kappa) -> StepLevel:
    """The sample level of one step taken from the state ``before`` (None: the first step)."""
    if before is None or before.spike == 0.0:  # the first step: ν's are constants
        mu0, mu1, mu2 = s.mu(0), s.mu(1), s.mu(2)
        v = max(s.deriv_second_moment - mu1**2 - mu2**2, 0.0)  # 0 for an affine σ'
        u, rho, wt = _residual_rule(t, mu0, noise)
        return StepLevel(prev, alpha0, eta * eta / alpha0, u[None, :], wt, eta * mu2 * rho,
                         v * rho**2, mu1 * rho, np.eye(prev.dim)[:1])
    gam = before.alignment
    ghat = np.asarray(before.direction, float)[: prev.dim]
    ghat = ghat / np.linalg.norm(ghat)
    u, w, wt = _pair_rule(n_kappa)
    perp = math.sqrt(max(1.0 - gam * gam, 0.0))
    kappa = gam * u + perp * w
    sc, r = before.bulk_scale, before.spike
    h, wh = gaussian.hermite_rule(n_kappa)
    lam = r * kappa[:, None] + sc * h[None, :]
    mu0 = s.fn(lam) @ wh
    nu1 = s.deriv(lam) @ wh
    nu2 = (s.deriv(lam) * h) @ wh / sc
    v = np.maximum((s.deriv(lam) ** 2) @ wh - nu1**2 - sc * sc * nu2**2, 0.0)
    rho, wt, u, w, nu1, nu2, v = _with_label_noise(t.fn(u) - mu0, wt, noise, 12,
                                                   u, w, nu1, nu2, v)
    if perp > 1e-9:
        e_perp = (ghat - gam * np.eye(prev.dim)[0]) / perp
        P, coords = np.stack([np.eye(prev.dim)[0], e_perp]), np.stack([u, w])
    else:  # ĝ along θ: one special direction
        P, coords = np.eye(prev.dim)[:1], u[None, :]
    return StepLevel(prev, alpha0, eta * eta / alpha0, coords, wt, eta * rho * nu2, rho**2 * v,
                     rho * nu1, P)


def _pair_rule(n: int):
    """(u, w, weights): a tensor rule for two independent N(0, 1) coordinates, u by
    :func:`_split_rule` (a kink of σ⋆ at 0) and w Gauss–Hermite."""
    u1, wu = _split_rule(n)
    w1, ww = gaussian.hermite_rule(n)
    return (np.repeat(u1, n), np.tile(w1, len(u1)), np.outer(wu, ww).ravel())

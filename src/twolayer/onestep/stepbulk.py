"""The d = ∞ bulk of the first layer after one giant step, as it is (deterministic equivalents).

The spiked surrogate of :mod:`twolayer.onestep.theory` replaces the bulk of W1 by √c·W0: a
Marchenko–Pastur spectrum, the spike's bulk projections spread evenly, the teacher's in proportion
to the eigenvalue. Past η̃²/α0 ≈ 1 it is measurably off (tanh/tanh α0 = 0.5, η̃ = 2: −6%;
relu/tanh α0 = η̃ = 2: +6%), because the step's noise part lives in the span of the n0 step
samples and, for E σ'' ≠ 0, the part of the step linear in W0 is a random matrix too. Here that
structure is kept.

Model (one step, constant second layer). With ρ_μ = y_μ − μ0 the step's residuals,
g = X0ᵀρ/n0 and σ'(z) = μ1 + μ2 z + φ(z) (φ ⊥ 1, z; μ2 = E σ''),

    W1 = η̃ μ1 1 gᵀ + W,   W = W0 A + (η̃/n0) Φ diag(ρ) X0,   A = I + ε S,   Φ_jμ = φ(w0_j·x_μ),

S = (1/n0) Σ_μ ρ_μ x_μ x_μᵀ, ε = η̃ μ2. Gaussian equivalence of Φ (an independent matrix of
variance v = E σ'² − μ1² − μ2²; the finite-d post-step theory on W so drawn and on the real W1
agree within 0.5%) makes the rows of W, given the step samples, i.i.d. N(0, C) with

    C = (A² + k T)/d,   T = (1/n0) Σ_μ ρ_μ² x_μ x_μᵀ,   k = η̃² v/α0.

Two levels of deterministic equivalents then give every bulk average the fixed point needs
(Ω = W Π Wᵀ, Π = I − ĝĝᵀ, ĝ = g/‖g‖, ζ̂ ∝ Πθ):

- neurons (Silverstein): m(z) = (1/p) tr(Ω − z)⁻¹ = 1/(−z + τ), τ = (1 − (1/d) tr N)/s with
  s = βm and N = (I + s(A² + kT))⁻¹; and, with Φ_uv = uᵀv − uᵀNv for unit u, v,
  (Wĝ)ᵀ(Ω − z)⁻¹Wĝ = Φ_gg/(1 − Φ_gg), (Wĝ)ᵀ(Ω − z)⁻¹Wζ̂ = Φ_gζ/(1 − Φ_gg) and
  (Wζ̂)ᵀ(Ω − z)⁻¹Wζ̂ = Φ_ζζ + Φ_gζ²/(1 − Φ_gg) (the projection Π by Sherman–Morrison).
- step samples: N is a rational function of the Gaussian X0. Solving N x = b as the linear
  pencil u = X0x/√n0, a = Ax, q = X0a/√n0, x + s(a + ε X0ᵀRq/√n0) + sk X0ᵀR²u/√n0 = b
  (R = diag ρ) turns it into a system linear in X0, whose deterministic equivalent is a
  2 × 2 block on the d side and a 2 × 2 block per sample (a function of ρ_μ) on the n0 side,
  closed by the Gaussian self-energy. The column θ·x_μ of X0, on which the ρ_μ depend, is kept
  as a deterministic rank-one part and solved exactly; ĝ enters through a source X0ᵀc,
  c = ρ/√n0. For ε = 0 this is the weighted Marchenko–Pastur law of T with a Schur complement
  in θ (tested against that closed form to 1e-12).

The averages are Stieltjes transforms G(z) = ∫ dμ(D)/(D − z) of four spectral measures (the
eigenvalues; and the squared projections of Wĝ, Wζ̂ and their product on the eigenvectors),
evaluated at the real z0 = −(λ + V̂2)/V̂1 < 0 where the fixed point needs them, with G' by a
complex step: no discretised spectrum, no random matrix. At k = ε = 0 they are the surrogate's
Marchenko–Pastur transforms exactly (tested).

Checked: N on (θ, ĝ) and (1/d) tr N against the matrices of a drawn step (d = 2000, the
drawn residuals as the sample law: within 0.7%); m(z) against the real W1 within 0.3%; the test
errors against simulation in the one-step model's documentation. Not covered: several steps, a
Gaussian second layer (use the finite-d :func:`~twolayer.onestep.poststep.post_step_theory`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.polynomial.legendre import leggauss

from twolayer import activations, gaussian
from twolayer.errors import ModelAssumptionError

__all__ = ["StepBulk", "step_bulk"]

_TINY = 1e-10
_H = 1e-30  # complex step for G'(z)


def _residual_rule(teacher, mu0: float, noise: float, n: int = 60, n_noise: int = 32):
    """Nodes (θ·x, ρ) and weights for E over one step sample: ρ = σ⋆(t) + √Δ ξ − μ0.

    t by Gauss–Legendre on [−8, 0] and [0, 8] (n nodes each) with the Gaussian density (a kink
    at 0, as relu's, costs nothing), ξ by n_noise-point Gauss–Hermite when Δ > 0: test errors
    change by < 1e-9 (Δ = 0) and < 6e-5 relative (Δ = 0.5, against 48 noise nodes).
    """
    x, w = leggauss(n)
    t = np.concatenate([4.0 * (x - 1.0), 4.0 * (x + 1.0)])
    wt = np.concatenate([w, w]) * 4.0 * np.exp(-0.5 * t * t)
    wt /= wt.sum()
    y = activations.get(teacher).fn(t)
    if noise > 0:
        xi, wx = gaussian.hermite_rule(n_noise)
        t = np.repeat(t, len(xi))
        rho = np.repeat(y, len(xi)) - mu0 + math.sqrt(noise) * np.tile(xi, len(y))
        return t, rho, np.outer(wt, wx).ravel()
    return t, y - mu0, wt


def _no_samples(s) -> np.ndarray:
    """The pencil's d-block inverse without the step samples: x = a = b/(1 + s)."""
    gd = np.zeros((*np.shape(s), 2, 2), complex)
    gd[..., 0, 0] = gd[..., 1, 0] = gd[..., 1, 1] = 1.0 / (1.0 + s)
    gd[..., 0, 1] = -s / (1.0 + s)
    return gd


@dataclass(frozen=True)
class StepBulk:
    """The deterministic equivalents of the bulk of W1 after one step (module docstring).

    ``stieltjes(z)`` returns, for each measure (``w``: eigenvalues of Ω with mass 1; ``spike``,
    ``teacher``, ``cross``: the squared projections of Wĝ, Wζ̂ and their product), the triple
    (mass, G(z), G'(z)) on the shape of z (real, < 0). It can replace a
    :class:`~twolayer.onestep.spectrum.SpectralRule` in :func:`twolayer.onestep.theory.solve`.
    """

    beta: float
    alpha0: float
    eps: float  # η̃ μ2: A = I + ε S
    k: float  # η̃² v / α0
    t: np.ndarray = field(repr=False)  # θ·x of the step samples (rule nodes)
    rho: np.ndarray = field(repr=False)  # their residuals
    wt: np.ndarray = field(repr=False)
    label: str = "step bulk"
    tol: float = 1e-13
    max_iter: int = 20000
    _warm: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def _mt(self) -> float:  # θ·g = E[ρ t]
        return float(self.wt @ (self.rho * self.t))

    @property
    def _ng(self) -> float:  # ‖g⊥‖ = √(E ρ²/α0)
        return math.sqrt(float(self.wt @ self.rho**2) / self.alpha0)

    def directions(self) -> tuple[np.ndarray, np.ndarray]:
        """ĝ and ζ̂ in the orthonormal basis (θ, g⊥/‖g⊥‖)."""
        gn = math.hypot(self._mt, self._ng)
        g = np.array([self._mt, self._ng]) / gn
        zeta = np.array([1.0, 0.0]) - g[0] * g
        return g, zeta / np.linalg.norm(zeta)

    def _blocks(self, s, gd):
        """One update of the pencil's self-consistency at s = βm: from the d-block inverse ``gd``
        (variables x, a × equations 1, 2; on θ⊥ a multiple of the identity) the per-sample
        n0-blocks (u, q × equations 3, 4) and the new d-block inverse."""
        rho, eps, a0 = self.rho, self.eps, self.alpha0
        gx1, gx2, ga1, ga2 = (gd[..., i, j][..., None] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
        sk, se = (s * self.k)[..., None], (s * eps)[..., None]
        b11 = 1.0 + (gx1 * sk * rho**2 - gx2 * eps * rho) / a0
        b12 = gx1 * se * rho / a0
        b21 = (ga1 * sk * rho**2 - ga2 * eps * rho) / a0
        b22 = 1.0 + ga1 * se * rho / a0
        det = b11 * b22 - b12 * b21
        gn = (b22 / det, -b12 / det, -b21 / det, b11 / det)  # G[u,3], G[u,4], G[q,3], G[q,4]
        gu3, gu4, gq3, gq4 = gn
        w = self.wt
        d11 = 1.0 + (se * rho * gq3 + sk * rho**2 * gu3) @ w
        d12 = s + (se * rho * gq4 + sk * rho**2 * gu4) @ w
        d21 = -1.0 - eps * ((rho * gu3) @ w)
        d22 = 1.0 - eps * ((rho * gu4) @ w)
        dd = d11 * d22 - d12 * d21
        new = np.empty_like(gd)
        new[..., 0, 0], new[..., 0, 1] = d22 / dd, -d12 / dd
        new[..., 1, 0], new[..., 1, 1] = -d21 / dd, d11 / dd
        return new, gn

    def _solve(self, z: np.ndarray):
        """(m, d-block) at complex z by the joint fixed point; NaN where it has not settled after
        ``max_iter`` iterations (the caller reports it). Plain iteration first, from the last
        solution of the same shape (the fixed point of :func:`~twolayer.onestep.theory.solve`
        moves z0 little from one iteration to the next); if that does not settle, damped
        iteration from the bulk without the samples."""
        key = np.shape(z)
        start = self._warm.pop(key, None)
        for damp in (0.0, 0.5):
            m, gd = start if start is not None else self._start(z)
            for _ in range(self.max_iter):
                s = self.beta * m
                gdn, _ = self._blocks(s, gd)
                mn = 1.0 / (-z + (1.0 - gdn[..., 0, 0]) / s)  # τ = (1 − (1/d) tr N)/s
                done = ((np.abs(mn.real - m.real) <= self.tol * np.abs(mn.real))
                        & (np.abs(mn.imag - m.imag) <= self.tol * np.abs(mn.imag) + 1e-300)
                        & np.all(np.abs(gdn - gd) <= self.tol * np.abs(gdn) + 1e-300,
                                 axis=(-2, -1)))
                m, gd = (1 - damp) * mn + damp * m, (1 - damp) * gdn + damp * gd
                if np.all(done):
                    self._warm[key] = (m, gd)
                    return m, gd
            start = None
        return np.where(done, m, np.nan), np.where(done[..., None, None], gd, np.nan)

    def _start(self, z):
        """(m, d-block) of the bulk without the step: m = 1/(1 − z), N = (I + s)⁻¹."""
        m = 1.0 / (1.0 - z)
        return m, _no_samples(self.beta * m)

    def resolvent(self, s, gd) -> np.ndarray:
        """N = (I + s(A² + kT))⁻¹ on (θ, g⊥/‖g⊥‖), shape (…, 2, 2), from the converged d-block:
        the deterministic rank-one parts (the column θ·x_μ of the samples) solved exactly."""
        _, (gu3, gu4, gq3, gq4) = self._blocks(s, gd)
        t, rho, w, eps = self.t, self.rho, self.wt, self.eps
        gx1, ga1 = gd[..., 0, 0][..., None], gd[..., 1, 0][..., None]
        sk, se = (s * self.k)[..., None], (s * eps)[..., None]
        pu = (gu3 * gx1 + gu4 * ga1) / self.alpha0  # u's response to the source g⊥ (per sample)
        pq = (gq3 * gx1 + gq4 * ga1) / self.alpha0
        m11 = 1.0 + (t * t * (se * rho * gq3 + sk * rho**2 * gu3)) @ w
        m12 = s + (t * t * (se * rho * gq4 + sk * rho**2 * gu4)) @ w
        m21 = -1.0 - eps * ((t * t * rho * gu3) @ w)
        m22 = 1.0 - eps * ((t * t * rho * gu4) @ w)
        det = m11 * m22 - m12 * m21

        def theta_part(b1, b2):  # (x, a) along θ for right-hand sides (b1, b2)
            return (m22 * b1 - m12 * b2) / det, (m11 * b2 - m21 * b1) / det

        def g_part(x, a, source):  # g⊥ᵀx = Σ_μ c_μ u_μ − (θ·g) x, c = ρ/√n0
            return (source * ((rho**2 * pu) @ w) + ((t * rho * gu3) @ w) * x
                    + ((t * rho * gu4) @ w) * a - self._mt * x)

        xt, _ = theta_part(1.0, 0.0)  # source θ
        xg, ag = theta_part(-(t * rho * (se * rho * pq + sk * rho**2 * pu)) @ w,
                            eps * ((t * rho**2 * pu) @ w))  # source g⊥
        ng = self._ng
        n = np.empty((*np.shape(s), 2, 2), complex)
        n[..., 0, 0] = xt
        n[..., 0, 1] = n[..., 1, 0] = xg / ng
        n[..., 1, 1] = g_part(xg, ag, 1.0) / ng**2
        return n

    def _transforms(self, z: np.ndarray) -> dict[str, np.ndarray]:
        m, gd = self._solve(z)
        phi = np.eye(2) - self.resolvent(self.beta * m, gd)  # Φ_uv = uᵀv − uᵀNv
        g, zt = self.directions()
        pgg = np.einsum("i,...ij,j->...", g, phi, g)
        pgz = np.einsum("i,...ij,j->...", g, phi, zt)
        pzz = np.einsum("i,...ij,j->...", zt, phi, zt)
        return {"w": m, "spike": pgg / (1.0 - pgg), "cross": pgz / (1.0 - pgg),
                "teacher": pzz + pgz * pgz / (1.0 - pgg)}

    @cached_property
    def masses(self) -> dict[str, float]:
        """Total mass of each measure: 1, and β uᵀ(A² + kT)v for (u, v) = (ĝ, ĝ), (ζ̂, ζ̂),
        (ĝ, ζ̂), from N(s) = I − s(A² + kT) + O(s²) (Richardson at s = 1e-6, 2e-6)."""
        s = np.array([1e-6, 2e-6], complex)
        gd = self._pencil_at(s)
        k2 = (np.eye(2) - self.resolvent(s, gd).real) / s.real[:, None, None]
        k2 = 2 * k2[0] - k2[1]
        g, z = self.directions()
        return {"w": 1.0, "spike": self.beta * float(g @ k2 @ g),
                "teacher": self.beta * float(z @ k2 @ z), "cross": self.beta * float(g @ k2 @ z)}

    def _pencil_at(self, s: np.ndarray) -> np.ndarray:
        """The d-block at given s (the sample level alone)."""
        gd = _no_samples(s)
        for _ in range(self.max_iter):
            gdn, _ = self._blocks(s, gd)
            if np.all(np.abs(gdn - gd) <= self.tol * np.abs(gdn) + 1e-300):
                return gdn
            gd = 0.5 * (gd + gdn)
        return np.full_like(gd, np.nan)

    def stieltjes(self, z) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:
        """(mass, G(z), G'(z)) of the four measures at real z < 0 (any shape)."""
        z = np.asarray(z, float)
        scale = _H * np.maximum(1.0, np.abs(z))
        tr = self._transforms(z + 1j * scale)
        masses = self.masses
        return {k: (masses[k], v.real, v.imag / scale) for k, v in tr.items()}


def step_bulk(student, teacher, alpha0: float, eta: float, beta: float = 1.0,
              noise: float = 0.0) -> StepBulk:
    """The :class:`StepBulk` of one step (α0, η̃) of ``student`` on ``teacher`` with label noise Δ.

    Refuses (:class:`ModelAssumptionError`) a student with μ1 = 0 (no spike) and no step
    (η̃ = 0 or α0 = 0). An affine σ' (v = 0) has no noise part, and with μ2 = 0 (linear σ) the
    bulk is Marchenko–Pastur exactly.
    """
    s = activations.get(student)
    mu0, mu1, mu2 = s.mu(0), s.mu(1), s.mu(2)
    if abs(mu1) < _TINY:
        raise ModelAssumptionError(f"student {s.name!r} has mu1 = E sigma'(z) = 0: the step "
                                   "makes no uniform spike")
    if eta == 0 or alpha0 == 0:
        raise ModelAssumptionError("no step (eta = 0 or alpha0 = 0): the bulk is W0, use bulk "
                                   "'mp'")
    v = max(s.deriv_second_moment - mu1**2 - mu2**2, 0.0)  # 0 for an affine σ'
    t, rho, wt = _residual_rule(teacher, mu0, noise)
    return StepBulk(beta, alpha0, eta * mu2, eta * eta * v / alpha0, t, rho, wt,
                    label=f"step bulk(alpha0={alpha0:g}, eta={eta:g}, beta={beta:g})")

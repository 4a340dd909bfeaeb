"""The d = ∞ bulk of the first layer after one giant step, as it is (deterministic equivalents).

The spiked surrogate of :mod:`twolayer.onestep.theory` replaces the bulk of W1 by √c·W0: a
Marchenko–Pastur spectrum, the spike's bulk projections spread evenly, the teacher's in proportion
to the eigenvalue. Past η̃²/α0 ≈ 1 it is measurably off (tanh/tanh α0 = 0.5, η̃ = 2: −6%), because
the step's noise part lives in the span of the n0 step samples. Here that structure is kept.

Model (one step, constant second layer, σ centred in the sense μ2 = E σ'' = 0). With
ρ_μ = y_μ − μ0 the step's residuals, g = X0ᵀρ/n0 and σ'(z) = μ1 + φ(z) (φ ⊥ 1, z),

    W1 = η̃ μ1 1 gᵀ + W,   W = W0 + (η̃/n0) Φ diag(ρ) X0,   Φ_jμ = φ(w0_j·x_μ).

Gaussian equivalence of Φ (an independent matrix of variance v = E σ'² − μ1²; checked: the
finite-d post-step theory on W so drawn and on the real W1 agree within 0.5%) makes the rows of W,
given the step samples, i.i.d. N(0, C) with

    C = (I + k T)/d,   T = (1/n0) Σ_μ ρ_μ² x_μ x_μᵀ,   k = η̃² v/α0.

Two levels of deterministic equivalents then give every bulk average the fixed point needs
(Ω = W Π Wᵀ, Π = I − ĝĝᵀ, ĝ = g/‖g‖, ζ̂ ∝ Πθ):

- p-level (Silverstein): m(z) = (1/p) tr(Ω − z)⁻¹ = 1/(−z + τ), τ = tr C(I + βd·m C)⁻¹; and
  for unit u, v, with s = βm and Φ_uv = uᵀv − uᵀ(I + s(I + kT))⁻¹v,
  (Wĝ)ᵀ(Ω − z)⁻¹Wĝ = Φ_gg/(1 − Φ_gg), (Wĝ)ᵀ(Ω − z)⁻¹Wζ̂ = Φ_gζ/(1 − Φ_gg) and
  (Wζ̂)ᵀ(Ω − z)⁻¹Wζ̂ = Φ_ζζ + Φ_gζ²/(1 − Φ_gg) (the projection Π by Sherman–Morrison).
- d-level (weighted Marchenko–Pastur): (I + s(I + kT))⁻¹ = R_T(ζ)/(sk), ζ = −(1 + s)/(sk),
  with δ(ζ) = (1/α0)/(E[ρ²/(1 + ρ²δ)] − ζ) (so (1/d) tr R_T = α0 δ); on span(θ, g⊥) the
  resolvent follows from the Schur complement in θ, with the sample-side equivalent
  (1/n0) Σ_μν c_μ c'_ν y_μᵀ R_⊥ y_ν → E[c c' δ/(1 + ρ²δ)] for c, c' functions of (θ·x_μ, ρ_μ).

The averages are Stieltjes transforms G(z) = ∫ dμ(D)/(D − z) of four spectral measures (the
eigenvalues; and the squared projections of Wĝ, Wζ̂ and their product on the eigenvectors),
evaluated at the real z0 = −(λ + V̂2)/V̂1 < 0 where the fixed point needs them, with G' by a
complex step: no discretised spectrum, no random matrix. At k = 0 (no noise part) they reduce to
the surrogate's Marchenko–Pastur transforms exactly (tested).

Measured against the finite-d post-step theory on the real W1 (tanh/tanh α0 = 0.5, η̃ = 2,
d = 2000): m(z) within 0.3%, the weighted transforms within their seed-to-seed spread (2–10%).
The errors it gives are reported in the one-step model's documentation. Not covered: a
non-centred σ (E σ'' ≠ 0: the bulk W0(I + η̃ μ2 S_ρ) adds a second weighted Wishart, quadratic in
the samples), several steps, a Gaussian second layer; use the finite-d
:func:`~twolayer.onestep.poststep.post_step_theory` there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial.legendre import leggauss

from twolayer import activations, gaussian
from twolayer.errors import ModelAssumptionError

__all__ = ["StepBulk", "step_bulk"]

_TINY = 1e-10
_H = 1e-30  # complex step for G'(z)


def _residual_rule(teacher, mu0: float, noise: float, n: int = 120):
    """Nodes (θ·x, ρ) and weights for E over one step sample: ρ = σ⋆(t) + √Δ ξ − μ0.

    t by Gauss–Legendre on [−8, 0] and [0, 8] with the Gaussian density (exact enough for a
    kink at 0, as relu's), ξ by Gauss–Hermite when Δ > 0.
    """
    x, w = leggauss(n)
    t = np.concatenate([4.0 * (x - 1.0), 4.0 * (x + 1.0)])
    wt = np.concatenate([w, w]) * 4.0 * np.exp(-0.5 * t * t)
    wt /= wt.sum()
    y = activations.get(teacher).fn(t)
    if noise > 0:
        xi, wx = gaussian.hermite_rule(24)
        t = np.repeat(t, len(xi))
        rho = np.repeat(y, len(xi)) - mu0 + math.sqrt(noise) * np.tile(xi, len(y))
        return t, rho, np.outer(wt, wx).ravel()
    return t, y - mu0, wt


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
    k: float  # η̃² v / α0
    t: np.ndarray = field(repr=False)  # θ·x of the step samples (rule nodes)
    rho: np.ndarray = field(repr=False)  # their residuals
    wt: np.ndarray = field(repr=False)
    ghat: np.ndarray = field(repr=False)  # ĝ in the orthonormal basis (θ, g⊥/‖g⊥‖)
    zhat: np.ndarray = field(repr=False)  # ζ̂ in the same basis
    t2: np.ndarray = field(repr=False)  # T on that basis (2 × 2)
    label: str = "step bulk"
    tol: float = 1e-13
    max_iter: int = 20000

    @property
    def _e2(self) -> float:
        return float(self.wt @ (self.rho**2 * self.t**2))

    @property
    def _ng(self) -> float:
        return math.sqrt(float(self.wt @ self.rho**2) / self.alpha0)

    def masses(self) -> dict[str, float]:
        """Total mass of each measure: 1, and β uᵀ(I + kT)v for (u, v) = (ĝ, ĝ), (ζ̂, ζ̂), (ĝ, ζ̂)."""
        m = np.eye(2) + self.k * self.t2
        g, z = self.ghat, self.zhat
        return {"w": 1.0, "spike": self.beta * float(g @ m @ g),
                "teacher": self.beta * float(z @ m @ z), "cross": self.beta * float(g @ m @ z)}

    def _solve(self, z: np.ndarray):
        """(m, δ) at complex z by the joint fixed point (Silverstein's equation at both levels);
        NaN where it has not settled after ``max_iter`` iterations (the caller reports it)."""
        rho2 = self.rho**2
        m = 1.0 / (-z + 1.0 + self.k * float(self.wt @ rho2))
        zeta = -(1.0 + self.beta * m) / (self.beta * m * self.k)
        delta = -1.0 / (self.alpha0 * zeta)
        for _ in range(self.max_iter):
            s = self.beta * m
            zeta = -(1.0 + s) / (s * self.k)
            dn = (1.0 / self.alpha0) / ((rho2 / (1.0 + rho2 * delta[..., None])) @ self.wt - zeta)
            tau = (1.0 - self.alpha0 * dn / (s * self.k)) / s
            mn = 1.0 / (-z + tau)
            done = ((np.abs(mn.real - m.real) <= self.tol * np.abs(mn.real))
                    & (np.abs(mn.imag - m.imag) <= self.tol * np.abs(mn.imag) + 1e-300)
                    & (np.abs(dn - delta) <= self.tol * np.abs(dn)))
            m, delta = 0.5 * (m + mn), 0.5 * (delta + dn)
            if np.all(done):
                return m, delta
        return np.where(done, m, np.nan), np.where(done, delta, np.nan)

    def _transforms(self, z: np.ndarray) -> dict[str, np.ndarray]:
        m, delta = self._solve(z)
        s = self.beta * m
        zeta = -(1.0 + s) / (s * self.k)
        rho2, t, w = self.rho**2, self.t, self.wt
        q = delta[..., None] / (1.0 + rho2 * delta[..., None])
        bb = (rho2**2 * t * t * q) @ w  # bᵀR⊥b, b = (1/n0) Σ ρ² t y
        gb = (rho2 * self.rho * t * q) @ w  # bᵀR⊥g⊥
        gg = (rho2 * q) @ w  # g⊥ᵀR⊥g⊥
        st = self._e2 - zeta - bb  # Schur complement of T − ζ in θ
        ng = self._ng
        r = np.empty((*np.shape(z), 2, 2), complex)  # R_T(ζ) on (θ, g⊥/‖g⊥‖)
        r[..., 0, 0] = 1.0 / st
        r[..., 0, 1] = r[..., 1, 0] = -(gb / ng) / st
        r[..., 1, 1] = (gg + gb * gb / st) / ng**2
        phi = np.eye(2) - r / (s * self.k)[..., None, None]
        g, zt = self.ghat, self.zhat
        pgg = np.einsum("i,...ij,j->...", g, phi, g)
        pgz = np.einsum("i,...ij,j->...", g, phi, zt)
        pzz = np.einsum("i,...ij,j->...", zt, phi, zt)
        return {"w": m, "spike": pgg / (1.0 - pgg), "cross": pgz / (1.0 - pgg),
                "teacher": pzz + pgz * pgz / (1.0 - pgg)}

    def stieltjes(self, z) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:
        """(mass, G(z), G'(z)) of the four measures at real z < 0 (any shape)."""
        z = np.asarray(z, float)
        tr = self._transforms(z + 1j * _H * np.maximum(1.0, np.abs(z)))
        scale = _H * np.maximum(1.0, np.abs(z))
        masses = self.masses()
        return {k: (masses[k], v.real, v.imag / scale) for k, v in tr.items()}


def step_bulk(student, teacher, alpha0: float, eta: float, beta: float = 1.0,
              noise: float = 0.0) -> StepBulk:
    """The :class:`StepBulk` of one step (α0, η̃) of ``student`` on ``teacher`` with label noise Δ.

    Refuses (:class:`ModelAssumptionError`) a σ with μ2 = E σ'' ≠ 0, one with μ1 = 0 (no
    spike), and a step without a noise part (v = E σ'² − μ1² = 0: the surrogate is then exact).
    """
    s = activations.get(student)
    mu0, mu1, mu2 = s.mu(0), s.mu(1), s.mu(2)
    if abs(mu2) > _TINY:
        raise ModelAssumptionError(
            f"the d = inf step bulk is built for a centred student (E sigma'' = 0); {s.name!r} "
            f"has E sigma'' = {mu2:.3g}. Use bulk 'mp' (the spiked surrogate) or the finite-d "
            "post-step theory")
    if abs(mu1) < _TINY:
        raise ModelAssumptionError(f"student {s.name!r} has mu1 = E sigma'(z) = 0: the step "
                                   "makes no uniform spike")
    v = s.deriv_second_moment - mu1**2
    if not v > _TINY or eta == 0 or alpha0 == 0:
        raise ModelAssumptionError("the step has no noise part (eta = 0, alpha0 = 0 or a linear "
                                   "sigma'): the Marchenko–Pastur bulk 'mp' is then exact")
    t, rho, wt = _residual_rule(teacher, mu0, noise)
    r2 = float(wt @ rho**2)
    mt = float(wt @ (rho * t))
    ng = math.sqrt(r2 / alpha0)
    gn = math.hypot(mt, ng)
    sign = 1.0 if eta * mu1 > 0 else -1.0  # ĝ oriented so that the spike is > 0
    ghat = sign * np.array([mt, ng]) / gn
    zeta = np.array([1.0, 0.0]) - ghat[0] * ghat
    zhat = zeta / np.linalg.norm(zeta)
    r3t = float(wt @ (rho**3 * t)) / alpha0 / ng
    t2 = np.array([[float(wt @ (rho**2 * t * t)), r3t],
                   [r3t, (float(wt @ rho**4) / alpha0**2 + r2 * r2 / alpha0) / ng**2]])
    return StepBulk(beta, alpha0, eta * eta * v / alpha0, t, rho, wt, ghat, zhat, t2,
                    f"step bulk(alpha0={alpha0:g}, eta={eta:g}, beta={beta:g})")

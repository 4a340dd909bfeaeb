"""What the giant step does to the first layer, and the spectra the sRF theory integrates over.

Step map. Cui et al. 2024 (arXiv 2402.04980) model the network after the step by a spiked
random-features model (bulk plus a rank-one spike) and characterise its test error in their
Result 3.3 (arXiv v1 numbering); the map from (α0, η̃) to the model's parameters is derived here,
with a correction the reference code lacks: for a non-centred σ, f0(x) ≈ μ0 = E σ(z) at
initialisation, so the step's residual is ρ = y − μ0 with E ρ = μ0⋆ − μ0 and
E ρ² = E(σ⋆ − μ0)² + Δ. Row j after W1 = W0 − η̃·p·∇_W L reads

    w1_j = c₀·w0_j + η̃ μ1 g + (noise_j),      g = (1/n0) Σ_μ ρ_μ x_μ,

with c₀ = 1 + η̃ μ2 (μ0⋆ − μ0), μ2 = E σ''(z) the second Hermite coefficient (the mean residual
shrinks the bulk; the reference takes c₀ = 1 and E y² for E ρ², which puts its relu/tanh theory
11–34% above simulation at α0 = η̃ = 2), ‖g‖² =
μ1⋆² + E ρ²/α0, and ‖noise_j‖² = η̃² E ρ² (E σ'² − μ1²)/α0. Hence, with ĝ = g/‖g‖ and θ the
teacher direction:

- bulk variance  c = c₀² + η̃² E ρ² (E σ'² − μ1²)/α0   (``bulk_scale`` = √c),
- spike strength r_s = η̃ μ1 ‖g‖   (each preactivation gains r_s·ĝ·x),
- alignment      γ = ĝ·θ = μ1⋆/‖g‖.

The map needs μ1(σ) ≠ 0 (else no uniform spike) and, when μ2 ≠ 0, an even part-free teacher
(μ2⋆ = 0): otherwise W0θ θᵀ adds an order-one per-neuron term the sRF model lacks.

Bulk spectrum at d = ∞: Ω = W Π Wᵀ (p × p) has the Marchenko–Pastur law of ratio β = p/d scaled
by c (mean eigenvalue c; an atom 1 − 1/β at 0 when β > 1). The squared projections of the spike
direction, F'_i = p (u_iᵀ W v̂)², spread evenly over all p eigenvectors, null ones included
(W v̂ is independent of the column space of WΠ, which it meets in a fraction 1/β when β > 1), so
their average is c·β; those of a direction ζ̂ ⟂ v̂, H'_i = p (u_iᵀ W ζ̂)², are β·D_i on average.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np
from numpy.polynomial.legendre import leggauss

from twolayer import activations
from twolayer._validate import integer, real
from twolayer.errors import ModelAssumptionError, ParameterError

__all__ = ["SpectralRule", "StepMap", "finite_rule", "mp_rule", "step_map"]

_TINY = 1e-10


@dataclass(frozen=True)
class StepMap:
    """sRF parameters induced by the step (see the module docstring)."""

    bulk_scale: float  # √c: rms row norm of the bulk of W1
    bulk_shrink: float  # c₀ = 1 + η̃ μ2 (μ0⋆ − μ0)
    spike: float  # r_s = η̃ μ1 ‖g‖
    alignment: float  # γ = μ1⋆ / ‖g‖
    residual_var: float  # E ρ² = E(σ⋆ − μ0)² + Δ

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def step_map(student, teacher, alpha0: float, eta: float, noise: float = 0.0) -> StepMap:
    """The sRF parameters (√c, c₀, r_s, γ) after one giant step with (α0, η̃), label noise Δ.

    η̃ = 0 or α0 = 0 is random features: √c = 1, r_s = 0, γ = 0.
    """
    s, t = activations.get(student), activations.get(teacher)
    alpha0 = real("alpha0", alpha0, low=0.0)
    eta = real("eta", eta, low=0.0)
    noise = real("noise", noise, low=0.0)
    mu0, mu1, mu2 = s.mu(0), s.mu(1), s.mu(2)
    mu0t, mu1t = t.mu(0), t.mu(1)
    resid_var = t.second_moment - 2 * mu0 * mu0t + mu0**2 + noise
    if eta == 0.0 or alpha0 == 0.0:
        return StepMap(1.0, 1.0, 0.0, 0.0, resid_var)
    if abs(mu1) < _TINY:
        raise ModelAssumptionError(
            f"student {s.name!r} has mu1 = E sigma'(z) = 0: the step makes no uniform spike, "
            "so the spiked-RF theory does not apply"
        )
    if abs(mu2) > _TINY and abs(t.mu(2)) > _TINY:
        raise ModelAssumptionError(
            f"student {s.name!r} has E sigma'' != 0 and teacher {t.name!r} has an even part "
            "(mu2 != 0): the step adds a per-neuron term outside the spiked-RF theory"
        )
    shrink = 1.0 + eta * mu2 * (mu0t - mu0)
    ss = s.deriv_second_moment - mu1**2
    try:
        c = shrink**2 + eta**2 * resid_var * ss / alpha0
    except OverflowError:
        c = math.inf
    gnorm = math.sqrt(mu1t**2 + resid_var / alpha0)
    if not math.isfinite(c * gnorm * eta):
        raise ParameterError(f"eta = {eta:g} with alpha0 = {alpha0:g} overflows the step map (the "
                             "bulk variance c is not a finite number); use a smaller eta")
    return StepMap(math.sqrt(c), shrink, eta * mu1 * gnorm, mu1t / gnorm, resid_var)


@dataclass(frozen=True)
class SpectralRule:
    """Quadrature for the bulk averages (1/p) Σ_i g(D_i), (1/p) Σ F'_i g(D_i), (1/p) Σ H'_i g(D_i).

    ``nodes`` are eigenvalues D; ``w``, ``w_spike``, ``w_teacher`` the three sets of weights;
    ``w_cross`` (optional, None = 0) the cross weights (1/p) Σ X'_i g(D_i),
    X'_i = p (u_iᵀ W v̂)(u_iᵀ W ζ̂), which vanish on average for a bulk independent of θ.
    """

    nodes: np.ndarray
    w: np.ndarray
    w_spike: np.ndarray
    w_teacher: np.ndarray
    label: str
    w_cross: np.ndarray | None = None


@cache
def _mp_unit(beta: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the continuous part of MP(ratio β, mean 1) (total mass min(1, 1/β)).

    x = a + (b − a)(1 − cos φ)/2 makes the density smooth in φ ∈ [0, π] (even at β = 1, where
    a = 0 and the density has a 1/√x edge), so Gauss–Legendre in φ converges exponentially.
    """
    a, b = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    t, wt = leggauss(n)
    phi = 0.5 * math.pi * (t + 1.0)
    x = a + 0.5 * (b - a) * (1.0 - np.cos(phi))
    # density sqrt((b-x)(x-a)) / (2π β x); dx = (b-a)/2 sin φ dφ; sqrt(...) = (b-a)/2 sin φ
    if a > 0:
        dens_over = np.sin(phi) ** 2 / x
    else:  # sin²φ / x = 2 (1 + cos φ) / b exactly when a = 0
        dens_over = 2.0 * (1.0 + np.cos(phi)) / b
    w = (0.5 * (b - a)) ** 2 * dens_over / (2 * math.pi * beta) * (0.5 * math.pi) * wt
    return x, w


def mp_rule(beta: float, scale: float = 1.0, n: int = 200) -> SpectralRule:
    """d = ∞ rule: Marchenko–Pastur law of ratio β = p/d, mean eigenvalue ``scale`` (= c)."""
    beta = real("beta", beta, low=0.0, strict=True)
    x, w = _mp_unit(beta, integer("n", n))
    x = scale * x
    if beta > 1.0:  # atom at 0 of mass 1 − 1/β
        x, w = np.append(x, 0.0), np.append(w, 1.0 - 1.0 / beta)
    w_spike = scale * beta * w
    w_teacher = beta * x * w
    return SpectralRule(x, w, w_spike, w_teacher, f"MP(beta={beta:g}, c={scale:g})")


def finite_rule(d: int, p: int, scale: float, rng: np.random.Generator) -> SpectralRule:
    """Finite-d rule from one draw: W0 with unit rows (p × d), a spike direction v̂ and ζ̂ ⟂ v̂.

    Costs one p × p eigendecomposition (O(p³)).
    """
    w0 = rng.standard_normal((p, d))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    w = math.sqrt(scale) * w0
    v = rng.standard_normal(d)
    v /= np.linalg.norm(v)
    zeta = rng.standard_normal(d)
    zeta -= (zeta @ v) * v
    zeta /= np.linalg.norm(zeta)
    wv, wz = w @ v, w @ zeta
    omega = w @ w.T - np.outer(wv, wv)  # W Π Wᵀ with Π = I − v̂ v̂ᵀ
    evals, evecs = np.linalg.eigh(omega)
    evals = np.clip(evals, 0.0, None)
    f = p * (evecs.T @ wv) ** 2
    h = p * (evecs.T @ wz) ** 2
    ones = np.full(p, 1.0 / p)
    return SpectralRule(evals, ones, f / p, h / p, f"finite(d={d}, p={p})")

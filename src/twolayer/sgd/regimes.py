"""Which limit of one-pass SGD applies: classical, high-dimensional, mean-field or mixed.

With p = p0·d^κ and γ = γ0·d^(−δ) (κ ≥ 0; the exponents of Veiga et al. 2022, arXiv
2202.00293), the ODE time t = ν·γ/(p·d) needs ν ∝ d^(1+κ+δ) steps and the SGD-variance term of
dQ carries γ/p ∝ d^(−(κ+δ)) (Arnaboldi et al. 2023, arXiv 2302.05882v1, Eqs. 11–12; the
classical, high-dimensional and mean-field limits are its §3.2–3.4 and the corners of its
Fig. 1). Hence, with s = κ + δ:

- s > 0: the variance term (and the label noise with it) vanishes; the dynamics is gradient flow
  on the population risk — *classical* when κ = 0 (γ → 0), *mean-field* when κ > 0 (p → ∞);
- s = 0: *high-dimensional* (Saad & Solla): the variance term stays with weight γ0/p0 and the
  noise Δ sets a floor on the risk; with κ > 0 as well, *mixed* (wide and high-dimensional);
- −1/2 < κ + δ < 0: the variance term dominates (*bad learning*): the overlaps are driven by
  SGD noise on the faster scale ν ∝ d^(1+2(κ+δ)) and the teacher is not learned;
- κ + δ ≤ −1/2: that scale is one step or less. One step w_j ← w_j − (γ/p)(ŷ − y)σ'(λ_j)x/√d
  moves Q_jj by (γ/p)²‖x‖²/d² ≈ γ²/(p²·d) = d^(−1−2(κ+δ)) (the variance part of the exact
  one-step increments, Eq. 9), which does not vanish: no ODE.

The "variance-dominated", "no ODE" and "mixed" readings are derived here from those scalings;
the papers name the corners and edges only.

Departure from the authors' phase-diagram code (Veiga et al., github rodsveiga/phdiag_sgd), which
bounds the ODE region by κ < −δ < (κ + 1)/2, i.e. draws the no-ODE edge at δ = −(1 + κ)/2.
Between that line and κ + δ = −½ (for κ > 0) the package keeps an ODE (variance-dominated),
because one step's move of Q_jj, γ²/(p²d) = d^(−1−2(κ+δ)), still vanishes there. Simulated at
κ = 1, δ = −1.25 (p = d, γ = d^1.25, erf, k = 1, 8 runs): the change of Q_jj in one step has
standard deviation 0.029, 0.012, 0.0044 at d = 64, 256, 1024 (it shrinks like d^(−0.7)); beyond
the package's edge (δ = −1.75) it grows: 1.4, 2.4, 4.1. ``tests/test_sgd_regimes.py`` re-runs a
small version of this check.

For given numbers (d, p, γ) the same reading uses γ/p (weight of the variance term) and the
largest move of one step, max(γ²/(p²·d), γ/(p·d)); the thresholds for "negligible" (1e-2) are
conventions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from twolayer import _validate as check
from twolayer.errors import ParameterError

__all__ = ["Regime", "classify", "classify_exponents"]

SMALL = 1e-2  # a term below this weight is called negligible


@dataclass(frozen=True)
class Regime:
    """The limit that applies, its time scale and which terms of the ODE survive."""

    name: str
    description: str
    steps_per_unit_time: str  # ν per unit of t, a number or a power of d
    variance_weight: str  # weight of the (γ/p) term
    terms: tuple[str, ...]  # terms of the ODE that survive
    note: str = ""  # where the package departs from the authors' phase diagram

    def as_dict(self) -> dict:
        return asdict(self)


_GF = ("gradient term E[e σ'(λ) λ], E[e σ'(λ) ν]",)
_VAR = ("SGD-variance term (γ/p) E[e² σ'σ']", "label-noise term (γ/p) Δ E[σ'σ']")


def classify_exponents(kappa: float, delta: float) -> Regime:
    """The regime of p ∝ d^κ, γ ∝ d^(−δ) as d → ∞ (exact comparisons of the exponents)."""
    kappa = check.real("kappa", kappa, low=0.0)
    delta = check.real("delta", delta)
    s = kappa + delta
    steps = f"d^{1 + s:g}"
    weight = f"d^{-s:g}"
    if s > 0:
        if kappa > 0:
            return Regime("mean-field", "wide student (p → ∞) with γ/p → 0: gradient flow on the "
                          "population risk; noise and SGD variance vanish", steps, weight, _GF)
        return Regime("classical", "γ → 0 at fixed width: gradient flow on the population risk;"
                      " noise and SGD variance vanish", steps, weight, _GF)
    if s == 0:
        name = "mixed" if kappa > 0 else "high-dimensional"
        what = ("wide student and γ/p = O(1)" if kappa > 0 else "γ/p = O(1) at fixed width")
        return Regime(name, f"{what}: the SGD-variance term stays with weight γ0/p0 and the label "
                      "noise sets a floor on the risk (Saad–Solla)", steps, "γ0/p0", _GF + _VAR)
    if s > -0.5:
        note = ""
        if delta < -(1 + kappa) / 2:
            note = ("the authors' phase-diagram code puts this point in its no-ODE region "
                    "(δ < −(1 + κ)/2); the package keeps the ODE because one step moves Q_jj by "
                    f"γ²/(p²d) = d^{-1 - 2 * s:g} → 0 (checked by simulation at κ = 1, δ = −1.25)")
        return Regime("variance-dominated", "γ/p → ∞: the SGD-variance term dominates on the time "
                      f"scale ν ∝ d^{1 + 2 * s:g}; the teacher is not learned (bad learning)",
                      f"d^{1 + 2 * s:g}", weight, _VAR, note)
    return Regime("no-ODE", "γ²/(p²·d) does not vanish: one SGD step moves the overlaps by "
                  "O(1); no deterministic limit", "—", weight, ())


def classify(d: int, p: int, gamma: float) -> Regime:
    """The regime for finite (d, p, γ), read from γ/p and γ²/(p·d)."""
    d, p = check.integer("d", d), check.integer("p", p)
    gamma = check.real("gamma", gamma, low=0.0, strict=True)
    w = gamma / p
    jump = max(gamma**2 / (p**2 * d), gamma / (p * d))
    steps = f"{p * d / gamma:.4g}"
    weight = f"{w:.4g}"
    if jump >= 1:
        return Regime("no-ODE", f"one step moves the overlaps by {jump:.3g} ≥ 1 (γ²/(p²d) or "
                      "γ/(pd)): no ODE",
                      steps, weight, ())
    if w < SMALL:
        if p >= 100:
            return Regime("mean-field", f"wide student (p = {p}) with γ/p = {w:.3g} ≪ 1: "
                          "gradient flow on the population risk", steps, weight, _GF)
        return Regime("classical", f"γ/p = {w:.3g} ≪ 1: gradient flow on the population risk",
                      steps, weight, _GF)
    if w > 1 / SMALL:
        return Regime("variance-dominated", f"γ/p = {w:.3g} ≫ 1: SGD noise dominates",
                      steps, weight, _VAR)
    name = "mixed" if p >= 100 else "high-dimensional"
    return Regime(name, f"γ/p = {w:.3g} = O(1): gradient and SGD-variance terms both matter, "
                  "noise sets a floor on the risk", steps, weight, _GF + _VAR)


def exponents(d: int, p: int, gamma: float) -> tuple[float, float]:
    """(κ, δ) with p = d^κ and γ = d^(−δ) (p0 = γ0 = 1), for display."""
    if d < 2:
        raise ParameterError("d must be >= 2 to read exponents")
    return math.log(p) / math.log(d), -math.log(gamma) / math.log(d)

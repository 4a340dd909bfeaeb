"""One step with a learning rate that grows with d: the limit theory of the spiked features.

Moniri, Lee, Hassani and Dobriban 2023 (arXiv 2310.07891) take one step with η ∝ n^ζ,
0 < ζ < ½, in units where η = Θ(1) moves each neuron's preactivation by O(1/√p). In this
package's units (Cui et al.: a giant step η̃ = O(1) moves it by O(1)) that is

    η̃ = η·d^(ζ − ½),

so ζ = ½ is the giant step of :mod:`twolayer.onestep.theory`. After the step each row is
w1_j = w0_j + u_j v̂ + (a fluctuation that vanishes as η̃ → 0), with v̂ the step's direction and
u_j ∝ η̃ a_j (a_j the second layer during the step). On fresh inputs, with κ = v̂·x,

    σ(w1_j·x) = σ(w0_j·x) + Σ_k σ^(k)(w0_j·x) (u_j κ)^k / k!,

and the term of degree k is, up to a vanishing bulk, the rank-one feature spike
μ_k (κ^k)(u^∘k)ᵀ/k! (μ_k = E σ^(k)(z), the Hermite coefficient of σ). Its strength over the
random-features bulk grows as d^(k(ζ − ½) + ½): it is infinite in the limit when
ζ > (k − 1)/(2k), so ℓ(ζ) = #{k ≥ 1 : k(1 − 2ζ) < 1} degrees emerge (Moniri et al.'s
ζ ∈ ((ℓ − 1)/2ℓ, ℓ/(2ℓ + 2))), each only if μ_k ≠ 0.

- **Gaussian second layer** (a_j ~ N(0, 1), their setting): the vectors u^∘k are linearly
  independent, so each emerging degree is its own feature and the readout fits
  He_k(κ), k ∈ K = {k ≤ ℓ(ζ) : μ_k ≠ 0}, without penalty in the limit.
- **Constant second layer** (a_j = 1, Cui et al.): every u^∘k is the constant vector, so all the
  degrees form one feature Σ_k μ_k u^k κ^k/k! in which κ dominates as u → 0: K = {1} at any
  ζ < ½ (only the giant step learns non-linear functions of κ).

The readout then sees the random features σ(W0 x) (the bulk is unchanged in the limit) and the
free features He_k(κ). Fitting those exactly first (Frisch–Waugh), the test error is that of
random features learning the residual target y − P(κ), P the projection of E[y | κ] on
span{He_k : k ∈ K}: the fixed point of :func:`twolayer.onestep.theory.solve` with no spike
(r_s = 0, bulk 1) and the teacher tables h, h² replaced by those of the residual.

The step direction is that of (1/n0) Σ_μ ρ_μ x_μ with ρ = y − f0 the residual at the start
(f0 = E σ(z) for a constant second layer, 0 for a Gaussian one), so its alignment with θ is
γ = μ1⋆/√(μ1⋆² + E ρ²/α0).

Exact in the limit d → ∞ at fixed α0, α, β, λ, for 0 < ζ < ½ off the thresholds
ζ = (k − 1)/(2k), one step, μ1 ≠ 0 (without it the step makes no spike). The approach is slow:
the weakest emerging spike grows as d^(k(ζ − ½) + ½), so simulations at d ~ 10³ lie between
this limit and random features; the comparison is in the one-step model's documentation.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import replace

import numpy as np
import xarray as xr

from twolayer import activations, gaussian
from twolayer.errors import ModelAssumptionError, ParameterError
from twolayer.onestep.spectrum import StepMap, mp_rule
from twolayer.params import OnestepTheory

_theory = importlib.import_module("twolayer.onestep.theory")  # the package exports a function

__all__ = ["MAX_DEGREE", "alignment", "emerging_degrees", "equivalent_model_error",
           "growing_theory", "orders", "second_step_outliers", "threshold"]

MAX_DEGREE = 20  # the most Hermite degrees the limit keeps (ζ up to 20/42 ≈ 0.476)
_TINY = 1e-9


def threshold(k: int) -> float:
    """ζ above which the feature spike of degree k is infinite in the limit: (k − 1)/(2k)."""
    return (k - 1) / (2 * k)


def orders(zeta: float) -> int:
    """ℓ(ζ) = #{k ≥ 1 : k(1 − 2ζ) < 1}, the degrees whose spike is infinite in the limit (before
    asking whether μ_k ≠ 0); ζ lies in ((ℓ − 1)/2ℓ, ℓ/(2ℓ + 2)]."""
    return math.ceil(1.0 / (1.0 - 2.0 * zeta)) - 1


def emerging_degrees(student: str, zeta: float, a_init: str = "gaussian") -> list[int]:
    """The Hermite degrees k the readout learns freely in the limit (see the module docstring).

    Raises ParameterError on a threshold ζ = (k − 1)/(2k) (a spike of order one there: the limit
    is not this theory) and where more than ``MAX_DEGREE`` degrees emerge.
    """
    if not 0 < zeta < 0.5:
        raise ParameterError(f"the growing-step limit needs 0 < eta_exponent < 0.5; got {zeta:g}")
    ell = orders(zeta)
    if ell > MAX_DEGREE:
        raise ParameterError(f"eta_exponent = {zeta:g} lets {ell} Hermite degrees emerge (at most "
                             f"{MAX_DEGREE} are kept); use a smaller one, or 0.5 (the giant step)")
    for k in range(1, ell + 2):
        if abs(zeta - threshold(k)) < 1e-9:
            raise ParameterError(f"eta_exponent = {zeta:g} is the threshold (k-1)/(2k) of degree "
                                 f"{k}, where that spike is of order one and the limit theory does "
                                 "not hold; move off it")
    s = activations.get(student)
    if abs(s.mu(1)) < _TINY:
        raise ModelAssumptionError(f"student {s.name!r} has mu1 = E sigma'(z) = 0: the step "
                                   "makes no spike")
    if a_init == "constant":
        return [1]
    return [k for k in range(1, ell + 1) if abs(s.mu(k)) > _TINY]


def second_step_outliers(student: str, zeta1: float, zeta2: float,
                         a_init: str = "gaussian") -> list[int]:
    """The orders m ≥ 1 whose outlier the second of two steps adds to W (Moniri and Hassani
    2026, arXiv 2605.17767: ⌊ζ2/(½ − ζ1)⌋ of them): at the second step σ'(w0_j·x + u_j κ1)
    expands in (u_j κ1)^m, and the order-m term is the rank-one (a ∘ u^∘m) ⊗ E[ρ κ1^m x] μ_{m+1}/m!
    with u_j ∝ d^(ζ1 − ½) a_j; its singular value over W's O(1) bulk grows as
    d^(ζ2 + m(ζ1 − ½)), so it is an outlier in the limit when m(½ − ζ1) < ζ2 and μ_{m+1} ≠ 0.
    Its left vector is a^(m+1), independent of a's for a Gaussian a; with a constant a every
    order adds to the one spike (none is returned). The first step's spike (m = 0) is not
    counted."""
    if a_init == "constant" or not (0 <= zeta1 < 0.5 and 0 <= zeta2 <= 0.5):
        return []
    s = activations.get(student)
    top = min(MAX_DEGREE, math.ceil(zeta2 / (0.5 - zeta1) - 1e-9) - 1)  # m < ratio, strictly
    return [m for m in range(1, top + 1) if abs(s.mu(m + 1)) > _TINY]


def alignment(student: str, teacher: str, alpha0: float, noise: float = 0.0,
              a_init: str = "gaussian") -> StepMap:
    """The limit's sRF parameters: bulk 1, no spike, alignment γ = μ1⋆/√(μ1⋆² + E ρ²/α0) of the
    step direction with θ (ρ = y − f0: f0 = μ0 for a constant second layer, 0 for a Gaussian)."""
    s, t = activations.get(student), activations.get(teacher)
    f0 = s.mu(0) if a_init == "constant" else 0.0
    resid_var = t.second_moment - 2 * f0 * t.mu(0) + f0 * f0 + noise
    if alpha0 <= 0:
        return StepMap(1.0, 1.0, 0.0, 0.0, resid_var)
    gamma = t.mu(1) / math.sqrt(t.mu(1) ** 2 + resid_var / alpha0)
    return StepMap(1.0, 1.0, 0.0, gamma, resid_var)


def growing_theory(prm: OnestepTheory) -> xr.Dataset:
    """The d = ∞ test error after one step with η̃ = eta·d^(ζ − ½), 0 < ζ < ½ (module docstring).

    Returns the Dataset of :func:`twolayer.onestep.theory.theory` (same variables and schema),
    with the attributes ``degrees`` (the learned Hermite degrees K) and ``learned_variance``
    (the part of E y² the free features explain, Σ_{k∈K} ⟨E[y|κ], He_k⟩²/k!); the validity
    indicators are 0 (η̃ → 0: the step's noise part and its bulk shrink vanish).
    """
    if not prm.d_inf:
        raise ParameterError("the growing-step theory (eta_exponent < 0.5) is the d = inf limit; "
                             "use --d inf, or simulate at finite d")
    if len(prm.steps) != 1:
        raise ParameterError("the growing-step theory takes one step; got "
                             f"{len(prm.steps)} (alpha0, eta) pairs")
    (a0, eta), = prm.steps
    if a0 == 0 or eta == 0:
        raise ParameterError("eta_exponent needs a step (alpha0 > 0 and eta > 0); without one "
                             "this is random features")
    degrees = emerging_degrees(prm.student, prm.eta_exponent, prm.a_init)
    sm = alignment(prm.student, prm.teacher, a0, prm.noise, prm.a_init)
    tab = _theory.channel_tables(prm.student, prm.teacher, sm, n_kappa=prm.n_kappa)
    proj = np.zeros_like(tab.kappa)
    learned = 0.0
    for k in degrees:
        he = gaussian.hermite(k, tab.kappa)
        coef = float(np.sum(tab.weight * tab.h * he)) / math.factorial(k)
        proj += coef * he
        learned += coef * coef * math.factorial(k)
    tab = replace(tab, h=tab.h - proj, hh=tab.hh - 2 * proj * tab.h + proj * proj)
    rule = mp_rule(prm.beta, 1.0, prm.n_spectrum)
    alphas, lams = np.array(prm.alpha), np.array(prm.lam)
    sol = _theory.solve(tab, rule, alphas, lams, beta=prm.beta, noise=prm.noise,
                           tol=prm.tol, max_iter=prm.max_iter)
    return _theory.dataset([sol], alphas, lams, prm, rule.label, sm, None,
                              degrees=np.array(degrees), learned_variance=learned,
                              noise_ratio=0.0, noncentred=0.0)


def equivalent_model_error(student: str, teacher: str, d: int, alpha: float, lam: float,
                           degrees, gamma: float, seeds: int = 4, *, strength: float = 30.0,
                           n_test: int = 20000, seed: int = 7) -> tuple[float, float]:
    """Test error (mean, s.e. over ``seeds``) of the limit's equivalent model, simulated at d:
    ridge (penalty λ, n = round(α·d) samples, p = d) on the random features σ(W0 x)/√p plus the
    strong explicit features strength·He_k(v̂·x)/√k!, k in ``degrees``, v̂ a unit vector at
    alignment γ with θ. An independent check of :func:`growing_theory`'s reduction (run i draws
    from ``default_rng([seed, i])``)."""
    s, t = activations.get(student), activations.get(teacher)
    p, n = d, max(1, round(alpha * d))
    errs = []
    for i in range(seeds):
        rng = np.random.default_rng([seed, i])
        theta = rng.standard_normal(d)
        theta /= np.linalg.norm(theta)
        xi = rng.standard_normal(d)
        xi -= (xi @ theta) * theta
        v = gamma * theta + math.sqrt(1 - gamma**2) * xi / np.linalg.norm(xi)
        w0 = rng.standard_normal((p, d))
        w0 /= np.linalg.norm(w0, axis=1, keepdims=True)

        def feats(x, v=v, w0=w0):
            k = x @ v
            extra = [strength * gaussian.hermite(m, k) / math.sqrt(math.factorial(m))
                     for m in degrees]
            return np.hstack([s.fn(x @ w0.T) / math.sqrt(p), np.stack(extra, axis=1)])

        x = rng.standard_normal((n, d))
        z = feats(x)
        a = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ t.fn(x @ theta))
        xt = rng.standard_normal((n_test, d))
        errs.append(float(np.mean((t.fn(xt @ theta) - feats(xt) @ a) ** 2)))
    return float(np.mean(errs)), float(np.std(errs, ddof=1) / math.sqrt(seeds))

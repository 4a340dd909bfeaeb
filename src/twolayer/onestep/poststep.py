"""The conditional Gaussian-equivalence theory applied to the actual post-step weights.

The d = ∞ theory (:mod:`twolayer.onestep.theory`) replaces W1 by a spiked surrogate
√c·W0' + r_s 1 ĝᵀ with a Marchenko–Pastur bulk and uniform rows. Here the same fixed point
(:func:`~twolayer.onestep.theory.solve`) is fed by the real W1 of a simulated step instead: for a
unit direction ĝ (default: the mean row of W1 − W0) write each row w1_j = s_j ĝ + w⊥_j and

- spike     r_s = mean_j s_j (ĝ's sign makes it ≥ 0); the bulk W = W1 − r_s 1 ĝᵀ, so that
  W ĝ = s − r_s 1 carries the per-row spike fluctuations;
- bulk      c = mean_j ‖w_j‖² (W's mean squared row norm), Ω = W Π Wᵀ = W1 Π W1ᵀ with
  Π = I − ĝĝᵀ, eigenpairs (D_i, u_i) (one p × p eigendecomposition, O(p³));
- weights   F'_i = p (u_iᵀ W ĝ)², H'_i = p (u_iᵀ W1 ζ̂)², ζ̂ = Πθ/‖Πθ‖, as in
  :func:`~twolayer.onestep.spectrum.finite_rule`, and the cross weights
  X'_i = p (u_iᵀ W ĝ)(u_iᵀ W1 ζ̂) (zero on average in the surrogate);
- alignment γ = ĝ·θ.

The surrogate's finite-d rule is the same construction on √c·W0 with r_s, γ from the step map;
the two differ only by the structure the step leaves in W1 (a bulk spectrum that is not a scaled
Marchenko–Pastur law, projections F', H' that are not spread evenly, measured r_s, c, γ). At η̃ = 0
W1 = W0 and the rule is that of random features with the same W0. The model still assumes the
spike is rank one and the same μ0(κ), μ1(κ) for every row; ``spike_spread`` (std of s_j over
r_s) and ``row_spread`` (std of ‖w_j‖² over c) report how far the rows are from that.

Measured: this closes the surrogate's gap at large η̃²/α0 (tanh/tanh η̃²/α0 = 8: −6% → +0.7%
± 0.9%; relu/tanh η̃²/α0 = 2: +6.3% → +1.5% ± 0.8%; d = 2000; see the one-step model's
documentation). For a σ with E σ'' ≠ 0 the
cross weights are needed: the part of the step linear in W0, W0·(I + η̃ E σ'' S_ρ) with
S_ρ = (1/n0) Σ_μ ρ_μ x_μ x_μᵀ, correlates W ĝ with W ζ̂ (correlation ≈ 0.2 for relu/tanh).

:func:`post_step_theory` draws W0 and the step exactly as :func:`twolayer.onestep.simulate`
does (run i uses ``default_rng([seed, i])``: the same W1 as the simulation's run i), so its
errors pair seed by seed with the simulation's.
"""

from __future__ import annotations

import importlib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from twolayer import activations
from twolayer.errors import ConvergenceWarning, ParameterError
from twolayer.onestep.simulate import _giant_step
from twolayer.onestep.spectrum import SpectralRule, StepMap, step_map, step_maps, weights_rule
from twolayer.params import OnestepSimulate, takes
from twolayer.results import stamp

__all__ = ["PostStep", "post_step_rule", "post_step_theory", "step_samples", "stepped_weights",
           "the_step"]

_theory = importlib.import_module("twolayer.onestep.theory")


@dataclass(frozen=True)
class PostStep:
    """The spectral rule and the measured sRF parameters of one post-step W1."""

    rule: SpectralRule
    step: StepMap  # measured bulk_scale √c, spike r_s, alignment γ (bulk_shrink: the map's c₀)
    spike_spread: float  # std_j(s_j) / r_s
    row_spread: float  # std_j ‖w_j‖² / c


def post_step_rule(w1: np.ndarray, theta: np.ndarray, direction: np.ndarray,
                   spike: float | None = None, *, bulk_shrink: float = math.nan,
                   residual_var: float = math.nan) -> PostStep:
    """Decompose W1 (p × d) along the unit ``direction`` ĝ (see the module docstring).

    ``spike`` fixes r_s (default: the mean of W1 ĝ; ĝ is flipped to make it ≥ 0).
    ``bulk_shrink`` and ``residual_var`` are only carried into the returned :class:`StepMap`.
    """
    w1 = np.asarray(w1, float)
    rule, g, spike = weights_rule(w1, theta, direction, spike)
    s = w1 @ g
    wv = s - spike  # W ĝ for the bulk W = W1 − r_s 1 ĝᵀ
    rows = np.sum(w1 * w1, axis=1) - s * s + wv * wv  # ‖w_j‖² of the bulk rows
    c = float(rows.mean())
    sm = StepMap(math.sqrt(c), bulk_shrink, spike, float(g @ theta), residual_var)
    spread = float(np.std(s) / spike) if spike > 0 else math.nan
    return PostStep(rule, sm, spread, float(np.std(rows) / c))


def the_step(prm: OnestepSimulate) -> tuple[float, float]:
    """(α0, η̃) of the one step :func:`step_samples` draws (η̃ at the parameters' d); a
    ParameterError for several steps or a second layer that differs between rows."""
    if len(prm.steps) != 1:
        raise ParameterError("step_samples takes one giant step; got "
                             f"{len(prm.steps)} (alpha0, eta) pairs")
    (step,) = _the_steps(prm)
    return step


def _the_steps(prm: OnestepSimulate) -> list[tuple[float, float]]:
    """(α0_t, η̃_t) of every step at the parameters' d; a ParameterError for a second layer
    that differs between rows (the spike is then not one vector shared by all rows)."""
    if prm.a_init != "constant":
        raise ParameterError("the post-step theory assumes the same spike in every row (a "
                             "constant second layer during the step); got a_init "
                             f"{prm.a_init!r}")
    return list(prm.steps_at(prm.d))


def stepped_weights(prm: OnestepSimulate, run: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(θ, W0, W) of the simulation's run ``run``: W after all its steps, drawn exactly as
    :func:`simulate` draws them (θ, W0, then each step's samples and label noise in turn)."""
    steps = _the_steps(prm)
    s = activations.get(prm.student)
    rng = np.random.default_rng([prm.seed, run])
    theta, w0 = _draw_start(prm, rng)
    w = w0
    for a0, eta in steps:
        n0 = round(a0 * prm.d)
        if n0 == 0 or eta == 0:
            continue
        w = _giant_step(s, w, *_draw_step(prm, rng, theta, n0), eta)
        if not np.max(np.abs(w)) < 1e100:
            raise ParameterError(f"the step with eta = {eta:g} overflowed; use a smaller eta")
    return theta, w0, w


def step_samples(prm: OnestepSimulate, run: int):
    """(θ, W0, X0, y0) of the simulation's run ``run`` (one step): the teacher, the initial
    first layer and the step's n0 × d inputs and labels (X0 = y0 = None when there is no step)."""
    a0, eta = the_step(prm)
    rng = np.random.default_rng([prm.seed, run])
    theta, w0 = _draw_start(prm, rng)
    n0 = round(a0 * prm.d)
    if n0 == 0 or eta == 0:
        return theta, w0, None, None
    return theta, w0, *_draw_step(prm, rng, theta, n0)


def _draw_start(prm: OnestepSimulate, rng) -> tuple[np.ndarray, np.ndarray]:
    """θ (unit) and W0 (rows uniform on the sphere), in the simulation's order."""
    theta = rng.standard_normal(prm.d)
    theta /= np.linalg.norm(theta)
    w0 = rng.standard_normal((prm.width, prm.d))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    return theta, w0


def _draw_step(prm: OnestepSimulate, rng, theta, n0: int) -> tuple[np.ndarray, np.ndarray]:
    """One step's n0 × d inputs and their labels (label noise drawn after the inputs)."""
    x0 = rng.standard_normal((n0, prm.d))
    y0 = activations.get(prm.teacher).fn(x0 @ theta)
    if prm.noise > 0:
        y0 = y0 + math.sqrt(prm.noise) * rng.standard_normal(n0)
    return x0, y0


@takes(OnestepSimulate)
def post_step_theory(prm: OnestepSimulate, *, n_kappa: int = 96, tol: float = 1e-10,
                     max_iter: int = 5000) -> xr.Dataset:
    """The sRF fixed point on the real W1 of each of the simulation's runs (finite d).

    Takes the parameters of :func:`twolayer.onestep.simulate` (``n_test`` and ``float32`` are
    unused); run i has the W1 of the simulation's run i, so the errors pair seed by seed. ĝ is
    the mean row of W1 − W0; at η̃ = 0 (random features) r_s = 0 and ĝ is a random direction.
    Cost per run: the step(s) and one p × p eigendecomposition.

    Several steps (``alpha0``/``eta`` lists): W1 is the first layer after the last step, drawn
    as the simulation draws it. The spike stays one vector shared by every row (a constant
    second layer), so the same decomposition applies; the ``map_*`` attributes are those of
    :func:`~twolayer.onestep.spectrum.step_maps` after the last step.

    Returns a Dataset with ``test_error``, ``train_error``, ``converged`` on (seed, alpha, lam),
    ``test_error_mean`` and ``test_error_std`` (ddof = 1), and on (seed,) the measured
    ``spike`` (r_s), ``bulk_scale`` (√c), ``alignment`` (γ), ``spike_spread``, ``row_spread``
    next to the d = ∞ step map's values in the attributes (``map_spike``, …). Attributes also
    carry the validity indicators ``noise_ratio`` = η̃²/α0 and ``noncentred`` = c₀ − 1.
    """
    alphas, lams = np.array(prm.alpha), np.array(prm.lam)
    steps = _the_steps(prm)
    a0s, etas = zip(*steps, strict=True)
    if len(steps) == 1:
        sm = step_map(prm.student, prm.teacher, a0s[0], etas[0], prm.noise)
    else:
        sm = step_maps(prm.student, prm.teacher, a0s, etas, prm.noise, n_kappa=n_kappa)[-1]
    rf = all(eta == 0 or round(a0 * prm.d) == 0 for a0, eta in steps)
    runs = []
    for i in range(prm.seeds):
        theta, w0, w1 = stepped_weights(prm, i)
        if rf:
            v = np.random.default_rng([prm.seed, i, 1]).standard_normal(prm.d)
            v -= (v @ theta) * theta
            ps = post_step_rule(w1, theta, v, spike=0.0, bulk_shrink=1.0,
                                residual_var=sm.residual_var)
        else:
            ps = post_step_rule(w1, theta, (w1 - w0).mean(0), bulk_shrink=sm.bulk_shrink,
                                residual_var=sm.residual_var)
        tab = _theory.channel_tables(prm.student, prm.teacher, ps.step, n_kappa=n_kappa)
        sol = _theory.solve(tab, ps.rule, alphas, lams, beta=prm.width / prm.d,
                            noise=prm.noise, tol=tol, max_iter=max_iter)
        runs.append((ps, sol))
    dims = ("seed", "alpha", "lam")
    conv = np.stack([s["converged"] for _, s in runs])
    te = np.stack([np.where(s["converged"], s["test_error"], np.nan) for _, s in runs])
    tr = np.stack([np.where(s["converged"], s["train_error"], np.nan) for _, s in runs])
    n = prm.seeds
    ds = xr.Dataset(
        {
            "test_error": (dims, te),
            "train_error": (dims, tr),
            "converged": (dims, conv),
            "test_error_mean": (dims[1:], te.mean(0)),
            "test_error_std": (dims[1:], te.std(0, ddof=1) if n > 1 else 0.0 * te[0]),
            "spike": (("seed",), np.array([p.step.spike for p, _ in runs])),
            "bulk_scale": (("seed",), np.array([p.step.bulk_scale for p, _ in runs])),
            "alignment": (("seed",), np.array([p.step.alignment for p, _ in runs])),
            "spike_spread": (("seed",), np.array([p.spike_spread for p, _ in runs])),
            "row_spread": (("seed",), np.array([p.row_spread for p, _ in runs])),
        },
        coords={"seed": np.arange(n), "alpha": alphas, "lam": lams},
    )
    status, message = "ok", ""
    n_bad = int((~conv).sum())
    if n_bad:
        status = "not_converged"
        message = (f"the post-step fixed point did not converge at {n_bad} of {conv.size} "
                   "(seed, alpha, lam) points; they hold NaN. Try a larger max_iter")
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
    return stamp(ds, prm, status, message, p=prm.width, spectrum="post-step",
                 map_spike=sm.spike, map_bulk_scale=sm.bulk_scale, map_alignment=sm.alignment,
                 bulk_shrink=sm.bulk_shrink, **_theory.validity(a0s, etas, sm))


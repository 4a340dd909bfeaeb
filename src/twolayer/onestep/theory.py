"""Asymptotic test error of the network after one giant step: the spiked random-features theory.

Model (Cui et al. 2024, arXiv 2402.04980; the fixed point below is the characterisation of
their Result 3.3, arXiv v1 numbering, generalised to any β): x ~ N(0, I_d),
y = σ⋆(θ·x) + √Δ ξ; after the step the features are σ(W1 x) with W1 = √c·W0 + r_s 1 ĝᵀ (see
:mod:`twolayer.onestep.spectrum`); the readout a minimises Σ_μ (y_μ − aᵀσ(W1 x_μ)/√p)² + λ‖a‖²
on n = α·d samples; the error is the test MSE E(y − f)² (label noise included).

Conditional Gaussian equivalence: given κ = ĝ·x, σ(r_s κ + h_j) ≈ μ0(κ) + μ1(κ) h_j + μ2(κ) ξ_j,
with μ0(κ) = E σ(r_s κ + √c z), μ1(κ) = E[σ(r_s κ + √c z) z]/√c and
μ2(κ)² = E σ² − μ0(κ)² − c μ1(κ)². The teacher is σ⋆(γκ + √(1−γ²) τ), τ ⟂ κ. The replica
saddle point of ridge regression on these features closes on the order parameters

    q1 = aᵀΩa/p, q2 = ‖a‖²/p, V1, V2, ϑ = aᵀW v̂/√p, ψ = aᵀW ζ̂/√p, m = aᵀ1/√p

and their conjugates. With ⟨·⟩ the spectral averages of :class:`SpectralRule` (over the
eigenvalues D of Ω = WΠWᵀ), S = λ + V̂1 D + V̂2, V(κ) = μ1²V1 + μ2²V2,
c(κ) = μ0 m + μ1 κ ϑ and the residual E(κ) = E_τ[(y − c − μ1ψτ)²] + μ1²(q1 − ψ²) + μ2² q2:

    q1 = ⟨D (q̂1 D + q̂2 + ϑ̂²F' + ψ̂²H' + 2ϑ̂ψ̂X')/S²⟩   q2 = ⟨(q̂1 D + q̂2 + …same…)/S²⟩
    V1 = ⟨D/S⟩,  V2 = ⟨1/S⟩,  ϑ = ϑ̂ ⟨F'/S⟩ + ψ̂ ⟨X'/S⟩,  ψ = ψ̂ ⟨H'/S⟩ + ϑ̂ ⟨X'/S⟩
    q̂1,2 = (α/β) E_κ[μ1,2² E(κ)/(1+V)²]         V̂1,2 = (α/β) E_κ[μ1,2²/(1+V)]
    ϑ̂ = (α/β) E_κ[κ μ1 (h − c)/(1+V)]           ψ̂ = (α/β) E_κ[μ1 h1/(1+V)]
    m = E_κ[μ0 (h − μ1κϑ)/(1+V)] / E_κ[μ0²/(1+V)]

with h(κ) = E_τ σ⋆, h1(κ) = E_τ[τ σ⋆]. Test error ε_g = E_κ E(κ); training error
E_κ[E(κ)/(1+V)²]. At β = 1 this is the system of the reference notebook; the factor α/β
(n/p) and the spectral weights F', H' generalise it to any β; the cross weights
X'_i = p (u_iᵀWv̂)(u_iᵀWζ̂) (``SpectralRule.w_cross``) vanish for a bulk independent of θ (the
surrogate) but not for the real post-step W1 of a σ with E σ'' ≠ 0. The system is solved by damped
iteration, vectorised over the whole (α, λ) grid at once; a point whose iterate blows up is
restarted with heavier damping, and reported (NaN, ``converged = False``) if it never settles.
ϑ (``vartheta``, the readout's overlap with the spike direction; θ is the teacher) and m, which
enter linearly, are solved exactly at each step given V (no 1/λ gain). κ = ĝ·x is the input's
projection on the spike direction throughout (the step map's E σ'' is called μ2).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from twolayer import activations, gaussian
from twolayer.errors import ConvergenceWarning, ModelAssumptionError, ParameterError
from twolayer.onestep import stepbulk
from twolayer.onestep.spectrum import (
    SpectralRule,
    StepMap,
    finite_rule,
    mp_rule,
    step_map,
    step_maps,
)
from twolayer.params import OnestepTheory, takes
from twolayer.results import stamp

__all__ = ["ChannelTables", "channel_tables", "solve", "theory", "validity"]

_ORDER = ("q1", "q2", "V1", "V2", "vartheta", "psi", "m")
_MAX_RESTARTS = 6


@dataclass(frozen=True)
class ChannelTables:
    """The κ-dependent Gaussian facts on the κ quadrature nodes (computed once per model)."""

    kappa: np.ndarray
    weight: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    mu2: np.ndarray
    h: np.ndarray
    h1: np.ndarray
    hh: np.ndarray


def channel_tables(student, teacher, sm: StepMap, n_kappa: int = 96) -> ChannelTables:
    """μ0,1,2(κ) of the student and h, h1, h² of the teacher on an n_kappa-point Hermite rule."""
    s, t = activations.get(student), activations.get(teacher)
    k, wk = gaussian.hermite_rule(n_kappa)
    sc = sm.bulk_scale
    loc = sm.spike * k
    scale = np.full_like(k, sc)

    def e_student(fz):
        return s.expect(fz, loc=loc, scale=scale)

    mu0 = e_student(lambda z: s.fn(loc[:, None] + sc * z))
    mu1 = e_student(lambda z: s.fn(loc[:, None] + sc * z) * z) / sc
    m2 = e_student(lambda z: s.fn(loc[:, None] + sc * z) ** 2)
    mu2 = np.sqrt(np.clip(m2 - mu0**2 - sc**2 * mu1**2, 0.0, None))
    return ChannelTables(k, wk, mu0, mu1, mu2, *teacher_tables(t, sm.alignment, k))


def teacher_tables(t, alignment: float, k: np.ndarray) -> tuple[np.ndarray, ...]:
    """The teacher σ⋆(γκ + √(1 − γ²) τ) at the nodes κ: h = E_τ σ⋆, h1 = E_τ[τ σ⋆], E_τ σ⋆²."""
    g = alignment
    rho = math.sqrt(max(1.0 - g * g, 1e-300))
    tloc = g * k
    tscale = np.full_like(k, rho)

    def e_teacher(fz):
        return t.expect(fz, loc=tloc, scale=tscale)

    h = e_teacher(lambda z: t.fn(tloc[:, None] + rho * z))
    h1 = e_teacher(lambda z: t.fn(tloc[:, None] + rho * z) * z)
    hh = e_teacher(lambda z: t.fn(tloc[:, None] + rho * z) ** 2)
    return h, h1, hh


def solve(
    tab: ChannelTables,
    rule: SpectralRule,
    alphas: np.ndarray,
    lams: np.ndarray,
    *,
    beta: float = 1.0,
    noise: float = 0.0,
    damping: float = 0.5,
    tol: float = 1e-10,
    max_iter: int = 5000,
) -> dict[str, np.ndarray]:
    """Solve the fixed point for every (α, λ) at once (arrays of shape (len(alphas), len(lams))).

    ``rule`` is a :class:`SpectralRule` (nodes and weights of the bulk averages) or anything with
    ``stieltjes(z)`` (:class:`~twolayer.onestep.stepbulk.StepBulk`: the averages from the
    transforms at z0 = −(λ + V̂2)/V̂1); both through :func:`_bulk_averages`.

    Returns the order parameters, ``test_error``, ``train_error``, ``converged``,
    ``iterations`` (per point) and ``residual`` (max |update| at the last iteration).
    """
    A = (np.asarray(alphas, float) / beta)[:, None, None]  # n/p
    lam = np.asarray(lams, float)[None, :, None]
    shape = (len(alphas), len(lams))
    K = tab.kappa[None, None, :]
    wk = tab.weight
    mu0, mu1, mu2, h, h1 = (x[None, None, :] for x in (tab.mu0, tab.mu1, tab.mu2, tab.h, tab.h1))
    hh = tab.hh[None, None, :] + noise
    has_mean = float(np.sum(wk * tab.mu0**2)) > 1e-14

    def initial():
        st = {k: np.zeros(shape) for k in _ORDER}
        st["V1"][:] = 1.0
        st["V2"][:] = 1.0
        return st

    st = initial()
    damp = np.full(shape, float(damping))
    restarts = np.zeros(shape, int)
    converged = np.zeros(shape, bool)
    failed = np.zeros(shape, bool)
    iters = np.zeros(shape, int)
    resid = np.full(shape, np.inf)

    def channel(st):
        q1, q2, V1, V2, th, ps, m = (st[k][..., None] for k in _ORDER)
        V = mu1**2 * V1 + mu2**2 * V2
        c = mu0 * m + mu1 * K * th
        err = hh + c * c - 2 * c * h - 2 * mu1 * ps * h1 + mu1**2 * q1 + mu2**2 * q2
        return V, err

    def E(f):
        return np.sum(f * wk, axis=-1)[..., None]

    for it in range(1, max_iter + 1):
        V, err = channel(st)
        inv = 1.0 / (1.0 + V)
        qh1 = A * E(mu1**2 * err * inv**2)
        qh2 = A * E(mu2**2 * err * inv**2)
        Vh1 = A * E(mu1**2 * inv)
        Vh2 = A * E(mu2**2 * inv)
        bulk = _bulk_averages(rule, lam, Vh1, Vh2)
        gF, gX = bulk["spike"]["1/S"], bulk["cross"]["1/S"]  # ϑ = ϑ̂⟨F'/S⟩ + ψ̂⟨X'/S⟩
        # ϑ and m enter the channel linearly: solve them exactly given V (a naive iteration of
        # ϑ = ϑ̂⟨F'/S⟩ has gain ~1/λ on the null space of Ω when β > 1).
        psh = A * E(mu1 * h1 * inv)
        b_th, e_th = A * E(K**2 * mu1**2 * inv), A * E(K * mu1 * mu0 * inv)
        a_th = A * E(K * mu1 * h * inv)
        if has_mean:
            m00, m0h = E(mu0**2 * inv), E(mu0 * h * inv)
            m01 = E(mu0 * mu1 * K * inv)
            # [1 + gF b, gF e; m01, m00] [θ, m] = [gF a, m0h]
            det = (1 + gF * b_th) * m00 - gF * e_th * m01
            r1 = gF * a_th + gX * psh
            th_new = (r1 * m00 - gF * e_th * m0h) / det
            m_new = ((1 + gF * b_th) * m0h - m01 * r1) / det
        else:
            th_new = (gF * a_th + gX * psh) / (1 + gF * b_th)
            m_new = np.zeros_like(th_new)
        thh = a_th - b_th * th_new - e_th * m_new
        new = _bulk_update(bulk, qh1, qh2, thh, psh, gX)
        new.update(vartheta=th_new[..., 0], m=m_new[..., 0])
        with np.errstate(invalid="ignore"):
            delta = np.max([np.abs(new[k] - st[k]) / (1.0 + np.abs(st[k])) for k in _ORDER], 0)
        active = ~(converged | failed)
        # A point whose iterate blows up restarts from scratch with heavier damping.
        blown = active & ~(delta < 1e6)
        if blown.any():
            restarts[blown] += 1
            failed |= blown & (restarts > _MAX_RESTARTS)
            damp[blown] = 1.0 - 0.5 * (1.0 - damp[blown])
            init = initial()
            for k in _ORDER:
                new[k] = np.where(blown, init[k], new[k])
                st[k] = np.where(blown, init[k], st[k])
            active &= ~blown
        resid[active] = delta[active]
        iters[active] = it
        for k in _ORDER:
            upd = (1 - damp) * new[k] + damp * st[k]
            st[k] = np.where(active, upd, st[k])
        converged |= active & (delta < tol)
        if np.all(converged | failed):
            break

    V, err = channel(st)
    inv = 1.0 / (1.0 + V)
    out = dict(st)
    out["test_error"] = np.sum(err * wk, -1)
    out["train_error"] = np.sum(err * inv**2 * wk, -1)
    out["converged"] = converged & np.isfinite(out["test_error"])
    out["test_error"] = np.where(failed, np.nan, out["test_error"])
    out["train_error"] = np.where(failed, np.nan, out["train_error"])
    out["restarts"] = restarts
    out["iterations"] = iters
    out["residual"] = resid
    return out


def _bulk_averages(rule, lam, vh1, vh2) -> dict[str, dict[str, np.ndarray]]:
    """The bulk averages ⟨f(D)/…⟩ the fixed point needs, S = λ + V̂1 D + V̂2, for each measure
    (``w`` the eigenvalues, ``spike``/``teacher``/``cross`` the weights F', H', X'): ⟨1/S⟩,
    ⟨D/S⟩, ⟨1/S²⟩, ⟨D/S²⟩, ⟨D²/S²⟩, each of shape (…, 1).

    A :class:`SpectralRule` sums over its nodes. Anything with ``stieltjes(z)`` (a
    :class:`~twolayer.onestep.stepbulk.StepBulk`) gives each measure's mass M, G(z0), G'(z0)
    at z0 = −(λ + V̂2)/V̂1, S = V̂1 (D − z0): ⟨1/S⟩ = G/V̂1, ⟨D/S⟩ = (M + z0 G)/V̂1,
    ⟨1/S²⟩ = G'/V̂1², ⟨D/S²⟩ = (G + z0 G')/V̂1², ⟨D²/S²⟩ = (M + 2 z0 G + z0² G')/V̂1².
    """
    kinds = ("1/S", "D/S", "1/S2", "D/S2", "D2/S2")
    if isinstance(rule, SpectralRule):
        d = rule.nodes[None, None, :]
        s1 = 1.0 / (lam + vh1 * d + vh2)
        s2 = s1 * s1
        cross = np.zeros_like(rule.w) if rule.w_cross is None else rule.w_cross
        names = ("w", "spike", "teacher", "cross")
        sums = np.stack([s1, d * s1, s2, d * s2, d * d * s2]) @ np.stack(
            [rule.w, rule.w_spike, rule.w_teacher, cross]).T  # (kind, α, λ, measure)
        return {name: {k: sums[i, ..., j, None] for i, k in enumerate(kinds)}
                for j, name in enumerate(names)}
    z0 = -(lam + vh2) / vh1
    out = {}
    for name, (mass, g, dg) in rule.stieltjes(z0).items():
        out[name] = {"1/S": g / vh1, "D/S": (mass + z0 * g) / vh1, "1/S2": dg / vh1**2,
                     "D/S2": (g + z0 * dg) / vh1**2,
                     "D2/S2": (mass + 2 * z0 * g + z0 * z0 * dg) / vh1**2}
    return out


def _bulk_update(bulk, qh1, qh2, thh, psh, gX) -> dict[str, np.ndarray]:
    """q1, q2, V1, V2, ψ of the fixed point from the averages of :func:`_bulk_averages`
    (per measure: w the eigenvalues, which q̂1, q̂2 multiply; spike, teacher, cross the weights
    F', H', X' that ϑ̂², ψ̂², 2ϑ̂ψ̂ multiply)."""
    def mean2(f):
        return (thh**2 * bulk["spike"][f] + psh**2 * bulk["teacher"][f]
                + 2 * thh * psh * bulk["cross"][f])

    w = bulk["w"]
    new = {"q1": qh1 * w["D2/S2"] + qh2 * w["D/S2"] + mean2("D/S2"),
           "q2": qh1 * w["D/S2"] + qh2 * w["1/S2"] + mean2("1/S2"),
           "V1": w["D/S"], "V2": w["1/S"], "psi": psh * bulk["teacher"]["1/S"] + thh * gX}
    return {k: v[..., 0] for k, v in new.items()}


@takes(OnestepTheory)
def theory(prm: OnestepTheory) -> xr.Dataset:
    """Spiked-RF test error of the one-step network over a grid of α (n/d) and λ.

    ``d="inf"`` integrates over the Marchenko–Pastur bulk (no random matrix), or with
    ``bulk="step"`` (constant a, any number of steps) over the steps' own bulk
    (:mod:`twolayer.onestep.stepbulk`, which closes the surrogate's gap at large η̃²/α0); an
    integer ``d`` draws ``draws`` finite bulks of size p = round(β·d) (O(p³) each, as the
    reference notebook) from ``seed`` and averages the errors over them. η̃ = 0 is the
    random-features baseline.

    Returns a Dataset on dims (alpha, lam) [, draw]: ``test_error``, ``train_error``, the order
    parameters, ``converged``, ``iterations``, ``residual``; attributes: the result schema of
    :mod:`twolayer.results` (status ``not_converged`` where the fixed point missed ``tol``, with
    a :class:`ConvergenceWarning`; such points hold NaN), ``spectrum`` and the sRF parameters of
    the step (``bulk_scale``, ``bulk_shrink``, ``spike``, ``alignment``, ``even_coupling``)
    and the validity indicators of :func:`validity` (``noise_ratio`` = η̃²/α0, summed over
    the steps, ``noncentred`` = c₀ − 1 of the last step).

    Several steps (``alpha0``/``eta`` lists): the sRF parameters are those after the last step
    (:func:`~twolayer.onestep.spectrum.step_maps`), and the Dataset adds the state after each
    step on dim ``step``: ``step_spike``, ``step_alignment``, ``step_direction_overlap`` (dims
    step, step_b), ``step_bulk_scale``, ``step_even_coupling``.

    ``a_init="gaussian"`` (a_j ~ N(0, 1) during one or two giant steps, d = ∞): every neuron has
    its own spike and bulk scale, and the fixed point runs over neuron types
    (:func:`twolayer.onestep.typed.gaussian_a_theory`; no order parameters in the Dataset; after
    two steps the spikes span r = 2 + M directions, attribute ``spike_directions``).
    """
    stepped = any(a0 > 0 and eta > 0 for a0, eta in prm.steps)  # else random features
    step_bulk = stepped and prm.bulk == "step"
    if step_bulk:
        _check_step_bulk(prm)
    if stepped and prm.growing and (prm.d_inf or prm.a_init == "gaussian"):
        from twolayer.onestep.growing import growing_theory

        return growing_theory(prm)
    if stepped and prm.a_init == "gaussian":  # every neuron its own spike: neuron types
        from twolayer.onestep.typed import gaussian_a_theory

        return gaussian_a_theory(prm)
    alphas, lams = np.array(prm.alpha), np.array(prm.lam)
    # growing at a finite d (constant a): the giant-step theory at η̃ = eta·d^(ζ − ½)
    a0s, etas = zip(*(prm.steps_at(prm.d) if prm.growing and not prm.d_inf else prm.steps),
                    strict=True)
    if len(a0s) == 1:  # one step: the closed-form map, exactly as before
        maps = [step_map(prm.student, prm.teacher, a0s[0], etas[0], prm.noise)]
    else:
        maps = step_maps(prm.student, prm.teacher, a0s, etas, prm.noise, n_kappa=prm.n_kappa)
    sm = maps[-1]
    tab = channel_tables(prm.student, prm.teacher, sm, n_kappa=prm.n_kappa)
    if step_bulk:
        rules = [stepbulk.step_bulk(prm.student, prm.teacher, a0s, etas, prm.beta, prm.noise)]
    elif prm.d_inf:
        rules = [mp_rule(prm.beta, sm.bulk_scale**2, prm.n_spectrum)]
    else:
        rng = np.random.default_rng(prm.seed)
        rules = [finite_rule(prm.d, prm.width, sm.bulk_scale**2, rng)
                 for _ in range(prm.draws)]
    sols = [
        solve(tab, r, alphas, lams, beta=prm.beta, noise=prm.noise, tol=prm.tol,
              max_iter=prm.max_iter)
        for r in rules
    ]
    return dataset(sols, alphas, lams, prm, rules[0].label, sm,
                   _per_step(maps) if len(maps) > 1 else {}, **validity(a0s, etas, sm))


def _check_step_bulk(prm: OnestepTheory) -> None:
    """``bulk="step"`` is the d = ∞ bulk of giant steps with a constant second layer."""
    if not prm.d_inf:
        raise ParameterError(
            "bulk 'step' is the d = inf theory of the step's own bulk; at a finite d use the "
            "post-step theory (twolayer.onestep.post_step_theory), or bulk 'mp'")
    if prm.growing or prm.a_init != "constant":
        raise ModelAssumptionError(
            "bulk 'step' is built for giant steps with a constant second layer (no "
            "eta_exponent, a_init constant); use bulk 'mp' for the others")


def dataset(sols: list[dict], alphas, lams, prm, spectrum: str, sm: StepMap,
            per_step: dict | None = None, **attrs) -> xr.Dataset:
    """The result of one or several solutions of :func:`solve` (several: averaged over draws),
    with the schema of :mod:`twolayer.results` and the sRF parameters ``sm`` as attributes."""
    dims = ("alpha", "lam")
    data = {}
    for key in (k for k in (*_ORDER, "test_error", "train_error", "residual") if k in sols[0]):
        stack = np.stack([s[key] for s in sols])
        data[key] = (dims, stack.mean(0))
        if len(sols) > 1 and key == "test_error":
            data["test_error_draws"] = (("draw", *dims), stack)
    data["converged"] = (dims, np.all([s["converged"] for s in sols], axis=0))
    data["iterations"] = (dims, np.max([s["iterations"] for s in sols], axis=0))
    data.update(per_step or {})
    ds = xr.Dataset(data, coords={"alpha": alphas, "lam": lams})
    for key in ("test_error", "train_error"):  # an unconverged iterate is not a value
        ds[key] = ds[key].where(ds["converged"])
    n_bad = int((~ds["converged"].values).sum())
    status, message = "ok", ""
    if n_bad:
        status = "not_converged"
        worst_resid = float(np.nanmax(ds["residual"].values))
        message = (f"the sRF fixed point did not converge at {n_bad} of {ds['converged'].size} "
                   f"(alpha, lam) points (max residual {worst_resid:.2e}, tol {prm.tol:g}); "
                   "they hold NaN. Try a larger max_iter or a looser tol; small lam with alpha "
                   "near the interpolation peak converges slowest")
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
    return stamp(ds, prm, status, message, spectrum=spectrum,
                 **{k: float(v) for k, v in sm.as_dict().items()}, **attrs)


def _per_step(maps: list[StepMap]) -> dict:
    """The recursion's state after each step, on (step[, step_b]), named as the simulation's
    diagnostics: ``step_spike`` r_t (compare ``step_sv``), ``step_alignment`` |γ_t| (compare
    ``step_overlap``), ``step_direction_overlap`` |ĝ_t·ĝ_t'|, ``step_bulk_scale`` √c_t and
    ``step_even_coupling`` ε_t."""
    n = len(maps)
    dirs = np.zeros((n, n + 1))
    for i, m in enumerate(maps):
        dirs[i, : len(m.direction)] = m.direction
    return {"step_spike": (("step",), np.array([abs(m.spike) for m in maps])),
            "step_alignment": (("step",), np.array([abs(m.alignment) for m in maps])),
            "step_direction_overlap": (("step", "step_b"), np.abs(dirs @ dirs.T)),
            "step_bulk_scale": (("step",), np.array([m.bulk_scale for m in maps])),
            "step_even_coupling": (("step",), np.array([m.even_coupling for m in maps]))}


def validity(alpha0, eta, sm: StepMap) -> dict[str, float]:
    """Where the spiked surrogate is known to be off: ``noise_ratio`` = η̃²/α0 (the strength of
    the step's noise part, which lives in the span of the n0 step samples and depends on W0;
    0 without a step, η̃ = 0 or α0 = 0) and ``noncentred`` = c₀ − 1 (the bulk shrink of a
    non-centred σ). Measured against simulation (α = 2, λ = 0.01, d = p = 2000, 8 seeds): −3% at
    η̃²/α0 = 2 and −6% at 8 for tanh/tanh (c₀ = 1); relu/tanh +6% at η̃²/α0 = 2 (c₀ − 1 = −1/π)
    and +2% at 0.5 (c₀ − 1 = −1/2π). The table is in the one-step model's documentation.
    Several steps (sequences ``alpha0``, ``eta``): η̃_t²/α0_t summed over the steps (each adds
    its own noise part), c₀ − 1 of the last step (``sm``)."""
    a0s, etas = np.atleast_1d(alpha0), np.atleast_1d(eta)
    ratio = sum(0.0 if e == 0 or a == 0 else e * e / a for a, e in zip(a0s, etas, strict=True))
    return {"noise_ratio": float(ratio), "noncentred": sm.bulk_shrink - 1.0}

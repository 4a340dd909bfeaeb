"""The sRF theory with neuron types: a Gaussian second layer during one giant step.

With a_j ~ N(0, 1) during the step (f = (1/p) Σ_j a_j σ(w_j·x), so f0 → 0 and the residual is
ρ = y), row j moves by a_j times the constant-a update at f0 = 0 (the step map of
:mod:`twolayer.onestep.spectrum` with η̃ → a_j η̃ and μ0 → 0):

    w1_j = b(a_j) w̃_j + a_j r ĝ,   r = η̃ μ1 ‖g‖,   ‖g‖² = μ1⋆² + E y²/α0,   γ = ĝ·θ = μ1⋆/‖g‖,
    b(a)² = (1 + a η̃ μ2 μ0⋆)² + a² η̃² E y² (E σ'² − μ1²)/α0,

with w̃_j of unit norm and isotropic (the surrogate bulk). Every neuron has its own spike
strength a_j r and bulk scale b(a_j), so the conditional Gaussian equivalence (given κ = ĝ·x)
has per-neuron coefficients μ0,1,2(a_j, κ) (those of :func:`twolayer.onestep.theory.
channel_tables` at loc a r κ and scale b(a)). The neurons are grouped in types: the T nodes
of a Gauss–Hermite rule in a, with fractions π_t.

Given κ the features are Gaussian with mean m(κ) + D1(κ) ω κ (ω = Wĝ, entries b_j N(0, 1/d))
and covariance Σ(κ) = D1(κ) Ω D1(κ) + D2(κ)², Ω = W Π Wᵀ = Σ_i w^i w^iᵀ over the d columns of
the bulk. Ridge on this mixture over the K nodes κ_k of a Hermite rule is the replica system of
:func:`twolayer.onestep.theory.solve` resolved per node (k) and per type (t):

- the resolvent Q = (λ + Σ_k c_k Σ(κ_k))⁻¹, c_k = (α/β) w_k/(1 + V_k), is a sum of d i.i.d.
  rank-K terms Y_i C Y_iᵀ (Y_i = [D1(κ_k) w^i]_k). Its deterministic equivalent is diagonal,
  R_t = 1/(Δ_t + b_t² u_tᵀ M u_t), M = (I + CΦ)⁻¹C, Φ = β Σ_t π_t b_t² R_t u_t u_tᵀ (K × K),
  u_t = μ1(a_t, κ_·), Δ_t = λ + Σ_k c_k μ2(a_t, κ_k)²;
- V_k = (1/p) tr Σ(κ_k) Q = [Φ(I + CΦ)⁻¹]_kk/β + Σ_t π_t μ2_tk² R_t;
- the spike overlaps ϑ_k = aᵀD1(κ_k)ω/√p = (Φ ϑ̂)_k, ϑ̂_k = (α/β) w_k κ_k (h_k − c_k)/(1 + V_k);
- the teacher overlaps ψ_k = aᵀD1(κ_k)Wζ̂/√p = (Φ ψ̃)_k, ψ̃ = (I + CΦ)⁻¹ψ̂,
  ψ̂_k = (α/β) w_k h1_k/(1 + V_k) (Wζ̂ is a column of the bulk: Sherman–Morrison on its Y);
- q_k = Var(f | κ_k) = ψ_k² + (d/dε) V_k at (C − εĈ, Δ − εδ̂): the second-order terms
  (1/p) tr Σ_k Q B Q are derivatives of V_k along the source B (taken by a complex step).
  Ĉ_k = (α/β) w_k E_k/(1 + V_k)²; the sources along ω and Wζ̂ act as diagonal ones,
  δ̂_t = Σ_k Ĉ_k μ2_tk² + β b_t² ((u_tᵀϑ̂)² + (u_tᵀψ̃)²);
- the mean c(κ) = Σ_t M_t μ0(a_t, κ) + κ ϑ(κ): the readout's per-type means M_t cost O(1)
  penalty against O(d) loss, so they are free: the (w/(1+V))-weighted least-squares fit of
  h − κϑ on the span of μ0(a, ·) (numerical rank cut at ``rcond``).

E_k = E[(y − f)² | κ_k] = E σ⋆² + Δ + c² − 2ch − 2ψ h1 + q; ε_g = Σ_k w_k E_k. With a single
type this is the constant-a system (tested against :func:`twolayer.onestep.theory.solve` on its
Marchenko–Pastur rule).

What is exact and what is not. The per-neuron map (r, γ, b(a)) has the status of the constant-a
map (population Stein terms; the simulated spike and overlap agree within 1%). The K × K
deterministic equivalent is the standard one for sums of independent rank-K terms. The
conditional Gaussian equivalence with per-neuron coefficients and the replica fixed point are,
as for one type, conjectures, checked by simulating the model they describe
(:func:`surrogate_error`: within 2 s.e. at 15 points, d = 2000). That model is the surrogate:
the real step's noise part is not the independent bulk b(a) w̃, which leaves the theory 0.6–5.5%
below the real network at d = 2000, most at large η̃²/α0. Numerics: 32 types (stable to 1e-8
against 48), the channel's κ rule, and the mean span's numerical rank at ``rcond``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twolayer import activations, gaussian
from twolayer.errors import ModelAssumptionError, ParameterError
from twolayer.onestep.spectrum import StepMap
from twolayer.onestep.theory import dataset, teacher_tables, validity

__all__ = ["TypedTables", "gaussian_a_tables", "solve_typed"]

_EPS = 1e-20  # complex-step size of the second-order terms
_TINY = 1e-10


@dataclass(frozen=True)
class TypedTables:
    """Per node κ_k (weights ``weight``) and per type t (fractions ``prob``): the student's
    μ0, μ1, μ2 (T, K), the types' bulk scales ``bulk`` (T,), the teacher's h, h1, hh (K,)."""

    kappa: np.ndarray
    weight: np.ndarray
    prob: np.ndarray
    bulk: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    mu2: np.ndarray
    h: np.ndarray
    h1: np.ndarray
    hh: np.ndarray


def gaussian_a_map(student, teacher, alpha0: float, eta: float, noise: float = 0.0) -> dict:
    """One giant step with a_j ~ N(0, 1): ``spike`` r (a neuron's spike is a_j r),
    ``alignment`` γ, and the bulk b(a)² = (1 + a ``shrink``)² + a² ``spread`` (module docstring)."""
    s, t = activations.get(student), activations.get(teacher)
    mu1, mu2 = s.mu(1), s.mu(2)
    if abs(mu1) < _TINY:
        raise ModelAssumptionError(
            f"student {s.name!r} has mu1 = E sigma'(z) = 0: the step makes no spike, so the "
            "spiked-RF theory does not apply")
    if abs(mu2) > _TINY and abs(t.mu(2)) > _TINY:
        raise ModelAssumptionError(
            f"student {s.name!r} has E sigma'' != 0 and teacher {t.name!r} has an even part "
            "(mu2 != 0): the step adds a per-neuron term outside the spiked-RF theory")
    y2 = t.second_moment + noise
    gnorm = math.sqrt(t.mu(1) ** 2 + y2 / alpha0)
    return {"spike": eta * mu1 * gnorm, "alignment": t.mu(1) / gnorm,
            "shrink": eta * mu2 * t.mu(0),
            "spread": eta**2 * y2 * (s.deriv_second_moment - mu1**2) / alpha0,
            "residual_var": y2}


def first_step_types(sm: dict, a) -> tuple[np.ndarray, np.ndarray]:
    """After one Gaussian-a step (``sm`` of :func:`gaussian_a_map`), at the values ``a``: each
    neuron's spike in the orthonormal basis (θ, ξ1), a r (γ, √(1 − γ²)), and its bulk scale
    b(a) = ((1 + a η̃ μ2 μ0⋆)² + a² η̃² E y² (E σ'² − μ1²)/α0)^½."""
    a = np.asarray(a, float)
    g = sm["alignment"]
    spikes = np.outer(a * sm["spike"], [g, math.sqrt(1 - g * g)])
    return spikes, np.sqrt((1.0 + a * sm["shrink"]) ** 2 + a * a * sm["spread"])


def gaussian_a_tables(student, teacher, alpha0: float, eta: float, noise: float = 0.0,
                      n_kappa: int = 64, n_types: int = 32) -> TypedTables:
    """The tables of :func:`solve_typed` after one giant step with a Gaussian second layer."""
    sm = gaussian_a_map(student, teacher, alpha0, eta, noise)
    a, pa = gaussian.hermite_rule(n_types)
    _, bulk = first_step_types(sm, a)
    return typed_tables(student, teacher, a * sm["spike"], bulk, pa, sm["alignment"], n_kappa)


def student_moments(s, loc: np.ndarray, bulk: np.ndarray) -> tuple[np.ndarray, ...]:
    """The conditional equivalence of σ(loc + b_t z) per type t (rows of ``loc``, scale
    ``bulk`` b_t): μ0 = E σ, μ1 = E[σ z]/b, μ2 = (E σ² − μ0² − b² μ1²)^½."""
    sc = np.broadcast_to(np.asarray(bulk, float)[:, None], loc.shape)

    def e_student(fz):
        return s.expect(fz, loc=loc, scale=sc)

    mu0 = e_student(lambda z: s.fn(loc[..., None] + sc[..., None] * z))
    mu1 = e_student(lambda z: s.fn(loc[..., None] + sc[..., None] * z) * z) / sc
    m2 = e_student(lambda z: s.fn(loc[..., None] + sc[..., None] * z) ** 2)
    return mu0, mu1, np.sqrt(np.clip(m2 - mu0**2 - sc**2 * mu1**2, 0.0, None))


def typed_tables(student, teacher, spikes, bulk, prob, alignment: float,
                 n_kappa: int = 64) -> TypedTables:
    """μ0,1,2 of σ(s_t κ + b_t z) per type (spike s_t, bulk scale b_t, fraction π_t) and node κ_k,
    and the teacher σ⋆(γκ + √(1 − γ²) τ) tables."""
    s, t = activations.get(student), activations.get(teacher)
    k, wk = gaussian.hermite_rule(n_kappa)
    spikes, bulk = np.asarray(spikes, float), np.asarray(bulk, float)
    mu0, mu1, mu2 = student_moments(s, spikes[:, None] * k[None, :], bulk)
    h, h1, hh = teacher_tables(t, alignment, k)
    return TypedTables(k, wk, np.asarray(prob, float), bulk, mu0, mu1, mu2, h, h1, hh)


def iterate_active(state: dict, R: np.ndarray, step, *, damping: float, tol: float,
                   max_iter: int, live: np.ndarray):
    """Damped fixed-point iteration over N points (rows of ``state``'s arrays and of ``R``),
    each iteration on the points still active: ``step(sub, {k: rows sub}, R[sub])`` returns the
    undamped update (a dict like ``state``) and the new rows of R. A point settles when the
    largest relative change over the ``live`` nodes is below ``tol``; one whose change is not
    below 1e6 (blown up, not a number) is failed: reported, no longer iterated. ``state`` and
    ``R`` are updated in place; returns (converged, iterations, residual) per point."""
    n_pts = R.shape[0]
    converged, failed = np.zeros(n_pts, bool), np.zeros(n_pts, bool)
    iters, resid = np.zeros(n_pts, int), np.full(n_pts, np.inf)
    for it in range(1, max_iter + 1):
        sub = np.flatnonzero(~(converged | failed))
        if sub.size == 0:
            break
        cur = {k: v[sub] for k, v in state.items()}
        new, R[sub] = step(sub, cur, R[sub])
        with np.errstate(invalid="ignore"):
            delta = np.max([np.max(np.abs(new[k] - cur[k])[:, live]
                                   / (1 + np.abs(cur[k][:, live])), -1) for k in new], 0)
        bad = ~(delta < 1e6)
        failed[sub[bad]] = True
        ok = sub[~bad]
        resid[ok], iters[ok] = delta[~bad], it
        for k in state:
            state[k][ok] = (1 - damping) * new[k][~bad] + damping * state[k][ok]
        converged[ok[delta[~bad] < tol]] = True
    return converged, iters, resid


def solve_typed(tab: TypedTables, alphas, lams, *, beta: float = 1.0, noise: float = 0.0,
                damping: float = 0.5, tol: float = 1e-10, max_iter: int = 5000,
                rcond: float = 1e-9) -> dict[str, np.ndarray]:
    """Solve the typed fixed point for every (α, λ) at once (shape (len(alphas), len(lams))).

    Damped iteration (``damping``) until the largest relative change is below ``tol``; a point
    that blows up or has not settled after ``max_iter`` is reported (NaN, ``converged`` False).
    Returns ``test_error``, ``train_error``, ``converged``, ``iterations``, ``residual`` and the
    per-node order parameters ``V_k``, ``q_k``, ``psi_k``, ``vartheta_k``, ``mean_k`` (…, K):
    V_k, q_k = Var(f | κ_k), ψ_k, ϑ_k and the mean c(κ_k) of the module docstring.
    """
    if beta <= 0:
        raise ParameterError(f"beta must be > 0, got {beta}")
    alphas, lams = np.atleast_1d(np.asarray(alphas, float)), np.atleast_1d(np.asarray(lams, float))
    shape = (len(alphas), len(lams))
    # the grid flattened to N points; each iteration works on the points still active
    A_all = np.repeat(alphas / beta, len(lams))[:, None]
    lam_all = np.tile(lams, len(alphas))[:, None]
    N = A_all.shape[0]
    K, T = len(tab.kappa), len(tab.prob)
    kap, wk = tab.kappa, tab.weight
    U, U2 = tab.mu1, tab.mu2**2  # (T, K)
    pb2 = beta * tab.prob * tab.bulk**2  # (T,)
    b2 = tab.bulk**2
    h, h1, hh = tab.h, tab.h1, tab.hh + noise
    eye = np.eye(K)
    live = wk > 1e-14 * wk.max()  # nodes that carry weight (the far tails judge nothing)
    # the free means: a fixed basis B of span μ0(a_t, ·), the principal directions of the mean
    # kernel Σ_t π_t μ0_t μ0_tᵀ in L²(w) (kept above rcond relative, and above 1e-7 absolute:
    # a centred σ with no spike has no mean), then the (w/(1+V))-weighted least-squares
    # projector onto it, P = B (BᵀWB)⁻¹BᵀW
    sw = np.sqrt(wk)
    u, sv, _ = np.linalg.svd(sw[:, None] * tab.mu0.T * np.sqrt(tab.prob), full_matrices=False)
    basis = u[:, sv > max(rcond * sv[0], 1e-7)] / sw[:, None]

    def mean_projector(wv):
        bw = basis.T * wv[..., None, :]  # BᵀW
        return basis @ np.linalg.solve(bw @ basis, bw)

    def phi_of(R):  # Φ = β Σ_t π_t b_t² R_t u_t u_tᵀ
        return (U.T * (R * pb2)[..., None, :]) @ U

    st = {"V": np.ones((N, K)), "q": np.zeros((N, K)), "psi": np.zeros((N, K)),
          "c": np.zeros((N, K)), "th": np.zeros((N, K))}
    R_all = np.ones((N, T), complex) / (lam_all + 1.0)

    def step(sub, cur, R):
        A, lam = A_all[sub], lam_all[sub]
        V, q, psi, c = (cur[k] for k in ("V", "q", "psi", "c"))
        E = hh + c * c - 2 * c * h - 2 * psi * h1 + q
        inv = 1.0 / (1.0 + V)
        C = A * wk * inv
        Ch = A * wk * E * inv**2
        psh = A * wk * h1 * inv
        Phi = phi_of(R.real)
        # ϑ and the free mean solved together given Φ: ϑ = AΦ diag(wκ/(1+V)) (I − P)(h − κϑ)
        IP = eye - mean_projector(wk * inv)
        G = (A * wk * inv * kap)[..., :, None] * IP  # diag(Aw κ/(1+V)) (I − P)
        th_new = np.linalg.solve(eye + Phi @ (G * kap), Phi @ (G @ h[:, None]))[..., 0]
        r = h - kap * th_new
        c_new = r - (IP @ r[..., None])[..., 0] + kap * th_new
        thh = A * wk * kap * (h - c_new) * inv
        ps_t = np.linalg.solve(eye + C[..., :, None] * Phi, psh[..., None])[..., 0]
        psi_new = (Phi @ ps_t[..., None])[..., 0]
        # the resolvent with the source direction carried as a complex step
        Cc = C - 1j * _EPS * Ch
        src = (Ch @ U2.T) + b2 * beta * ((thh @ U.T) ** 2 + (ps_t @ U.T) ** 2)
        Dc = lam + C @ U2.T - 1j * _EPS * src
        for _ in range(2):  # u_tᵀ M u_t = u_tᵀ (I + CΦ)⁻¹ C u_t, with T right-hand sides
            X = np.linalg.solve(eye + Cc[..., :, None] * phi_of(R), Cc[..., :, None] * U.T)
            R = 0.5 * R + 0.5 / (Dc + b2 * np.einsum("tk,...kt->...t", U, X))
        # V_k = [(I + ΦC)⁻¹Φ]_kk/β + Σ_t π_t μ2_tk² R_t, with Φ = Uᵀ diag(βπb²R) U
        Z = np.linalg.solve(eye + phi_of(R) * Cc[..., None, :],
                            np.broadcast_to(U.T, (len(sub), K, T)))
        Vc = np.einsum("...kt,t,...t,tk->...k", Z, pb2, R, U) / beta + (R * tab.prob) @ U2
        new = {"V": Vc.real, "q": Vc.imag / _EPS + psi_new**2, "psi": psi_new, "c": c_new,
               "th": th_new}
        return new, R

    converged, iters, resid = iterate_active(st, R_all, step, damping=damping, tol=tol,
                                             max_iter=max_iter, live=live)
    E = hh + st["c"] ** 2 - 2 * st["c"] * h - 2 * st["psi"] * h1 + st["q"]
    inv = 1.0 / (1.0 + st["V"])
    test = np.where(converged, E @ wk, np.nan)
    train = np.where(converged, (E * inv**2) @ wk, np.nan)
    out = {"test_error": test, "train_error": train, "converged": converged, "iterations": iters,
           "residual": resid, "V_k": st["V"], "q_k": st["q"], "psi_k": st["psi"],
           "vartheta_k": st["th"], "mean_k": st["c"]}
    return {k: v.reshape(shape + v.shape[1:]) for k, v in out.items()}

N_TYPES = 32  # Gauss–Hermite nodes in a: the test error is stable to 1e-8 from 32 to 48


def gaussian_a_theory(prm):
    """The d = ∞ test error after one giant step with a Gaussian second layer (``a_init
    "gaussian"``, no ``eta_exponent``), on the Marchenko–Pastur bulk with the types' profile.

    Returns the Dataset of :func:`twolayer.onestep.theory.theory` (``test_error``,
    ``train_error``, ``converged``, ``iterations``, ``residual`` on (alpha, lam); the schema's
    attributes). The sRF attributes are per unit a: ``spike`` r, ``alignment`` γ,
    ``bulk_scale`` the rms bulk scale (E b(a)²)^½; ``bulk_shrink`` is 1 (the mean of
    1 + a η̃ μ2 μ0⋆) and ``noncentred`` η̃ μ2 μ0⋆ (its value at a = 1). Two steps
    (``alpha0``/``eta`` pairs): :func:`_two_step_theory`, whose ``spike`` and ``alignment``
    are the top singular value of W2 − W0 over √p and its direction's overlap with θ, with
    ``spike_values`` (the top three) and ``spike_directions`` r.
    """
    if not prm.d_inf:
        raise ParameterError(
            "the theory of a Gaussian second layer during a giant step is the d = inf limit; "
            "use --d inf, or simulate at finite d")
    if len(prm.steps) == 2:
        return _two_step_theory(prm)
    if len(prm.steps) != 1:
        raise ParameterError(
            f"the theory of a Gaussian second layer follows one or two giant steps; got "
            f"{len(prm.steps)} (alpha0, eta) pairs")
    (a0, eta), = prm.steps
    sm = gaussian_a_map(prm.student, prm.teacher, a0, eta, prm.noise)
    tab = gaussian_a_tables(prm.student, prm.teacher, a0, eta, prm.noise, n_kappa=prm.n_kappa,
                            n_types=N_TYPES)
    alphas, lams = np.array(prm.alpha), np.array(prm.lam)
    sol = solve_typed(tab, alphas, lams, beta=prm.beta, noise=prm.noise, tol=prm.tol,
                      max_iter=prm.max_iter)
    rms_bulk = math.sqrt(float(np.sum(tab.prob * tab.bulk**2)))
    srf = StepMap(rms_bulk, 1.0, sm["spike"], sm["alignment"], sm["residual_var"])
    indicators = validity(a0, eta, srf) | {"noncentred": sm["shrink"]}
    label = f"Marchenko-Pastur with {N_TYPES} neuron types (Gaussian a)"
    return dataset([sol], alphas, lams, prm, label, srf, **indicators)


def surrogate_error(student: str, teacher: str, alpha0, eta, *, d: int, alpha: float,
                    lam: float, noise: float = 0.0, seeds: int = 4, n_test: int = 20000,
                    seed: int = 11, n_noise: int = 2) -> tuple[float, float]:
    """Test error (mean, s.e. over ``seeds``) of the model the typed theory solves, simulated
    at d = p, then ridge on n = round(α·d) samples; run i draws from ``default_rng([seed, i])``.
    One step: rows w_j = b(a_j) w̃_j + a_j r ĝ (a_j ~ N(0, 1), w̃_j uniform on the sphere, ĝ at
    alignment γ with θ). Two steps (``alpha0``, ``eta`` pairs): rows b2(a_j) w̃_j + Σ_i s_i(a_j) e_i
    on a random orthonormal (θ, ξ1, e_1 … e_M) with the spikes of :func:`two_step_types` at the
    drawn a_j (``n_noise`` = M). It separates the fixed point's error from the surrogate's (the
    real steps' bulk is not b(a) w̃)."""
    s, t = activations.get(student), activations.get(teacher)
    a0s, etas = np.atleast_1d(alpha0).tolist(), np.atleast_1d(eta).tolist()
    p, n = d, max(1, round(alpha * d))
    errs = []
    for i in range(seeds):
        rng = np.random.default_rng([seed, i])
        w = rng.standard_normal((p, d))
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        a = rng.standard_normal(p)
        if len(a0s) == 1:
            spikes, bulk = first_step_types(
                gaussian_a_map(student, teacher, a0s[0], etas[0], noise), a)
        else:
            types = two_step_types(student, teacher, a0s, etas, noise, n_noise=n_noise,
                                   a_eval=a)
            spikes, bulk = types["spikes"], types["bulk"]
        basis, _ = np.linalg.qr(rng.standard_normal((d, spikes.shape[1])))
        theta = basis[:, 0]
        w = bulk[:, None] * w + spikes @ basis.T

        def labels(x, theta=theta, rng=rng):
            y = t.fn(x @ theta)
            return y + math.sqrt(noise) * rng.standard_normal(len(y)) if noise > 0 else y

        x = rng.standard_normal((n, d))
        z = s.fn(x @ w.T) / math.sqrt(p)
        ro = np.linalg.solve(z.T @ z + lam * np.eye(p), z.T @ labels(x))
        xt = rng.standard_normal((n_test, d))
        errs.append(float(np.mean((labels(xt) - s.fn(xt @ w.T) @ ro / math.sqrt(p)) ** 2)))
    return float(np.mean(errs)), float(np.std(errs, ddof=1) / math.sqrt(seeds))


def gaussian_a_spikes(student, teacher, alpha0s, etas, noise: float = 0.0, *, n_types: int = 48,
                      n_kappa: int = 64, top: int = 3) -> list[dict]:
    """The spike of W_t − W0 after each of one or two giant steps with a_j ~ N(0, 1): its top
    singular values over √p (``sv``) and the overlap of the top right singular vector with θ
    (``overlap``). Compare the simulation's ``step_sv`` and ``step_overlap``.

    Row j's spike is V(a_j), a vector-valued function of a, so the singular values squared are
    the eigenvalues of the kernel G(a, a') = V(a)·V(a') on L²(N(0, 1)) (a on a Gauss–Hermite
    rule). After step 1, V(a) = a r ĝ1: rank one. Step 2 sees f1(x) → F(κ1) =
    E_a[a μ0(a r κ1)], ρ2 = y − F(κ1), and by Stein's lemma (ν_k(a, κ1) = E_h σ^(k)(b(a)h + a r κ1))

        V2(a) = a r ĝ1 + η̃2 a (E[ν1 σ⋆'(θ·x)] θ + (a r E[ρ2 ν2] − E[ν1 F'(κ1)]) ĝ1) + η̃2 a ζ2(a),

    with the sample noise ζ2(a) = (1/n2) Σ_μ ρ2 ν1(a, κ1) x_μ (its population part removed) in
    fresh directions: ζ2(a)·ζ2(a') = E[ρ2² ν1(a, κ1) ν1(a', κ1)]/α0_2. Unlike a constant a,
    the noise directions of different neurons differ (ν1 depends on a), so G is not rank one:
    relu's E σ'' ≠ 0 and the odd part of ν1 give a second outlier with left vector ∝ a².
    """
    s, t = activations.get(student), activations.get(teacher)
    a0s, etas = list(np.atleast_1d(alpha0s)), list(np.atleast_1d(etas))
    if not 1 <= len(a0s) == len(etas) <= 2:
        raise ParameterError("gaussian_a_spikes follows one or two steps: give one or two "
                             "(alpha0, eta) pairs")
    sm = gaussian_a_map(student, teacher, a0s[0], etas[0], noise)
    a, pa = gaussian.hermite_rule(n_types)
    out = [{"sv": np.array([abs(sm["spike"])] + [0.0] * (top - 1)),
            "overlap": abs(sm["alignment"])}]
    if len(a0s) == 1:
        return out
    two = _second_step(s, t, sm, a, pa, float(a0s[1]), float(etas[1]), noise, n_kappa)
    P, g1 = two["population"], sm["alignment"]
    gram = np.array([[1.0, g1], [g1, 1.0]])
    G = P @ gram @ P.T + two["noise_kernel"]
    sp = np.sqrt(pa)
    ev, vec = np.linalg.eigh(sp[:, None] * G * sp[None, :])
    order = np.argsort(ev)[::-1]
    ev, vec = ev[order], vec[:, order]
    f = vec[:, 0] * sp  # the top left singular function at the nodes, times π
    sv = np.sqrt(np.clip(ev[:top], 0.0, None))
    theta_part = (f @ P) @ np.array([1.0, g1])  # ⟨Σ_t π_t f_t V(a_t), θ⟩ (noise ⟂ θ)
    out.append({"sv": sv, "overlap": abs(theta_part) / sv[0]})
    return out


def _second_step(s, t, sm: dict, a, pa, alpha2: float, eta2: float, noise: float,
                 n_kappa: int, a_eval=None) -> dict:
    """The second giant step of a Gaussian-a network, per type a (nodes ``a``, weights ``pa``;
    or at the values ``a_eval``): ``population`` the spike's population part in the basis
    (θ, ĝ1) (E, 2), ``noise_kernel`` the ζ-part V2(a)·V2(a') of the sample noise between the
    evaluation points and the nodes (E, T), ``bulk`` the bulk scale b2(a) (the bulk shrink
    c0(a) = 1 + η̃2 a E[ρ2 ν2] times b1(a), plus the per-neuron noise
    η̃2² a² E[ρ2² (E_h σ'² − ν1²)]/α0_2), ``own`` the kernel's diagonal V2(a)·V2(a)'s noise part
    at the evaluation points; see :func:`gaussian_a_spikes`."""
    r, g1 = sm["spike"], sm["alignment"]
    k, wk = gaussian.hermite_rule(n_kappa)

    def moments(av):  # E_h of σ, σ', σ'², σ' h / b at b(a) h + a r κ1, per (a, node)
        _, b = first_step_types(sm, av)
        loc = (av * r)[:, None] * k[None, :]
        sc = np.broadcast_to(b[:, None], loc.shape)

        def e_h(fz):
            return s.expect(fz, loc=loc, scale=sc)

        def arg(z):
            return loc[..., None] + sc[..., None] * z

        return (b, e_h(lambda z: s.fn(arg(z))), e_h(lambda z: s.deriv(arg(z))),
                e_h(lambda z: s.deriv(arg(z)) ** 2), e_h(lambda z: s.deriv(arg(z)) * z) / sc)

    at_nodes = moments(a)
    _, mu0, nu1, _, _ = at_nodes
    F = (pa * a) @ mu0  # f1 → F(κ1), (K,)
    dF = (pa * a * a * r) @ nu1  # F'(κ1)
    rho_t = math.sqrt(max(1.0 - g1 * g1, 0.0))
    tl, ts = g1 * k, np.full_like(k, rho_t)
    t_mean = t.expect(lambda z: t.fn(tl[:, None] + rho_t * z), loc=tl, scale=ts)
    t_sq = t.expect(lambda z: t.fn(tl[:, None] + rho_t * z) ** 2, loc=tl, scale=ts)
    t_der = t.expect(lambda z: t.deriv(tl[:, None] + rho_t * z), loc=tl, scale=ts)
    rho_mean = t_mean - F  # E[ρ2 | κ1]
    rho_sq = t_sq - 2 * F * t_mean + F * F + noise  # E[ρ2² | κ1]
    ae = a if a_eval is None else np.asarray(a_eval, float)
    b, _, nu1e, nu11e, nu2e = at_nodes if a_eval is None else moments(ae)
    shrink = 1.0 + eta2 * ae * ((nu2e * rho_mean) @ wk)  # c0(a)
    on_theta = eta2 * ae * ((nu1e * t_der) @ wk)
    on_g1 = ae * r * shrink - eta2 * ae * ((nu1e * dF) @ wk)
    kernel = eta2**2 * np.outer(ae, a) * ((nu1e * rho_sq) @ (nu1 * wk).T) / alpha2
    own = eta2**2 * ae * ae * (((nu11e - nu1e**2) * rho_sq) @ wk) / alpha2
    diag = eta2**2 * ae * ae * ((nu1e**2 * rho_sq) @ wk) / alpha2
    return {"population": np.stack([on_theta, on_g1], axis=1), "noise_kernel": kernel,
            "bulk": np.sqrt(shrink**2 * b * b + own), "own": diag}


def two_step_types(student, teacher, alpha0s, etas, noise: float = 0.0, *, n_types: int = 32,
                   n_noise: int = 1, n_kappa: int = 64, a_eval=None) -> dict:
    """Per type a_t after two giant steps with a_j ~ N(0, 1): the spike s_t in the orthonormal
    basis (θ, ξ1, e_1 … e_M) (``spikes`` (T, 2 + M); e_m the leading ``n_noise`` = M
    eigendirections of the noise kernel, the rest folded into the bulk as isotropic noise of the
    same diagonal), ``bulk`` b2(a_t), ``prob`` π_t, ``noise_values`` the kernel's leading
    singular values over √p (all, descending). ``a_eval`` gives ``spikes`` and ``bulk`` at
    those values of a instead of the nodes (the simulated surrogate draws them)."""
    s, t = activations.get(student), activations.get(teacher)
    sm = gaussian_a_map(student, teacher, alpha0s[0], etas[0], noise)
    a, pa = gaussian.hermite_rule(n_types)
    args = (s, t, sm, a, pa, float(alpha0s[1]), float(etas[1]), noise, n_kappa)
    nodes = _second_step(*args)
    sp = np.sqrt(pa)
    ev, vec = np.linalg.eigh(sp[:, None] * nodes["noise_kernel"] * sp[None, :])
    order = np.argsort(ev)[::-1]
    ev, vec = np.clip(ev[order], 0.0, None), vec[:, order]
    two = nodes if a_eval is None else _second_step(*args, a_eval=a_eval)
    # coordinates on e_m: √λ_m φ_m(a), φ_m by Nyström, (1/√λ_m) Σ_t π_t N(a, a_t) φ_m(a_t)
    keep = ev[:n_noise] > 0
    phi = vec[:, :n_noise][:, keep] / sp[:, None]
    noise_coords = (two["noise_kernel"] * pa) @ phi / np.sqrt(ev[:n_noise][keep])
    g1 = sm["alignment"]
    P = two["population"]
    coords = np.stack([P[:, 0] + g1 * P[:, 1], math.sqrt(1 - g1 * g1) * P[:, 1]], axis=1)
    left = two["own"] - np.sum(noise_coords**2, axis=1)
    bulk = np.sqrt(two["bulk"] ** 2 + np.clip(left, 0.0, None))
    spikes = np.hstack([coords, noise_coords, np.zeros((len(coords), n_noise - keep.sum()))])
    return {"spikes": spikes, "bulk": bulk, "prob": pa, "noise_values": np.sqrt(ev)}


NOISE_CUT = 0.05  # noise directions kept as spike directions: singular value ≥ 5% of the first
SPAN_NODES = (16, 16, 6, 6)  # Hermite nodes per direction (θ, ξ1, noise directions)


def _two_step_theory(prm):
    """Two giant steps with a Gaussian a (d = ∞): the typed fixed point over the spikes' span
    (:mod:`twolayer.onestep.span`), κ ∈ R^(2 + M) on (θ, ξ1, e_1 … e_M). The noise kernel's
    directions with singular value ≥ ``NOISE_CUT`` of its first one are kept (M ≤ 2: the third
    is under 2.5% of the first in every case measured), the rest is folded into the bulk."""
    from twolayer.onestep import span  # span builds on this module

    a0s, etas = zip(*prm.steps, strict=True)
    probe = two_step_types(prm.student, prm.teacher, a0s, etas, prm.noise, n_noise=0)
    vals = probe["noise_values"]
    m = int(min(2, np.sum(vals >= NOISE_CUT * vals[0]))) if vals[0] > 0 else 0
    types = two_step_types(prm.student, prm.teacher, a0s, etas, prm.noise, n_noise=m)
    theta = np.zeros(2 + m)
    theta[0] = 1.0
    tab = span.span_tables(prm.student, prm.teacher, types["spikes"], types["bulk"],
                           types["prob"], theta, n_per_dim=SPAN_NODES[: 2 + m])
    alphas, lams = np.array(prm.alpha), np.array(prm.lam)
    sol = span.solve_span(tab, alphas, lams, beta=prm.beta, noise=prm.noise, tol=prm.tol,
                          max_iter=prm.max_iter)
    spikes = gaussian_a_spikes(prm.student, prm.teacher, a0s, etas, prm.noise)
    rms_bulk = math.sqrt(float(np.sum(types["prob"] * types["bulk"] ** 2)))
    srf = StepMap(rms_bulk, 1.0, float(spikes[-1]["sv"][0]), float(spikes[-1]["overlap"]),
                  float("nan"))
    label = (f"Marchenko-Pastur with {len(types['prob'])} neuron types (Gaussian a), spikes on "
             f"{2 + m} directions")
    return dataset([sol], alphas, lams, prm, label, srf, **validity(a0s, etas, srf),
                   spike_values=[float(v) for v in spikes[-1]["sv"]], spike_directions=2 + m)

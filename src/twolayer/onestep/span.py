"""The typed sRF fixed point when the spikes span r directions (κ ∈ R^r, r ≤ 3).

After two giant steps with a Gaussian second layer, neuron type t (a_t on a Gauss–Hermite
rule) has the spike s_t ∈ R^r in an orthonormal basis E of the spikes' span, which contains θ
(:func:`two_step_tables`). Given κ = Eᵀx ∈ R^r the features are Gaussian with per-type
coefficients μ0,1,2(s_t·κ, b_t), the target σ⋆(θ·x) is a function of κ alone, and the bulk's
projections ω_i = W e_i (independent of Ω = W Π Wᵀ, Π removing the span) carry the overlaps
ϑ_i(κ) = aᵀ D1(κ) ω_i/√p. The fixed point is that of :mod:`twolayer.onestep.typed` with the
nodes κ_k of an r-dimensional product Hermite rule, no teacher part outside the span (ψ = 0), and
the mean c(κ) = Σ_t M_t μ0_t(κ) + Σ_i κ_i ϑ_i(κ). Φ = Uᵀ diag(β π b² R) U has rank T, so every
K × K solve of the one-dimensional solver is a T × T one here (Woodbury):
u_tᵀ (I + CΦ)⁻¹ C u_t = [(I + S D)⁻¹ S]_tt and [(I + ΦC)⁻¹Φ]_kk = [Uᵀ (I + D S)⁻¹ D U]_kk with
S = U C Uᵀ, D = diag(β π b² R); the overlaps are ϑ_i = Uᵀ z_i with z ∈ R^(rT) from one linear
system. With r = 2 and the one-step spikes (a_t r ĝ) it is the one-dimensional solver, whose
teacher part outside ĝ is a column of the bulk (tested).

Exact and conjectured as in :mod:`twolayer.onestep.typed`; in addition the spikes' span is cut:
the noise kernel's directions under 5% of its first singular value are folded into the bulk as
isotropic noise of the same size (:func:`twolayer.onestep.typed.two_step_types`). Against the
simulated model (:func:`twolayer.onestep.typed.surrogate_error`, two steps, d = 2000) the theory
is 0.1–2.3% low, within 3.1 s.e.; at the furthest point d = 1000 and 4000 agree within 0.9 s.e.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from twolayer import activations, gaussian
from twolayer.errors import ParameterError
from twolayer.onestep.typed import (
    first_step_types,
    gaussian_a_map,
    iterate_active,
    student_moments,
)

__all__ = ["SpanTables", "solve_span", "span_tables"]

_EPS = 1e-20


@dataclass(frozen=True)
class SpanTables:
    """Nodes κ_k ∈ R^r (``kappa`` (K, r), ``weight``), types (``prob``, ``bulk``), the student's
    μ0, μ1, μ2 (T, K) and the target's h = E[y | κ] and hh = E[σ⋆² | κ] (K,)."""

    kappa: np.ndarray
    weight: np.ndarray
    prob: np.ndarray
    bulk: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    mu2: np.ndarray
    h: np.ndarray
    hh: np.ndarray


def product_rule(r: int, n) -> tuple[np.ndarray, np.ndarray]:
    """The product Gauss–Hermite rule for N(0, I_r), n nodes per dimension (an int, or one per
    dimension)."""
    ns = [int(n)] * r if np.ndim(n) == 0 else [int(v) for v in n]
    rules = [gaussian.hermite_rule(m) for m in ns]
    nodes = np.array(list(itertools.product(*(x for x, _ in rules))))
    weights = np.prod(np.array(list(itertools.product(*(w for _, w in rules)))), axis=1)
    return nodes, weights


def span_tables(student, teacher, spikes, bulk, prob, theta, n_per_dim: int = 16) -> SpanTables:
    """Tables for types with spikes ``spikes`` (T, r) and bulk scales ``bulk`` (T,), fractions
    ``prob``, the target direction ``theta`` (unit, in R^r): σ(s_t·κ + b_t z) per node."""
    s, t = activations.get(student), activations.get(teacher)
    spikes = np.atleast_2d(np.asarray(spikes, float))
    r = spikes.shape[1]
    theta = np.asarray(theta, float)
    if theta.shape != (r,) or abs(np.linalg.norm(theta) - 1) > 1e-9:
        raise ParameterError(f"theta must be a unit vector of R^{r}")
    k, wk = product_rule(r, n_per_dim)
    mu0, mu1, mu2 = student_moments(s, spikes @ k.T, bulk)
    u = k @ theta
    return SpanTables(k, wk, np.asarray(prob, float), np.asarray(bulk, float), mu0, mu1, mu2,
                      t.fn(u), t.fn(u) ** 2)


def solve_span(tab: SpanTables, alphas, lams, *, beta: float = 1.0, noise: float = 0.0,
               damping: float = 0.5, tol: float = 1e-9, max_iter: int = 3000,
               rcond: float = 1e-9) -> dict[str, np.ndarray]:
    """Solve the r-dimensional typed fixed point for every (α, λ) (module docstring); returns
    ``test_error``, ``train_error``, ``converged``, ``iterations``, ``residual`` on
    (len(alphas), len(lams)); a point that blows up or does not settle is NaN, not converged."""
    alphas, lams = np.atleast_1d(np.asarray(alphas, float)), np.atleast_1d(np.asarray(lams, float))
    shape = (len(alphas), len(lams))
    A_all = np.repeat(alphas / beta, len(lams))[:, None]
    lam_all = np.tile(lams, len(alphas))[:, None]
    N = A_all.shape[0]
    kap, wk = tab.kappa, tab.weight
    K, r = kap.shape
    T = len(tab.prob)
    U, U2 = tab.mu1, tab.mu2**2  # (T, K)
    pb2 = beta * tab.prob * tab.bulk**2
    b2 = tab.bulk**2
    h, hh = tab.h, tab.hh + noise
    eyeT = np.eye(T)
    live = wk > 1e-14 * wk.max()
    sw = np.sqrt(wk)
    u, sv, _ = np.linalg.svd(sw[:, None] * tab.mu0.T * np.sqrt(tab.prob), full_matrices=False)
    basis = u[:, sv > max(rcond * sv[0], 1e-7)] / sw[:, None]  # (K, m): the free means' span

    UU = (U[:, None, :] * U[None, :, :]).reshape(T * T, K)  # rows u_t ∘ u_s
    pi, pj = np.triu_indices(r)
    UB = (U.T[:, :, None] * basis[:, None, :]).reshape(K, -1)  # rows (u_t(κ_k) B_km)_{t,m}
    st = {"V": np.ones((N, K)), "q": np.zeros((N, K)), "c": np.zeros((N, K))}
    R_all = np.ones((N, T), complex) / (lam_all + 1.0)

    def step(sub, cur, R):
        n = sub.size
        A, lam = A_all[sub], lam_all[sub]
        V, q, c = (cur[k] for k in ("V", "q", "c"))
        E = hh + c * c - 2 * c * h + q
        inv = 1.0 / (1.0 + V)
        wv = wk * inv
        C = A * wv
        Ch = A * wv * E * inv
        D = pb2 * R.real  # (n, T)
        # overlaps ϑ_i = Uᵀ z_i: z_i = D L_i (I − P)(h − Σ_j κ_j ∘ Uᵀz_j), L_i = U diag(Cκ_i)
        ck = C[:, None, :] * kap.T[None]  # (n, r, K): C κ_i
        bw = basis.T * wv[:, None, :]
        proj_op = np.linalg.solve(bw @ basis, bw)  # (n, m, K): x ↦ coefficients of P x
        LB = (ck @ UB).reshape(n, r, T, -1)  # (n, r, T, m): L_i B
        rhs = D[:, None, :] * (ck * h @ U.T - (LB @ (proj_op @ h)[:, None, :, None])[..., 0])
        pk = proj_op[:, None] @ (kap.T[:, :, None] * U.T[None])[None]  # (n, r_j, m, T)
        # U diag(C κ_i κ_j) Uᵀ for the pairs i ≤ j at once (one product with the rows u_t ∘ u_s)
        w2 = ((ck[:, pi] * kap.T[pj]) @ UU.T).reshape(n, len(pi), T, T)
        blocks = -(LB[:, :, None] @ pk[:, None])
        blocks[:, pi, pj] += w2
        blocks[:, pj[pi != pj], pi[pi != pj]] += w2[:, pi != pj]
        blocks = D[:, None, None, :, None] * blocks
        big = blocks.transpose(0, 1, 3, 2, 4).reshape(n, r * T, r * T) + np.eye(r * T)
        z = np.linalg.solve(big, rhs.reshape(n, r * T, 1)).reshape(n, r, T)
        th = np.einsum("tk,nit->nik", U, z)  # ϑ_i at the nodes
        kth = np.einsum("ki,nik->nk", kap, th)
        c_new = (proj_op @ (h - kth)[..., None])[..., 0] @ basis.T + kth  # P(h − Σκϑ) + Σκϑ
        thh = A[:, None] * (wv * (h - c_new))[:, None, :] * kap.T[None]  # ϑ̂_i (n, r, K)
        src = Ch @ U2.T + b2 * beta * np.sum((thh @ U.T) ** 2, axis=1)
        Dc_l = lam + C @ U2.T - 1j * _EPS * src
        S = ((C @ UU.T) - 1j * _EPS * (Ch @ UU.T)).reshape(n, T, T)  # U diag(Cc) Uᵀ
        for _ in range(2):
            Dd = pb2 * R
            quad = np.diagonal(np.linalg.solve(eyeT + S * Dd[:, None, :], S), axis1=1, axis2=2)
            R = 0.5 * R + 0.5 / (Dc_l + b2 * quad)
        Dd = pb2 * R
        Y = np.linalg.solve(eyeT + Dd[:, :, None] * S, Dd[:, :, None] * eyeT)  # (I + DS)⁻¹D
        Vc = np.einsum("tk,ntk->nk", U, Y @ U) / beta + (R * tab.prob) @ U2
        new = {"V": Vc.real, "q": Vc.imag / _EPS, "c": c_new}
        return new, R

    converged, iters, resid = iterate_active(st, R_all, step, damping=damping, tol=tol,
                                             max_iter=max_iter, live=live)
    E = hh + st["c"] ** 2 - 2 * st["c"] * h + st["q"]
    inv = 1.0 / (1.0 + st["V"])
    out = {"test_error": np.where(converged, E @ wk, np.nan),
           "train_error": np.where(converged, (E * inv**2) @ wk, np.nan),
           "converged": converged, "iterations": iters, "residual": resid}
    return {k: v.reshape(shape) for k, v in out.items()}


def one_step_spikes(student, teacher, alpha0, eta, noise=0.0, n_types=32):
    """The one-step Gaussian-a spikes in the basis (θ, ξ1): a_t r (γ, √(1 − γ²))."""
    a, pa = gaussian.hermite_rule(n_types)
    return (*first_step_types(gaussian_a_map(student, teacher, alpha0, eta, noise), a), pa)

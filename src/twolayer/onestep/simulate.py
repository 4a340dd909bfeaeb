"""Simulation of the one-step network: a giant gradient step on W, then a ridge readout.

Conventions (the setting of Cui et al. 2024, arXiv 2402.04980): x ~ N(0, I_d);
y = σ⋆(θ·x) + √Δ ξ with ‖θ‖ = 1 (θ the teacher direction);
f(x) = (1/√p) Σ_j a_j σ(w_j·x); rows of W0 uniform on the unit sphere, a_j = 1/√p.
Step on n0 = round(α0·d) fresh samples: W1 = W0 − η̃·p·∇_W ½ mean(y − f)², i.e.
w1_j = w0_j + (η̃/n0) Σ_μ (y_μ − f0(x_μ)) σ'(w0_j·x_μ) x_μ. Readout: for each α and λ,
a = argmin Σ_{μ≤n} (y_μ − f(x_μ))² + λ‖a‖² on the first n = round(α·d) of one fresh sample
(nested prefixes), W1 frozen. Test error: E(y − f)² on ``n_test`` fresh samples (noise included).

Cost per seed: one n_max × p feature matrix, one Gram update per α (or the dual n × n Gram when
n < p), one Cholesky per (α, λ) — or one eigendecomposition per α when several λ are asked.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg as sla
import xarray as xr
from scipy.sparse.linalg import svds

from twolayer import activations, gaussian
from twolayer.errors import DivergenceWarning
from twolayer.params import OnestepSimulate, takes
from twolayer.results import stamp

__all__ = ["simulate"]

_CHUNK = 4096
_HUGE = 1e100  # |W1| beyond this (or not finite): the step overflowed (its squares would)


def _features(act, x: np.ndarray, w: np.ndarray, out_dtype) -> np.ndarray:
    """σ(X Wᵀ)/√p, in row chunks to bound memory."""
    p = w.shape[0]
    out = np.empty((x.shape[0], p), dtype=out_dtype)
    for i in range(0, x.shape[0], _CHUNK):
        out[i : i + _CHUNK] = act.fn(x[i : i + _CHUNK] @ w.T) / math.sqrt(p)
    return out


def _ridge(z: np.ndarray, y: np.ndarray, gram: np.ndarray | None, lams: np.ndarray) -> np.ndarray:
    """Readouts a (p × len(lams)) minimising ‖y − z a‖² + λ‖a‖² for each λ.

    ``gram`` is zᵀz when given (primal, n ≥ p); otherwise the dual n × n system is used.
    λ = 0 gives the minimum-norm least-squares solution.
    """
    primal = gram is not None
    k = gram if primal else z @ z.T
    rhs = z.T @ y if primal else y
    if len(lams) == 1 and lams[0] > 0:
        sol = sla.cho_solve(sla.cho_factor(k + lams[0] * np.eye(len(k)), check_finite=False), rhs)
        sol = sol[:, None]
    else:
        ev, u = np.linalg.eigh(k)
        cut = ev.max() * len(ev) * np.finfo(float).eps
        inv = np.where(
            lams[None, :] > 0,
            1.0 / (ev[:, None] + lams[None, :]),
            np.where(ev[:, None] > cut, 1.0 / np.where(ev > cut, ev, 1.0)[:, None], 0.0),
        )
        sol = u @ (inv * (u.T @ rhs)[:, None])
    return sol if primal else z.T @ sol


def _top_singular(m: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    """Largest singular value and right singular vector (ARPACK, deterministic start)."""
    v0 = np.random.default_rng(seed).standard_normal(min(m.shape))
    _, s, vt = svds(m, k=1, v0=v0)
    return float(s[0]), vt[0]


def _giant_step(s, w, x0, y0, eta, a=None):
    """W − η̃·p·∇_W ½ mean(y − f)² at W for f = (1/p) Σ_j a_j σ(w_j·x), i.e. each row
    w_j + (η̃/n0) a_j Σ_μ (y_μ − f(x_μ)) σ'(w_j·x_μ) x_μ; ``a`` None is a_j = 1."""
    pre = x0 @ w.T
    act = s.fn(pre)
    resid = y0 - (act.mean(axis=1) if a is None else act @ a / len(w))
    del act
    with np.errstate(over="ignore", invalid="ignore"):  # judged by the caller
        grad = s.deriv(pre) * resid[:, None]
        if a is not None:
            grad *= a
        return w + (eta / len(x0)) * (grad.T @ x0)


def _top_singular_k(m: np.ndarray, k: int, seed: int):
    """The k largest singular values (descending): (left vectors as columns, values, right
    vectors as rows), ARPACK with a deterministic start."""
    v0 = np.random.default_rng(seed).standard_normal(min(m.shape))
    u, s, vt = svds(m, k=k, v0=v0)
    order = np.argsort(s)[::-1]
    return u[:, order], s[order], vt[order]


def _diagnostics(w1, w0, theta, p) -> tuple[dict, np.ndarray]:
    """Spike of W1 − W0 (top singular value over √p, overlap with θ), W1's own top direction,
    and the bulk (rms row norm of W1 without its top singular component); and the spike's
    unit direction v̂ (the top right singular vector of W1 − W0)."""
    sv, vdw = _top_singular(w1 - w0, 1)
    sv1, v1 = _top_singular(w1, 2)
    return {"spike_sv": sv / math.sqrt(p), "spike_overlap": abs(float(vdw @ theta)),
            "w1_overlap": abs(float(v1 @ theta)),
            "bulk_scale": math.sqrt(max((np.sum(w1 * w1) - sv1**2) / p, 0.0))}, vdw


def _step_ranks(p: int, d: int, gaussian_a: bool) -> int:
    """Singular pairs recorded after each of several steps: 3, or 6 with a Gaussian second
    layer (its steps make several outliers)."""
    return min(6 if gaussian_a else 3, p - 1, d - 1)


def _step_record(w, w0, theta, p, ranks, a=None) -> dict:
    """After one of several steps: the top ``ranks`` singular values of W_t − W0 over √p, the
    overlaps |v_r·θ| of their right singular vectors, and those vectors (for later overlaps).

    With a Gaussian second layer ``a`` also: ``poly``, the part of each left singular vector
    (in neuron space) spanned by the polynomials of degree ≤ 6 in a (a spike made by the steps
    has left vector a, a², … — Moniri and Hassani's outliers; a bulk direction has ≈ 7/p), and
    ``edge``, the top singular value over √p of W_t with those structured directions (poly > ½)
    projected out: the bulk edge an outlier of W_t must exceed."""
    u, sv, vt = _top_singular_k(w - w0, ranks, 1)
    if a is None:
        return {"sv": sv / math.sqrt(p), "theta": np.abs(vt @ theta), "v": vt}
    basis, _ = np.linalg.qr(np.vander(a / np.sqrt(np.mean(a * a)), POLY_DEGREE + 1,
                                      increasing=True))
    poly = np.sum((u.T @ basis) ** 2, axis=1)
    q = u[:, poly > 0.5]
    edge, _ = _top_singular(w - q @ (q.T @ w), 6)
    return {"sv": sv / math.sqrt(p), "theta": np.abs(vt @ theta), "v": vt, "poly": poly,
            "edge": edge / math.sqrt(p)}


HERMITE_DEGREES = np.arange(1, 7)  # degrees whose content the feature spikes report
POLY_DEGREE = 6  # a step's structured directions in neuron space: polynomials of a to this degree


def _feature_spikes(s, x, z, w0, v, k, dtype) -> dict:
    """The post-step feature matrix's spikes and their Hermite content.

    On the readout inputs X (n × d): F1 = σ(X W1ᵀ)/√p (``z``) and F0 = σ(X W0ᵀ)/√p, columns
    centred (this removes the mean spike of a non-centred σ). ``sv``: the ``k`` largest singular
    values of F1/√n; ``edge``: the largest of F0/√n (the random-features bulk edge on the same
    X); ``content[i, m]`` = (u_iᵀ ĥ_m)² for F1's left singular vectors u_i and ĥ_m the centred,
    normalised He_m(X v̂), m = 1…6, v̂ = ``v`` the top right singular vector of W1 − W0 (the
    step's direction); ``captured[m]`` = Σ_i content[i, m], the part of He_m(κ) in F1's top-k
    span.
    """
    n = len(x)
    kap = x @ v
    he = np.stack([gaussian.hermite(m, kap) for m in HERMITE_DEGREES], axis=1)
    he -= he.mean(axis=0)
    he /= np.linalg.norm(he, axis=0)
    f1 = (z - z.mean(axis=0)) / math.sqrt(n)
    f0 = _features(s, x, w0.astype(dtype, copy=False), dtype).astype(np.float64, copy=False)
    f0 = (f0 - f0.mean(axis=0)) / math.sqrt(n)
    u, sv, _ = _top_singular_k(f1, min(k, min(f1.shape) - 1), 4)
    edge, _ = _top_singular(f0, 5)
    content = (u.T @ he) ** 2
    return {"sv": sv, "edge": edge, "content": content, "captured": content.sum(axis=0)}


def _one_seed(
    rng: np.random.Generator, s, t, *, d, p, steps, noise, ns, lams, n_test, dtype,
    gaussian_a=False, n_spikes=0,
) -> dict:
    theta = rng.standard_normal(d)
    theta /= np.linalg.norm(theta)
    w0 = rng.standard_normal((p, d))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    a = rng.standard_normal(p) if gaussian_a else None

    def labels(x):
        y = t.fn(x @ theta)
        return y + math.sqrt(noise) * rng.standard_normal(len(y)) if noise > 0 else y

    w1, record = w0, []
    ranks = _step_ranks(p, d, gaussian_a)
    for n0, eta in steps:  # each step on fresh samples, at the current W
        if n0 > 0 and eta > 0:
            x0 = rng.standard_normal((n0, d))
            w1 = _giant_step(s, w1, x0, labels(x0), eta, a)
            del x0
            if not np.max(np.abs(w1)) < _HUGE:  # the step overflowed: no network this run
                nan = np.full((len(ns), len(lams)), np.nan)
                return {"spike_sv": np.nan, "spike_overlap": np.nan, "w1_overlap": np.nan,
                        "bulk_scale": np.nan, "test_error": nan, "train_error": nan.copy(),
                        "steps": None, "features": None}
        if len(steps) > 1:
            record.append(_step_record(w1, w0, theta, p, ranks, a) if w1 is not w0 else None)
    if w1 is w0:
        out = dict(spike_sv=0.0, spike_overlap=float("nan"), w1_overlap=float("nan"),
                   bulk_scale=1.0)
    else:
        out, direction = _diagnostics(w1, w0, theta, p)
    out["steps"] = record or None

    w1c = w1.astype(dtype, copy=False)  # cast once, reused by the training and test features
    x = rng.standard_normal((ns[-1], d))
    y = labels(x)
    z = _features(s, x, w1c, dtype).astype(np.float64, copy=False)
    out["features"] = (_feature_spikes(s, x, z, w0, direction, n_spikes, dtype)
                       if n_spikes and w1 is not w0 else None)
    del x
    readouts = np.empty((len(ns), p, len(lams)))
    train = np.empty((len(ns), len(lams)))
    gram, done = np.zeros((p, p)), 0
    for i, n in enumerate(ns):
        if n >= p:
            gram += z[done:n].T @ z[done:n]
            done = n
            a = _ridge(z[:n], y[:n], gram, lams)
        else:
            a = _ridge(z[:n], y[:n], None, lams)
        readouts[i] = a
        train[i] = np.mean((y[:n, None] - z[:n] @ a) ** 2, axis=0)
    del z
    flat = readouts.transpose(1, 0, 2).reshape(p, -1)
    sq = np.zeros(flat.shape[1])
    for i in range(0, n_test, _CHUNK):
        m = min(_CHUNK, n_test - i)
        xt = rng.standard_normal((m, d))
        zt = _features(s, xt, w1c, dtype).astype(np.float64, copy=False)
        sq += np.sum((labels(xt)[:, None] - zt @ flat) ** 2, axis=0)
    out["test_error"] = (sq / n_test).reshape(len(ns), len(lams))
    out["train_error"] = train
    return out


@takes(OnestepSimulate)
def simulate(prm: OnestepSimulate, *,
             progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
    """Simulate the one-step network for ``seeds`` independent draws and every (α, λ).

    p is ``p`` or round(β·d). Run ``i`` uses ``np.random.default_rng([seed, i])``, so a run does
    not depend on how many seeds are asked. ``float32`` computes the features in single
    precision (the ridge solves stay in float64). ``progress(done, total)`` is called after
    each run.

    Returns a Dataset with ``test_error`` and ``train_error`` on (seed, alpha, lam), their mean and
    std over seeds (``test_error_mean``, ``test_error_std``; ddof = 1), and the step diagnostics
    on (seed,): ``spike_sv`` (top singular value of W1 − W0 over √p, compare with the theory's
    spike r_s), ``spike_overlap`` (|v₁·θ| for that singular vector, compare with the alignment γ),
    ``w1_overlap`` (the same for W1) and ``bulk_scale`` (rms row norm of W1 without its top
    singular component, compare with √c). Attributes: the schema of :mod:`twolayer.results`
    (status ``diverged`` where a test error is not finite) and ``p``, ``n0``.

    Several giant steps (``alpha0`` and/or ``eta`` lists, one entry per step): step t uses
    round(α0_t·d) fresh samples and W ← W − η̃_t·p·∇_W ½ mean(y − f)² at the current W (a stays
    1/√p); the diagnostics above are those of the final W, and ``step_sv``, ``step_overlap``,
    ``step_direction_overlap`` follow the spikes after each step. A single value is one step,
    drawn exactly as before.
    """
    s, t = activations.get(prm.student), activations.get(prm.teacher)
    alphas, lams = np.array(prm.alpha), np.array(prm.lam)
    d, p, seeds = prm.d, prm.width, prm.seeds
    dtype = np.dtype("float32" if prm.float32 else "float64")
    order = np.argsort(alphas)
    ns_sorted = np.maximum(1, np.round(alphas[order] * d).astype(int))
    steps = [(round(a0 * d), eta) for a0, eta in prm.steps_at(d)]
    runs = []
    for i in range(seeds):
        rng = np.random.default_rng([prm.seed, i])
        runs.append(_one_seed(rng, s, t, d=d, p=p, steps=steps, noise=prm.noise,
                              ns=ns_sorted, lams=lams, n_test=prm.n_test, dtype=dtype,
                              gaussian_a=prm.a_init == "gaussian",
                              n_spikes=prm.feature_spikes))
        if progress is not None:
            progress(i + 1, seeds)
    inv = np.argsort(order)
    te = np.stack([r["test_error"][inv] for r in runs])
    tr = np.stack([r["train_error"][inv] for r in runs])
    dims = ("seed", "alpha", "lam")
    ds = xr.Dataset(
        {
            "test_error": (dims, te),
            "train_error": (dims, tr),
            "test_error_mean": (dims[1:], te.mean(0)),
            "test_error_std": (dims[1:], te.std(0, ddof=1) if seeds > 1 else 0.0 * te[0]),
            "train_error_mean": (dims[1:], tr.mean(0)),
            **{k: (("seed",), np.array([r[k] for r in runs]))
               for k in ("spike_sv", "spike_overlap", "w1_overlap", "bulk_scale")},
        },
        coords={"seed": np.arange(seeds), "alpha": alphas, "lam": lams,
                "n": ("alpha", np.maximum(1, np.round(alphas * d).astype(int)))},
    )
    if len(steps) > 1:
        gaussian = prm.a_init == "gaussian"
        ds = ds.assign(_per_step(runs, len(steps), _step_ranks(p, d, gaussian), gaussian))
    if prm.feature_spikes:
        k = min(prm.feature_spikes, p - 1, int(ns_sorted[-1]) - 1)
        ds = ds.assign(_per_feature_spike(runs, k))
    bad = ~np.isfinite(te)
    status, message = "ok", ""
    if bad.any():
        status = "diverged"
        message = (f"non-finite test error at {int(bad.sum())} of {bad.size} (seed, alpha, lam) "
                   "entries: the step or the readout overflowed (the step's weights are "
                   "non-finite where the diagnostics are NaN); try a smaller eta or a larger lam")
        warnings.warn(message, DivergenceWarning, stacklevel=3)
    n0 = steps[0][0] if len(steps) == 1 else np.array([n for n, _ in steps])
    etas = [e for _, e in steps]
    return stamp(ds, prm, status, message, p=p, n0=n0,
                 eta_tilde=etas[0] if len(etas) == 1 else np.array(etas))


def _per_feature_spike(runs: list[dict], k: int) -> dict:
    """The feature spikes of every run (see :func:`_feature_spikes`) on (seed, spike[, degree]):
    ``feature_sv``, ``feature_edge``, ``feature_hermite`` (content), ``feature_captured`` and
    ``feature_degrees`` (how many degrees have more than half of He_m(κ) in the top-k span).
    NaN for a run without a step."""
    n, m = len(runs), len(HERMITE_DEGREES)
    sv, edge = np.full((n, k), np.nan), np.full(n, np.nan)
    content, captured = np.full((n, k, m), np.nan), np.full((n, m), np.nan)
    for i, r in enumerate(runs):
        f = r.get("features")
        if f is not None:
            sv[i], edge[i], content[i], captured[i] = f["sv"], f["edge"], f["content"], \
                f["captured"]
    count = np.where(np.isnan(edge), np.nan, np.sum(captured > 0.5, axis=1))
    return {"feature_sv": (("seed", "spike"), sv), "feature_edge": (("seed",), edge),
            "feature_hermite": (("seed", "spike", "degree"), content),
            "feature_captured": (("seed", "degree"), captured),
            "feature_degrees": (("seed",), count), "degree": ("degree", HERMITE_DEGREES)}


def _per_step(runs: list[dict], n_steps: int, ranks: int, gaussian: bool = False) -> dict:
    """Diagnostics after each of several steps, on (seed, step[, rank | step_b]): the top
    singular values of W_t − W0 over √p (``step_sv``), their right singular vectors' overlaps
    with θ (``step_overlap``), and the overlaps |v₁(t)·v₁(t')| of the top directions after
    steps t and t' (``step_direction_overlap``). With a Gaussian second layer also
    ``step_poly`` (polynomial content in a of each left singular vector), ``step_edge`` (the
    bulk edge of W_t over √p) and ``step_outliers``: the structured directions (poly > ½) whose
    singular value exceeds that edge. NaN for a run or a step without data."""
    n = len(runs)
    sv = np.full((n, n_steps, ranks), np.nan)
    th = np.full((n, n_steps, ranks), np.nan)
    poly = np.full((n, n_steps, ranks), np.nan)
    edge = np.full((n, n_steps), np.nan)
    dirs = np.full((n, n_steps, n_steps), np.nan)
    for i, r in enumerate(runs):
        rec = r["steps"] or []
        top = {}
        for j, st in enumerate(rec):
            if st is not None:
                sv[i, j], th[i, j], top[j] = st["sv"], st["theta"], st["v"][0]
                if gaussian:
                    poly[i, j], edge[i, j] = st["poly"], st["edge"]
        for a, va in top.items():
            for b, vb in top.items():
                dirs[i, a, b] = abs(float(va @ vb))
    out = {"step_sv": (("seed", "step", "rank"), sv),
           "step_overlap": (("seed", "step", "rank"), th),
           "step_direction_overlap": (("seed", "step", "step_b"), dirs)}
    if gaussian:
        count = np.sum((poly > 0.5) & (sv > edge[..., None]), axis=2).astype(float)
        out |= {"step_poly": (("seed", "step", "rank"), poly),
                "step_edge": (("seed", "step"), edge),
                "step_outliers": (("seed", "step"), np.where(np.isnan(edge), np.nan, count))}
    return out

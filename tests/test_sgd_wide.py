"""The large-width reduced ODE against the full ODE, Monte Carlo and the simulation."""

from functools import partial

import numpy as np
import pytest

from twolayer import activations
from twolayer.sgd import ode, simulate
from twolayer.sgd.init import Overlaps, initial_weights, omega_of
from twolayer.sgd.integrals import engine
from twolayer.sgd.wide import Reduced, _WideSystem, reduced_overlaps

ode_wide = partial(ode, reduction="wide")  # the large-width reduction


def _reduced_state(seed: int, p: int = 5, k: int = 2):
    rng = np.random.default_rng(seed)
    P = np.diag(rng.uniform(0.7, 1.3, k))
    M = rng.normal(0.0, 0.5, (p, k))
    q = rng.uniform(0.2, 1.0, p)
    return M, q, P


def _system(student, teacher, P, p, gamma, noise, spherical=False, n_nu=64, n_z=40):
    return _WideSystem(activations.get(student), activations.get(teacher), P, p, gamma, noise,
                       True, spherical, n_nu, n_z)


@pytest.mark.parametrize(("student", "teacher", "gamma"), [
    ("erf", "erf", 1.0), ("square", "square", 1.0), ("relu", "relu", 1.0),
    ("erf", "relu", 0.0), ("relu", "linear", 1.0),
])
def test_reduced_flow_equals_full_flow_when_q_perp_is_diagonal(student, teacher, gamma):
    """For Q = M P⁻¹ Mᵀ + diag(q) the reduction is exact: dM, dq and R equal the full ODE's.

    (erf/relu without the variance term, which the full engine refuses for a relu teacher.)
    """
    M, q, P = _reduced_state(1)
    p = M.shape[0]
    p_inv = np.linalg.inv(P)
    om = omega_of(M @ p_inv @ M.T + np.diag(q), M, P)
    eng = engine(student, teacher)
    dq_full, dm_full = eng.flow(om, p, 0.1, gamma / p)
    sys = _system(student, teacher, P, p, gamma, 0.1)
    out = sys.rhs(0.0, sys.pack(M, q))
    dm, dq = out[: M.size].reshape(M.shape), out[M.size:]
    expected_dq = np.diag(dq_full) - 2 * np.einsum("jr,rs,js->j", dm_full, p_inv, M)
    np.testing.assert_allclose(dm, dm_full, atol=1e-12)
    np.testing.assert_allclose(dq, expected_dq, atol=1e-12)
    assert sys.risk(M, q) == pytest.approx(float(eng.risk(om, p)), rel=1e-12)


@pytest.mark.parametrize(("student", "teacher", "k"), [
    ("tanh", "tanh", 1), ("tanh", "tanh", 2), ("sigmoid", "tanh", 2), ("softplus", "sin", 2),
    ("tanh", "linear", 1), ("square", "tanh", 2),
])
def test_reduced_flow_equals_full_flow_for_smooth_activations_at_large_variance(student, teacher,
                                                                                 k):
    """Both sides by quadrature, with different rules (the full engine: 2-D pairs and the
    conditioned 4-D variance term of twolayer.sgd.smooth; the reduction: z-moments and a
    k-dimensional ν-rule), at diag Q up to ~8 and students nearly in the span (q = 0.02).
    The default (trapezoid) rules agree to 1e-6; the former Gauss–Hermite defaults did not."""
    rng = np.random.default_rng(4)
    P = np.diag(rng.uniform(1.0, 2.0, k))
    M = rng.normal(0.0, 1.2, (4, k))
    q = np.array([0.02, 0.5, 2.0, 3.5])
    p, p_inv = 4, np.linalg.inv(P)
    om = omega_of(M @ p_inv @ M.T + np.diag(q), M, P)
    dq_full, dm_full = engine(student, teacher).flow(om, p, 0.1, 1.0 / p)
    expected_dq = np.diag(dq_full) - 2 * np.einsum("jr,rs,js->j", dm_full, p_inv, M)

    def rel_errors(n_nu, n_z):
        sys = _system(student, teacher, P, p, 1.0, 0.1, n_nu=n_nu, n_z=n_z)
        out = sys.rhs(0.0, sys.pack(M, q))
        dm, dq = out[: M.size].reshape(M.shape), out[M.size:]
        return (np.abs(dm - dm_full).max() / np.abs(dm_full).max(),
                np.abs(dq - expected_dq).max() / np.abs(expected_dq).max())

    assert max(rel_errors(None, None)) < 1e-6
    if student == "tanh" and teacher == "tanh":
        assert max(rel_errors({1: 48, 2: 20}[k], 24)) > 1e-3


@pytest.mark.parametrize(("student", "teacher"), [("relu", "relu"), ("tanh", "tanh")])
def test_reduced_variance_term_vs_monte_carlo(student, teacher):
    """E[(e² + Δ) σ'(λ_j)²] from the reduction vs 4e6 samples (relu: the full engine has none)."""
    M, q, P = _reduced_state(2, p=4, k=2)
    p, noise = M.shape[0], 0.1
    p_inv = np.linalg.inv(P)
    om = omega_of(M @ p_inv @ M.T + np.diag(q), M, P)
    with_var = _system(student, teacher, P, p, 1.0, noise)
    without = _WideSystem(activations.get(student), activations.get(teacher), P, p, 1.0, noise,
                          False, False, 64, 40)
    y = with_var.pack(M, q)
    reduced = (with_var.rhs(0.0, y) - without.rhs(0.0, y))[M.size:] * p  # divide out γ/p
    s, t = activations.get(student), activations.get(teacher)
    rng = np.random.default_rng(3)
    means = []
    for _ in range(10):
        x = rng.multivariate_normal(np.zeros(om.shape[0]), om, size=400_000)
        e = t.fn(x[:, p:]).mean(axis=1) - s.fn(x[:, :p]).mean(axis=1)
        means.append(np.mean((e[:, None] ** 2 + noise) * s.deriv(x[:, :p]) ** 2, axis=0))
    mc, se = np.mean(means, axis=0), np.std(means, axis=0, ddof=1) / np.sqrt(len(means))
    assert np.all(np.abs(reduced - mc) < 5 * se + 1e-4), (reduced, mc, se)


def test_gap_to_the_full_ode_shrinks_like_one_over_p():
    """Both ODEs from the same Q = M P⁻¹ Mᵀ + diag(q) (the wide ODE's d = ∞ form): the reduction
    drops the off-diagonal Q⊥ that the full flow creates at rate O(1/p), so the risk gap × p is
    the same at p = 16, 32."""
    scaled = {}
    for p in (16, 32):
        r = reduced_overlaps(*initial_weights(p, 1, 2000, 0, 1.0))
        full_start = Overlaps(r.M @ np.linalg.inv(r.P) @ r.M.T + np.diag(r.q), r.M, r.P)
        full = ode("erf", "erf", init=full_start, gamma=0.5, noise=0.01, t_max=8.0)
        wide = ode_wide("erf", "erf", init=r, gamma=0.5, noise=0.01, t_max=8.0, finite_d=False)
        assert wide.risk.values[0] == pytest.approx(full.risk.values[0], rel=1e-8)
        scaled[p] = p * np.abs(wide.risk.values - full.risk.values)[[20, 40, -1]]  # t = .1, 1, 8
    np.testing.assert_allclose(scaled[32], scaled[16], rtol=0.2)


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_wide_ode_vs_simulation_at_large_width(act):
    """p = 100, d = 200, γ/p = 0.02, 8 seeds: risk within 3 s.e. + 2% over t ∈ [0, 2].

    relu runs with the variance term on: the reduction needs no 4-D integral for it.
    """
    kw = dict(p=100, k=1, d=200, gamma=2.0, t_max=2.0, noise=0.01, per_decade=5)
    sim = simulate(act, act, seeds=8, **kw)
    wide = ode_wide(act, act, **kw)
    mean = sim.risk.mean("seed").values
    se = sim.risk.std("seed", ddof=1).values / np.sqrt(8)
    gap = np.abs(wide.risk.values - mean)
    assert np.all(gap <= 3 * se + 0.02 * mean), np.column_stack([wide.risk.values, mean, se])
    assert wide.attrs["status"] == "ok"


def test_spherical_wide_keeps_unit_norms_and_approaches_the_full_spherical_ode():
    gaps = {}
    for p in (16, 32):
        r = reduced_overlaps(*initial_weights(p, 1, 2000, 0, 1.0, spherical=True))
        start = Overlaps(r.M @ np.linalg.inv(r.P) @ r.M.T + np.diag(r.q), r.M, r.P)
        wide = ode_wide("erf", "erf", init=r, gamma=0.5, t_max=2.0, spherical=True,
                        finite_d=False)  # the full start has Q⊥ diagonal
        full = ode("erf", "erf", init=start, gamma=0.5, t_max=2.0, spherical=True)
        np.testing.assert_allclose(wide.Q_diag.values, 1.0, atol=1e-6)
        gaps[p] = p * abs(wide.risk.values[-1] - full.risk.values[-1])
    assert gaps[32] == pytest.approx(gaps[16], rel=0.25), gaps


def test_mean_field_square_run_scales_to_thousands_of_units():
    """The benchmark's setting at p = 2000: the reduced ODE learns (risk falls 1e4-fold by
    t = 300) and memory stays ∝ p (no p × p array)."""
    ds = ode_wide("square", "square", p=2000, k=1, d=1000, gamma=1.0, t_max=300.0, per_decade=4)
    assert ds.attrs["status"] == "ok"
    assert ds.M.shape[1:] == (2000, 1) and "Q" not in ds
    assert ds.risk.values[-1] < 1e-4 * ds.risk.values[0]


def test_reduced_overlaps_match_the_full_ones():
    W, Wt = initial_weights(30, 2, 500, 4, 0.7)
    r = reduced_overlaps(W, Wt)
    Q = W @ W.T / 500
    span = r.M @ np.linalg.inv(r.P) @ r.M.T
    np.testing.assert_allclose(r.q, np.diag(Q - span), atol=1e-12)
    assert isinstance(r, Reduced)


def test_bad_input_is_refused():
    from twolayer.errors import ModelAssumptionError, ParameterError

    with pytest.raises(ParameterError):
        ode_wide("erf", "erf", p=4, k=1, gamma=0.0, t_max=1.0)
    with pytest.raises(ParameterError), pytest.warns(UserWarning, match="uncorrelated"):
        ode_wide("erf", "erf", p=4, k=2, d=2, gamma=1.0, t_max=1.0)
    P = np.array([[1.0, 0.2, 0.0], [0.2, 1.0, 0.1], [0.0, 0.1, 1.0]])
    with pytest.raises(ModelAssumptionError):
        ode_wide("erf", "relu", init=Reduced(np.zeros((2, 3)), np.ones(2), P), gamma=1.0,
                 t_max=1.0)


@pytest.mark.parametrize("act", ["erf", "tanh", "relu", "square"])
def test_blocked_risk_of_weights_equals_the_dense_risk(act):
    from twolayer.sgd.init import overlaps_of

    W, Wt = initial_weights(80, 3, 200, 1, 0.8)
    eng = engine(act, act)
    dense = float(eng.risk(overlaps_of(W, Wt).omega(), 80))
    assert eng.risk_of_weights(W, Wt, budget=4000) == pytest.approx(dense, rel=1e-12)


def test_wide_simulation_memory_stays_linear_in_p():
    """p = 4000: the dense path would hold S·(p+k)² overlaps and pair tables (> 1 GB); the
    blocked path peaks far lower, and its risk at t = 0 equals the reduced ODE's start up to
    the O(1/√d) orthogonal overlaps it drops (here ~1e-3)."""
    import tracemalloc

    kw = dict(p=4000, k=1, d=20, gamma=400.0, t_max=0.05, per_decade=1, noise=0.0)
    tracemalloc.start()
    sim = simulate("erf", "erf", seeds=2, **kw)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 400e6, peak
    assert np.all(np.isfinite(sim.risk.values))
    with pytest.warns(UserWarning, match="at d = 20 it is approximate"):  # d < 100
        wide = ode_wide("erf", "erf", **kw)
    assert sim.risk.values[0, 0] == pytest.approx(wide.risk.values[0], rel=0.02)


def test_erf_z_moments_in_closed_form_equal_quadrature():
    """The nine z-moments of erf(X/√2), X = m + s z, by Gaussian tilting and Owen's T, against a
    fine trapezoid rule (h = 0.05 in x, radius 12: exact to rounding for these entire
    integrands), from nearly deterministic (s = 0.01) to wide (s = 3) units and |m| up to 6."""
    from twolayer.gaussian import trapezoid_rule
    from twolayer.sgd.wide import _erf, _erf_fused

    rng = np.random.default_rng(0)
    m = np.concatenate([rng.normal(0.0, 2.0, (40, 6)), np.full((1, 6), 6.0)])
    s = np.array([0.01, 0.3, 1.0, 1.7, 2.4, 3.0])
    act = activations.get("erf")
    z, w = trapezoid_rule(3.0, h_x=0.05, radius=12.0)
    x = m[..., None] + s[..., None] * z
    f, f1, f2 = act.fn(x), act.deriv(x), act.deriv2(x)
    expected = (f, f1, f2, f1 * f1, f * f1, f * f2, f * f1 * f1, f * f * f1 * f1, f * f)
    for name, got, fused, ref in zip(_erf(m, s)._fields, _erf(m, s), _erf_fused(m, s), expected,
                                     strict=True):
        assert np.abs(got - ref @ w).max() < 1e-13, name
        assert np.abs(fused - ref @ w).max() < 1e-13, name  # the compiled pass (used by the ODE)

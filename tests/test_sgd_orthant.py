"""Orthant probabilities, truncated moments and the exact relu SGD-variance term.

References, all independent of twolayer.sgd.orthant: exact values (P = 1/(m+1) at ρ = 1/2,
factorised cases, the 2^m sign patterns summing to 1), scipy's multivariate normal CDF (Genz),
30-digit mpmath values, Monte Carlo with its error bar, and SGD itself.
"""

import itertools
import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from twolayer import activations
from twolayer.sgd import ode, simulate
from twolayer.sgd.init import omega_of
from twolayer.sgd.integrals import engine, error_weights
from twolayer.sgd.orthant import moment, orthant

P, K = 3, 2
N_MC, REPS = 400_000, 10


def _corr(rng, m, extra=2):
    g = rng.standard_normal((m, m + extra))
    c = g @ g.T
    sd = np.sqrt(np.diag(c))
    return c / np.outer(sd, sd)


def _near_singular(m, rho=0.999):
    """x_0, x_1 with correlation ρ, the others generic."""
    c = _corr(np.random.default_rng(m), m, extra=1)
    c[0, 1] = c[1, 0] = rho
    c[1, 2:] = c[2:, 1] = c[0, 2:] + 0.01  # keeps it positive definite
    assert np.linalg.eigvalsh(c)[0] > 0
    return c


# --------------------------------------------------------------------------- orthants


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_orthant_equicorrelated_half_is_one_over_m_plus_one(m):
    r = np.full((m, m), 0.5) + 0.5 * np.eye(m)
    assert orthant(r) == pytest.approx(1 / (m + 1), abs=1e-14)


def test_orthant_factorises_and_sign_patterns_sum_to_one():
    rng = np.random.default_rng(0)
    r = np.eye(4)
    r[:2, :2] = _corr(rng, 2)
    r[2:, 2:] = _corr(rng, 2)
    assert orthant(r) == pytest.approx(orthant(r[:2, :2]) * orthant(r[2:, 2:]), abs=1e-14)
    r3 = np.eye(4)
    r3[:3, :3] = _corr(rng, 3)
    assert orthant(r3) == pytest.approx(0.5 * orthant(r3[:3, :3]), abs=1e-14)
    for c in (_corr(rng, 4), _near_singular(4)):
        total = sum(orthant(c * np.outer(s, s)) for s in itertools.product((1, -1), repeat=4))
        assert total == pytest.approx(1.0, abs=1e-13)


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("kind", ["random", "near-singular"])
def test_orthant_matches_scipy(m, kind):
    """Genz's algorithm at abseps 1e-9 (its error is ~1e-9 here; 1e-10 takes 4× longer)."""
    c = _corr(np.random.default_rng(10 + m), m) if kind == "random" else _near_singular(m)
    mvn = multivariate_normal(np.zeros(m), c, abseps=1e-9, releps=0, maxpts=10**7, seed=1)
    ref = mvn.cdf(np.zeros(m))
    assert abs(orthant(c) - ref) < 5e-9, (c, orthant(c), ref)


@pytest.mark.parametrize(
    ("rho", "ref"),
    [  # 30-digit mpmath quadrature of the same 4 × 4 matrices (Plackett's identity)
        (0.999999, 0.15095503691407033298),
        (0.999999999999, 0.15097573102353836512),
    ],
)
def test_orthant_near_singular_matches_high_precision(rho, ref):
    s = math.sqrt((1 - rho) * (1 + rho))
    w = np.array([[1, 0, 0, 0], [rho, s, 0, 0], [0.3, 0.5, math.sqrt(1 - 0.34), 0],
                  [-0.2, 0.4, 0.1, math.sqrt(1 - 0.21)]])
    r = w @ w.T
    np.fill_diagonal(r, 1.0)
    assert orthant(r) == pytest.approx(ref, abs=1e-13)


# --------------------------------------------------------------------------- moments


def test_moments_match_monte_carlo():
    rng = np.random.default_rng(3)
    g = rng.standard_normal((4, 6))
    cov = g @ g.T / 6
    x = rng.standard_normal((2_000_000, 4)) @ np.linalg.cholesky(cov).T
    cases = [([0, 1, 2, 3], 0, 1), ([0, 1, 2, 3], 2, 2), ([0, 1], 2, 3), ([0, 1, 2], 3, 3),
             ([0], 1, 2), ([2, 3], 2, 0), ([0, 1, 2, 3], 0, 0)]
    for pos, a, b in cases:
        f = x[:, a] * x[:, b] * np.all(x[:, pos] > 0, axis=1)
        se = f.std() / math.sqrt(f.size)
        assert abs(moment(cov, pos, a, b) - f.mean()) < 5 * se, (pos, a, b)
    # and the exact ones: E[x_a x_b 1{x_j > 0}] = Σ_ab / 2, E[x² 1{x > 0}] = Σ / 2
    assert moment(cov, [1], 0, 2) == pytest.approx(cov[0, 2] / 2, abs=1e-15)
    assert moment(cov[:1, :1], [0], 0, 0) == pytest.approx(cov[0, 0] / 2, abs=1e-15)


# --------------------------------------------------------------------------- variance term


def _omega_random():
    g = np.random.default_rng(7).standard_normal((P + K, P + K + 3))
    return 0.6 * g @ g.T / (P + K + 3)


def _omega_aligned(rho=0.999):
    """Student 0 at correlation ρ with teacher 0 (the others generic)."""
    rng = np.random.default_rng(8)
    teach = rng.standard_normal((K, 8)) / math.sqrt(8)
    stud = rng.standard_normal((P, 8)) * 0.7 / math.sqrt(8)
    t0 = teach[0] / np.linalg.norm(teach[0])
    perp = stud[0] - (stud[0] @ t0) * t0
    stud[0] = 0.9 * (rho * t0 + math.sqrt(1 - rho**2) * perp / np.linalg.norm(perp))
    om = omega_of(stud @ stud.T, stud @ teach.T, teach @ teach.T)
    assert om[0, P] / math.sqrt(om[0, 0] * om[P, P]) == pytest.approx(rho)
    return om


def _variance_monte_carlo(omega, noise):
    """Per-teacher (relu, linear) mean and standard error of E[(e² + Δ) θ(λ_j) θ(λ_l)]."""
    relu = activations.get("relu")
    v = error_weights(P, K)
    chol = np.linalg.cholesky(omega)
    rng = np.random.default_rng(11)
    reps = {"relu": [], "linear": []}
    for _ in range(REPS):
        x = rng.standard_normal((N_MC, P + K)) @ chol.T
        ds = relu.deriv(x[:, :P])
        for teacher, out in reps.items():
            h = np.concatenate([relu.fn(x[:, :P]), activations.get(teacher).fn(x[:, P:])], 1)
            e = h @ v
            out.append(np.einsum("n,nj,nl->jl", e**2 + noise, ds, ds) / N_MC)
    return {t: (np.mean(a, 0), np.std(a, 0, ddof=1) / math.sqrt(REPS)) for t, a in reps.items()}


@pytest.mark.parametrize("omega", [_omega_random, _omega_aligned], ids=["random", "aligned"])
def test_relu_variance_matches_monte_carlo(omega):
    om = omega()
    mc = _variance_monte_carlo(om, 0.1)
    for teacher, (mean, se) in mc.items():
        theory = engine("relu", teacher).variance(om, P, 0.1)
        assert np.all(np.abs(theory - mean) <= 5 * se), (teacher, theory, mean, se)
        np.testing.assert_array_equal(theory, theory.T)


@pytest.mark.parametrize(("p", "k"), [(1, 1), (2, 2), (4, 2)])
def test_relu_variance_vanishes_with_the_error(p, k):
    """Students that are copies of the teachers (two per teacher for p = 4): e ≡ 0, so the
    variance term is Δ E[θθ] exactly; nearly there it is O(distance²) with the risk. This is
    where the Stein terms of aligned units must cancel to rounding."""
    rng = np.random.default_rng(p)
    teach = rng.standard_normal((k, 20)) / math.sqrt(20)
    eng = engine("relu", "relu")
    for delta in (1e-3, 1e-6, 0.0):
        stud = teach[np.arange(p) % k] + delta * rng.standard_normal((p, 20)) / math.sqrt(20)
        om = omega_of(stud @ stud.T, stud @ teach.T, teach @ teach.T)
        quad = eng.variance(om, p, 0.0)
        assert np.abs(quad).max() <= 10 * eng.risk(om, p) + 1e-8, (delta, quad)


# --------------------------------------------------------------------------- dynamics


def test_relu_ode_with_variance_matches_simulation():
    """relu/relu with the variance term large: γ/p = 0.5 and label noise."""
    kw = dict(p=2, k=2, gamma=1.0, noise=0.1, t_max=8.0, d=1000)
    sim = simulate("relu", "relu", seeds=8, **kw)
    th = ode("relu", "relu", **kw)
    assert th.attrs["status"] == "ok"
    t = sim["t"].values
    r_ode = th["risk"].interp(t=t).values
    mean = sim["risk_mean"].values
    se = sim["risk_std"].values / math.sqrt(sim.sizes["seed"])
    gap = np.abs(r_ode - mean)
    bound = 3 * se + 0.02 * r_ode
    assert np.all(gap <= bound), (t[gap > bound], r_ode[gap > bound], mean[gap > bound])
    # the variance term matters here: gradient flow ends well below SGD
    flow = ode("relu", "relu", variance=False, **kw)
    assert float(flow["risk"][-1]) < 0.8 * float(th["risk"][-1])

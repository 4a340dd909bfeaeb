"""Quadrature of smooth activations (tanh, sigmoid, softplus, sin) in the SGD ODE vs independent
references: nested adaptive quadrature (scipy), a dense tensor trapezoid rule in the
eigen-coordinates of each covariance (no conditioning, no tables: :func:`_dense_variance`),
and Monte Carlo with its error bars. Gauss–Hermite is checked to fail where it used to be used.
"""

import numpy as np
import pytest
from scipy import integrate

from twolayer import activations
from twolayer.gaussian import hermite_rule, trapezoid_rule
from twolayer.sgd import integrals
from twolayer.sgd.init import omega_of
from twolayer.sgd.integrals import Engine, error_weights

# Tolerances, relative to the largest entry of the quantity
PAIR_RTOL = 1e-7  # measured ≤ 3e-8
VARIANCE_RTOL = 1e-6  # measured ≤ 3e-7 over 48 states of all pairs of the four activations


def _probe_state():
    """p = 4, k = 2, Q = M P⁻¹ Mᵀ + diag(q): diag Ω = 2.39, 1.64, 0.75, 0.85 | 0.86, 0.88."""
    rng = np.random.default_rng(2)
    P = np.diag(rng.uniform(0.7, 1.3, 2))
    M = rng.normal(0.0, 0.5, (4, 2))
    q = rng.uniform(0.2, 1.0, 4)
    return omega_of(M @ np.linalg.inv(P) @ M.T + np.diag(q), M, P)


def _aligned_state(rho=0.999):
    """p = k = 2: student 0 at correlation ρ with teacher 0 (both of variance 2)."""
    rng = np.random.default_rng(5)
    T = rng.standard_normal((2, 40))
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    u = rng.standard_normal(40)
    u -= T[0] * (T[0] @ u)
    s1 = rng.standard_normal(40)
    W = np.stack([np.sqrt(2.0) * (rho * T[0] + np.sqrt(1 - rho**2) * u / np.linalg.norm(u)),
                  0.8 * s1 / np.linalg.norm(s1)])
    Ts = T * np.array([[np.sqrt(2.0)], [1.0]])
    return omega_of(W @ W.T, W @ Ts.T, Ts @ Ts.T)


def _spread_state(seed):
    """p = k = 2 with log-uniform variances in [0.05, 5] and random correlations."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((4, 30))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    W *= np.sqrt(np.exp(rng.uniform(np.log(0.05), np.log(5.0), 4)))[:, None]
    return W @ W.T


def _dense_variance(omega, p, student, teacher, h_x=0.25, h_z=0.45, radius=8.0):
    """Σ_ab v_a v_b E[σ'_j σ'_l h_a h_b] term by term: a tensor trapezoid rule in the
    eigen-coordinates of each 4 × 4 covariance, the activations evaluated exactly."""
    s, t = activations.get(student), activations.get(teacher)
    n = omega.shape[0]
    v = error_weights(p, n - p)
    out = np.zeros((p, p))
    for j in range(p):
        for q in range(j, p):
            for a in range(n):
                for b in range(a, n):
                    ix = [j, q, a, b]
                    lam, vec = np.linalg.eigh(omega[np.ix_(ix, ix)])
                    x, w = np.zeros((1, 4)), np.ones(1)
                    for c in np.flatnonzero(lam > 1e-13 * lam[-1]):
                        col = vec[:, c] * np.sqrt(lam[c])
                        z, wz = trapezoid_rule(np.abs(col).max(), h_x, h_z, radius)
                        x = (x[:, None] + z[:, None] * col).reshape(-1, 4)
                        w = np.outer(w, wz).ravel()
                    fns = [s.deriv, s.deriv] + [s.fn if u < p else t.fn for u in (a, b)]
                    term = np.prod([f(x[:, i]) for i, f in enumerate(fns)], axis=0) @ w
                    out[j, q] += v[a] * v[b] * (1 if a == b else 2) * term
            out[q, j] = out[j, q]
    return out


# _dense_variance(_probe_state(), 4, ·, "tanh") with h_x = 0.25 (h_x = 0.3 agrees to 3e-9 of
# the scale); Monte Carlo with 4e6 samples agrees to within its standard error (~1e-3).
PROBE_REFERENCE = {
    "tanh": [[0.038923200566, 0.030926726575, 0.043793992632, 0.038779712768],
             [0.030926726575, 0.061557617671, 0.060768148423, 0.051480247721],
             [0.043793992632, 0.060768148423, 0.122310483634, 0.091345250897],
             [0.038779712768, 0.051480247721, 0.091345250897, 0.100155118550]],
    "sigmoid": [[0.013212994000, 0.012555995732, 0.015027353624, 0.014652993530],
                [0.012555995732, 0.014816380395, 0.016218286513, 0.015844018538],
                [0.015027353624, 0.016218286513, 0.020919307284, 0.019843525692],
                [0.014652993530, 0.015844018538, 0.019843525692, 0.020155005243]],
}


def _variance(student, teacher, omega, p, noise=0.0):
    eng = Engine(activations.get(student), activations.get(teacher))
    return eng.variance(omega, p, noise)


@pytest.mark.parametrize("student", ["tanh", "sigmoid"])
def test_variance_term_at_a_large_variance_matches_the_dense_reference(student):
    """Ω_11 = 2.39: the former 4-D Gauss–Hermite (10 nodes per axis) was 1–10% off here."""
    om, ref = _probe_state(), np.array(PROBE_REFERENCE[student])
    got = _variance(student, "tanh", om, 4)
    np.testing.assert_allclose(got, ref, rtol=0, atol=VARIANCE_RTOL * np.abs(ref).max())
    if student == "tanh":
        v = error_weights(4, 2)
        gh = integrals._i4_contracted_quad(Engine(*(activations.get("tanh"),) * 2), om, 4, v)
        assert np.abs(gh - ref).max() > 0.05 * np.abs(ref).max()


@pytest.mark.parametrize(("student", "teacher", "omega"), [
    ("tanh", "tanh", _aligned_state(0.999)),
    ("tanh", "tanh", _aligned_state(-0.999)),
    ("sigmoid", "tanh", _aligned_state(0.999)),
    ("softplus", "sin", _spread_state(3)),
    ("sin", "sigmoid", _spread_state(4)),
    ("tanh", "softplus", _spread_state(5)),
])
def test_variance_term_matches_the_dense_reference(student, teacher, omega):
    """Near-aligned pairs (ρ = ±0.999) and variances from 0.05 to 5, p = k = 2."""
    ref = _dense_variance(omega, 2, student, teacher)
    got = _variance(student, teacher, omega, 2)
    np.testing.assert_allclose(got, ref, rtol=0, atol=VARIANCE_RTOL * np.abs(ref).max())


@pytest.mark.parametrize("student", ["tanh", "sigmoid"])
def test_variance_term_matches_monte_carlo(student):
    """E[(e² + Δ) σ'(λ_j) σ'(λ_l)] at the large-variance state vs 4e6 samples, 5 standard errors."""
    om, p, noise = _probe_state(), 4, 0.1
    s, t = activations.get(student), activations.get("tanh")
    v = error_weights(p, 2)
    chol = np.linalg.cholesky(om)
    rng = np.random.default_rng(1)
    reps = []
    for _ in range(10):
        x = rng.standard_normal((400_000, 6)) @ chol.T
        e = np.concatenate([s.fn(x[:, :p]), t.fn(x[:, p:])], axis=1) @ v
        ds = s.deriv(x[:, :p])
        reps.append(np.einsum("n,nj,nl->jl", e * e + noise, ds, ds) / x.shape[0])
    mean, se = np.mean(reps, 0), np.std(reps, 0, ddof=1) / np.sqrt(len(reps))
    got = _variance(student, "tanh", om, p, noise)
    assert np.all(np.abs(got - mean) <= 5 * se), (got, mean, se)


def _nested(f, g, caa, cbb, cab):
    """E[f(x_a) g(x_b)] by nested adaptive quadrature: x_a = √caa u, x_b | u ~ N(r u, s²)."""
    sa = np.sqrt(caa)
    r, s = cab / sa, np.sqrt(max(cbb - cab**2 / caa, 0.0))
    gauss = 1.0 / np.sqrt(2 * np.pi)

    def inner(u):
        return integrate.quad(lambda t: g(r * u + s * t) * gauss * np.exp(-0.5 * t * t),
                              -12, 12, epsabs=1e-14, epsrel=1e-13, limit=200)[0]

    return integrate.quad(lambda u: f(sa * u) * inner(u) * gauss * np.exp(-0.5 * u * u),
                          -12, 12, epsabs=1e-14, epsrel=1e-13, limit=200)[0]


COVS = [(0.05, 0.05, 0.5), (0.5, 1.0, 0.999), (2.0, 2.0, 0.5), (2.0, 5.0, -0.9),
        (5.0, 5.0, 0.999), (4.0, 0.3, 0.3)]


@pytest.mark.parametrize(("student", "teacher"), [("tanh", "tanh"), ("sigmoid", "softplus"),
                                                  ("tanh", "sin")])
@pytest.mark.parametrize("kind", ["ff", "d1d1", "d2f"])
def test_pair_integrals_match_nested_quadrature(student, teacher, kind):
    """E[h_a h_b], E[h_a' h_b'], E[h_a'' h_b] for variances 0.05–5, ρ up to 0.999, batched."""
    a, b = activations.get(student), activations.get(teacher)
    caa, cbb, rho = (np.array(c) for c in zip(*COVS, strict=True))
    cab = rho * np.sqrt(caa * cbb)
    got = integrals._pair(kind, a, b, caa, cbb, cab)
    fa, fb = (getattr(act, attr) for act, attr in zip((a, b), integrals._FNS[kind], strict=True))
    ref = np.array([_nested(fa, fb, *c) for c in zip(caa, cbb, cab, strict=True)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=PAIR_RTOL * np.abs(ref).max())


def test_trapezoid_rule_converges_where_gauss_hermite_does_not():
    """E[sech⁴(s z)]: the trapezoid rule in x-units is good to 1e-7 for s from 0.05 to 3;
    40-node Gauss–Hermite is 1e-3 off from s = 1.5 on."""
    f = lambda x: np.cosh(x) ** -4  # noqa: E731
    for s in (0.05, 0.5, 1.0, 1.5, 3.0):
        ref = integrate.quad(lambda z, s=s: f(s * z) * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi),
                             -40, 40, epsabs=1e-15, epsrel=1e-13, limit=400, points=[0])[0]
        z, w = trapezoid_rule(s)
        assert f(s * z) @ w == pytest.approx(ref, rel=1e-7)
        if s >= 1.5:
            z, w = hermite_rule(40)
            assert abs(f(s * z) @ w - ref) > 1e-3 * ref

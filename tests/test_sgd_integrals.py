"""Gaussian integrals of the committee ODE vs Monte Carlo (with its error bars), closed forms."""

import numpy as np
import pytest

from twolayer import activations
from twolayer.errors import ModelAssumptionError
from twolayer.sgd import _kernels
from twolayer.sgd.integrals import Engine, engine, error_weights

P, K = 3, 2
N_MC, REPS = 400_000, 10


@pytest.fixture(scope="module")
def omega():
    g = np.random.default_rng(7).standard_normal((P + K, P + K + 3))
    return 0.6 * g @ g.T / (P + K + 3)


def _monte_carlo(student, teacher, omega, noise):
    """Per-repetition estimates of risk, dM, the gradient part of dQ and the variance term."""
    s, t = activations.get(student), activations.get(teacher)
    v = error_weights(P, K)
    chol = np.linalg.cholesky(omega)
    rng = np.random.default_rng(11)
    out = {"risk": [], "dM": [], "grad": [], "var": []}
    for _ in range(REPS):
        x = rng.standard_normal((N_MC, P + K)) @ chol.T
        e = np.concatenate([s.fn(x[:, :P]), t.fn(x[:, P:])], axis=1) @ v
        ds = s.deriv(x[:, :P])
        g = np.einsum("n,nj,nl->jl", e, ds, x[:, :P]) / N_MC
        out["risk"].append(0.5 * np.mean(e**2))
        out["dM"].append(np.einsum("n,nj,nr->jr", e, ds, x[:, P:]) / N_MC)
        out["grad"].append(g + g.T)
        out["var"].append(np.einsum("n,nj,nl->jl", e**2 + noise, ds, ds) / N_MC)
    return {k: (np.mean(a, 0), np.std(a, 0, ddof=1) / np.sqrt(REPS)) for k, a in out.items()}


CASES = [("erf", "erf", True), ("tanh", "tanh", True), ("relu", "relu", True),
         ("square", "square", True), ("erf", "linear", True), ("relu", "erf", False),
         ("sigmoid", "tanh", True), ("linear", "erf", True)]


@pytest.mark.parametrize(("student", "teacher", "variance"), CASES)
def test_flow_and_risk_match_monte_carlo(omega, student, teacher, variance):
    eng = engine(student, teacher)
    mc = _monte_carlo(student, teacher, omega, noise=0.1)
    dq, dm = eng.flow(omega, P, 0.0, 0.0)
    theory = {"risk": eng.risk(omega, P), "dM": dm, "grad": dq}
    if variance:
        theory["var"] = Engine(eng.student, eng.teacher).variance(omega, P, 0.1)
    for name, value in theory.items():
        mean, se = mc[name]
        # 5 standard errors, plus 1e-6 of the scale for the trapezoid rules of the variance term
        # (measured ≤ 3e-7; tests/test_sgd_quadrature.py)
        tol = 5 * se + (1e-6 * np.abs(mean).max() if name == "var" else 1e-12)
        assert np.all(np.abs(value - mean) <= tol), (name, value, mean, se)


def test_erf_kernel_equals_quadrature_engine(omega):
    """The Numba closed forms (I3, I4, J2) agree with the generic Stein + quadrature engine."""
    erf = activations.get("erf")
    v = error_weights(P, K)
    dq, dm = _kernels.erf_flow(omega, P, v, 0.7, 0.2)
    generic = Engine(erf, erf)
    gq, gm = generic.flow(omega, P, 0.2, 0.7)
    np.testing.assert_allclose(dm, gm, rtol=1e-10, atol=1e-12)
    # the generic engine's variance term (twolayer.sgd.smooth) is good to ~1e-8 of the scale here
    np.testing.assert_allclose(dq, gq, rtol=0, atol=1e-7 * np.abs(gq).max())


def test_erf_risk_closed_form_single_unit():
    """p = k = 1, Q = P = 1, M = m: R = ½(2/π)[2 asin(1/2) − 2 asin(m/2)] = 1/3 − (2/π)asin(m/2)."""
    eng = engine("erf", "erf")
    for m in (0.0, 0.5, 1.0):
        om = np.array([[1.0, m], [m, 1.0]])
        assert eng.risk(om, 1) == pytest.approx(1 / 3 - 2 / np.pi * np.arcsin(m / 2), abs=1e-14)


def test_kinked_variance_term_without_exact_rule_is_refused():
    """relu/relu and relu/linear are exact (twolayer.sgd.orthant); relu/erf is not."""
    with pytest.raises(ModelAssumptionError, match="kinked"):
        Engine(activations.get("relu"), activations.get("erf")).variance(np.eye(3), 2, 0.0)
    with pytest.raises(ModelAssumptionError, match="relu/erf"):
        engine("relu", "erf").flow(np.eye(3), 2, 0.0, 0.5)

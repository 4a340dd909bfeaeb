"""Activation registry: closed forms against quadrature and Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import special, stats

from twolayer import activations, gaussian
from twolayer.errors import ParameterError, UnknownActivationError

CLOSED = ["linear", "relu", "square", "erf", "sin", "he1", "he2", "he3", "he4"]


@pytest.mark.parametrize("name", CLOSED)
def test_hermite_closed_forms_match_quadrature(name):
    act = activations.get(name)
    for k, closed in act.hermite_closed.items():
        assert act.mu_quad(k) == pytest.approx(closed, abs=1e-10)
    quad2 = float(act.expect(lambda z: act.fn(z) ** 2))
    quadd2 = float(act.expect(lambda z: act.deriv(z) ** 2))
    assert act.second_moment == pytest.approx(quad2, rel=1e-10)
    assert act.deriv_second_moment == pytest.approx(quadd2, rel=1e-10)


def test_known_values_written_out():
    # relu: E relu = 1/sqrt(2π), μ1 = 1/2, μ2 = E δ(z) = 1/sqrt(2π); erf(x/√2): μ1 = 1/√π,
    # E σ² = (2/π) arcsin(1/2) = 1/3; square: μ0 = 1, μ2 = 2, E z⁴ = 3.
    relu, erf, sq = (activations.get(n) for n in ("relu", "erf", "square"))
    assert relu.mu(0) == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert relu.mu(1) == 0.5 and relu.mu(2) == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert erf.mu(1) == pytest.approx(1 / math.sqrt(math.pi))
    assert erf.second_moment == pytest.approx(2 / math.pi * math.asin(0.5))
    assert (sq.mu(0), sq.mu(2), sq.second_moment) == (1.0, 2.0, 3.0)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "softplus", "relu"])
def test_quadrature_against_monte_carlo(name):
    act = activations.get(name)
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for k in range(4):
        sample = act.fn(z) * special.eval_hermitenorm(k, z)
        se = sample.std() / math.sqrt(len(z))
        assert abs(act.mu(k) - sample.mean()) < 5 * se + 1e-12


def test_kinked_quadrature_is_exact_for_relu_shifted():
    # E relu(z + m)² = (m² + 1) Φ(m) + m φ(m)
    m = np.array([-1.3, 0.0, 0.3, 2.0])
    act = activations.get("relu")
    got = act.expect(lambda z: act.fn(m[:, None] + z) ** 2, loc=m, scale=np.ones_like(m))
    want = (m**2 + 1) * stats.norm.cdf(m) + m * stats.norm.pdf(m)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # plain Gauss-Hermite converges only like 1/n on the kink: the split rule is needed
    gh = gaussian.expect(lambda z: np.maximum(z + 0.3, 0) ** 2, n=64)
    assert abs(gh - want[2]) > 1e-5


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownActivationError, match=r"known: (.+, )?erf, he1, he2"):
        activations.get("nosuch")
    with pytest.raises(ParameterError):
        activations.get("nosuch")


def test_register_callable():
    act = activations.register("cube_test", lambda x: x**3, overwrite=True)
    assert act.mu(1) == pytest.approx(3.0, rel=1e-6)  # E 3z² (derivative by differences)
    assert act.mu(3) == pytest.approx(6.0, rel=1e-12)
    assert act.deriv_second_moment == pytest.approx(9 * 3, rel=1e-6)  # E (3z²)² = 27
    with pytest.raises(ParameterError, match="already registered"):
        activations.register("cube_test", lambda x: x**3)


def test_a_registered_function_without_second_derivative_runs_the_sgd_ode():
    """σ'' by finite differences: the ODE of a user tanh (σ' given, or not even that) equals
    the built-in tanh's (exact σ'') to 1e-7 relative."""
    import numpy as np

    from twolayer import activations
    from twolayer.sgd import ode

    activations.register("_tanh_no_d2", np.tanh, lambda x: 1 / np.cosh(x) ** 2, overwrite=True)
    activations.register("_tanh_no_d", np.tanh, overwrite=True)
    kw = dict(p=2, k=1, d=100, t_max=2.0)
    ref = ode("tanh", "tanh", **kw)["risk"].values
    for name in ("_tanh_no_d2", "_tanh_no_d"):
        risk = ode(name, "tanh", **kw)["risk"].values
        np.testing.assert_allclose(risk, ref, rtol=1e-7)

"""The closed forms an activation carries: only the built-ins have them, and they agree with the
generic quadrature that every other activation gets.

References: ``dataclasses.replace(act)`` is the same function without the closed forms (the
fallback the engine would use), and for relu, whose fallback has no δ, the registry's
kink-split Gauss–Legendre quadrature (:meth:`Activation.expect`) with Stein's lemma for σ''.
"""

import dataclasses
import math

import numpy as np
import pytest

from twolayer import activations
from twolayer.errors import ModelAssumptionError
from twolayer.sgd import _kernels, simulate
from twolayer.sgd.integrals import Engine, ErfEngine, _erf_pairs, _pair, engine
from twolayer.sgd.wide import _closed_moments, _moments

from .test_sgd_quadrature import PAIR_RTOL

BUILTINS = ["erf", "he1", "he2", "he3", "he4", "linear", "relu", "sigmoid", "sin", "softplus",
            "square", "tanh"]
CLOSED_FORM = {"erf": "erf", "relu": "relu", "linear": "linear", "square": "square"}
KERNEL_ID = {"erf": 0, "relu": 1, "linear": 2, "square": 3, "tanh": 4}
DEGREE = {"linear": 1, "square": 2, "he1": 1, "he2": 2, "he3": 3, "he4": 4}
# (Ω_aa, Ω_bb, Ω_ab): generic, unequal variances with a negative correlation, nearly aligned
COVARIANCES = [(0.7, 1.3, 0.3), (2.0, 0.5, -0.8), (1.0, 1.0, 0.999)]


def _covs():
    return tuple(np.array(c) for c in zip(*COVARIANCES, strict=True))


def _rel(got, want):
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), 1e-300))


def test_builtins_carry_their_closed_form_facts():
    for name in BUILTINS:
        act = activations.get(name)
        assert act.builtin
        assert act.closed_form == CLOSED_FORM.get(name)
        assert act.kernel_id == KERNEL_ID.get(name)
        assert act.degree == DEGREE.get(name) and act.polynomial == (name in DEGREE)
    copy = dataclasses.replace(activations.get("erf"))  # same function, not the built-in entry
    assert not copy.builtin
    assert (copy.closed_form, copy.kernel_id, copy.degree) == (None, None, None)
    with pytest.raises(TypeError):
        activations.Activation("x", np.tanh, np.tanh, closed_form="erf")  # not an argument


@pytest.fixture
def user_erf():
    """'erf' re-registered as tanh (with its derivatives); the built-in is put back after."""
    builtin = activations.get("erf")
    user = activations.register("erf", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2,
                                lambda x: -2.0 * np.tanh(x) * (1.0 - np.tanh(x) ** 2),
                                overwrite=True)
    try:
        yield user, builtin
    finally:
        activations.register("erf", builtin, overwrite=True)
    assert activations.get("erf") is builtin and builtin.builtin


def _dense_pair(f, g, caa, cbb, cab, n=200):
    """E[f(x_a) g(x_b)] by a 200 × 200 trapezoid rule (h = 0.07 in z), independent of the engine."""
    z = np.linspace(-7.0, 7.0, n)
    w = np.exp(-0.5 * z * z)
    w /= w.sum()
    out = []
    for a, b, c in zip(caa, cbb, cab, strict=True):
        sa = math.sqrt(a)
        r = c / sa
        s = math.sqrt(max(b - r * r, 0.0))
        out.append(w @ (f(sa * z)[:, None] * g(r * z[:, None] + s * z[None])) @ w)
    return np.array(out)


def test_user_function_under_a_builtin_name_gets_quadrature_not_the_closed_form(user_erf):
    user_erf, builtin = user_erf
    assert not user_erf.builtin and user_erf.name == "erf"
    assert (user_erf.closed_form, user_erf.kernel_id) == (None, None)
    caa, cbb, cab = _covs()
    for kind, (fa, fb) in {"ff": ("fn", "fn"), "d1d1": ("deriv", "deriv"),
                           "d2f": ("deriv2", "fn")}.items():
        got = _pair(kind, user_erf, user_erf, caa, cbb, cab)
        want = _dense_pair(getattr(user_erf, fa), getattr(user_erf, fb), caa, cbb, cab)
        assert _rel(got, want) < PAIR_RTOL, kind
        assert _rel(got, _erf_pairs(kind, caa, cbb, cab)) > 1e-2, kind  # the built-in's value

    # the ODE right-hand side: the generic engine, equal to the one of the built-in tanh
    eng = engine("erf", "erf")
    assert type(eng) is Engine and eng.student is user_erf
    g = np.random.default_rng(4).standard_normal((5, 8))
    omega = 0.6 * g @ g.T / 8
    dq, dm = eng.flow(omega, 3, 0.1, 0.4)
    tq, tm = engine("tanh", "tanh").flow(omega, 3, 0.1, 0.4)
    np.testing.assert_array_equal(dq, tq)
    np.testing.assert_array_equal(dm, tm)
    bq, _ = ErfEngine(builtin, builtin).flow(omega, 3, 0.1, 0.4)
    assert _rel(dq, bq) > 1e-2

    # neither the compiled SGD step nor the closed-form wide moments
    res = simulate("erf", "erf", p=2, k=1, d=20, gamma=0.5, t_max=0.05, seeds=1)
    assert res.attrs["compiled"] == 0
    assert _closed_moments(user_erf) is None


def test_user_relu_under_the_builtin_name_is_refused_not_given_the_delta_formula():
    builtin = activations.get("relu")
    activations.register("relu", lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float),
                         lambda x: np.zeros_like(x), kinks=(0.0,), overwrite=True)
    try:
        with pytest.raises(ModelAssumptionError, match="kinked activation 'relu'"):
            engine("relu", "erf")
    finally:
        activations.register("relu", builtin, overwrite=True)
    assert type(engine("relu", "erf")) is Engine


# --------------------------------------------------------------------------- closed vs fallback


def _split_pair(kind, act, caa, cbb, cab, n=400):
    """E[f(x_a) g(x_b)] (f, g = σ or σ') nested, each 1-D integral split at the kinks."""
    f = act.fn if kind == "ff" else act.deriv
    out = []
    for a, b, c in zip(caa, cbb, cab, strict=True):
        sa = math.sqrt(a)
        r = c / sa
        s = math.sqrt(max(b - r * r, 0.0))

        def inner(z1, r=r, s=s):
            return act.expect(lambda z2: f(r * z1[..., None] + s * z2), loc=r * z1,
                              scale=np.full_like(z1, s), n=n)

        out.append(act.expect(lambda z1, sa=sa, inner=inner: f(sa * z1) * inner(z1), scale=sa,
                              n=n))
    return np.array(out)


@pytest.mark.parametrize("name", sorted(CLOSED_FORM))
def test_closed_pair_integrals_agree_with_the_quadrature_fallback(name):
    act = activations.get(name)
    generic = dataclasses.replace(act)  # the same σ, σ', σ'' without closed forms
    caa, cbb, cab = _covs()
    for kind in ("ff", "d1d1", "d2f"):
        closed = _pair(kind, act, act, caa, cbb, cab)
        if not act.kinks:
            fallback = _pair(kind, generic, generic, caa, cbb, cab)  # trapezoid rules
        elif kind == "d2f":  # σ'' = δ: E[δ(x_a) σ(x_b)] = φ(0)/√Ω_aa · E[σ(x_b) | x_a = 0]
            sd = np.sqrt(cbb - cab**2 / caa)
            fallback = np.array([act.expect(lambda z, s=s: act.fn(s * z), scale=s)
                                 for s in sd]) / np.sqrt(2 * np.pi * caa)
        else:
            fallback = _split_pair(kind, generic, caa, cbb, cab)
        assert _rel(closed, fallback) < PAIR_RTOL, (kind, closed, fallback)


def _stein_moments(act, m, s, n=400):
    """The nine z-moments of X = m + s z by kink-split quadrature; E[σ''·g] by Stein's lemma,
    E[g(X) σ''(X)] = E[g(X) σ'(X) z]/s − E[g'(X) σ'(X)], so a δ in σ'' needs no special case."""
    def e(g):
        return act.expect(lambda z: g(m[..., None] + s[..., None] * z), loc=m, scale=s, n=n)

    f, d = act.fn, act.deriv
    zs = lambda x: (x - m[..., None]) / s[..., None]  # noqa: E731
    h = e(lambda x: d(x) ** 2)
    return (e(f), e(d), e(lambda x: d(x) * zs(x)) / s, h, e(lambda x: f(x) * d(x)),
            e(lambda x: f(x) * d(x) * zs(x)) / s - h, e(lambda x: f(x) * d(x) ** 2),
            e(lambda x: (f(x) * d(x)) ** 2), e(lambda x: f(x) ** 2))


@pytest.mark.parametrize("name", ["linear", "relu", "square"])
def test_closed_wide_moments_agree_with_quadrature(name):
    act = activations.get(name)
    m = np.array([[-1.2, 0.0, 0.4], [2.0, 0.3, -0.5]])
    s = np.broadcast_to(np.array([0.2, 1.0, 1.7]), m.shape)
    closed = _moments(act, m, s, None)
    if act.kinks:
        fallback = _stein_moments(dataclasses.replace(act), m, s)
    else:
        fallback = _moments(dataclasses.replace(act), m, s, None)  # the trapezoid rule
    for field, got, want in zip(closed._fields, closed, fallback, strict=True):
        assert np.max(np.abs(got - want)) <= PAIR_RTOL * max(np.max(np.abs(want)), 1.0), field


def test_erf_ode_kernel_agrees_with_the_quadrature_engine():
    """ErfEngine (Numba, closed forms) against Engine on an erf without closed forms: pair
    integrals by the trapezoid rule, the variance term by twolayer.sgd.smooth."""
    erf = activations.get("erf")
    g = np.random.default_rng(9).standard_normal((5, 8))
    omega = 0.6 * g @ g.T / 8
    dq, dm = engine(erf, erf).flow(omega, 3, 0.2, 0.7)
    gq, gm = Engine(*(dataclasses.replace(erf),) * 2).flow(omega, 3, 0.2, 0.7)
    np.testing.assert_allclose(dm, gm, rtol=0, atol=PAIR_RTOL * np.abs(gm).max())
    # tests/test_sgd_integrals.py: the generic variance term is good to ~1e-8 of the scale
    np.testing.assert_allclose(dq, gq, rtol=0, atol=1e-7 * np.abs(gq).max())


@pytest.mark.parametrize("name", sorted(KERNEL_ID))
def test_compiled_sgd_step_codes_are_the_activations(name):
    act = activations.get(name)
    x = np.linspace(-4.0, 4.0, 81)
    got = np.array([_kernels._act.py_func(act.kernel_id, v) for v in x])
    dgot = np.array([_kernels._dact.py_func(act.kernel_id, v) for v in x])
    np.testing.assert_allclose(got, act.fn(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dgot, act.deriv(x), rtol=1e-13, atol=1e-15)

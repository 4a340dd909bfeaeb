"""Mini-batches, a trained second layer, weight decay and learning-rate schedules of committee
SGD: the defaults reproduce the committee machine, closed forms, Monte Carlo, ODE vs SGD."""

import importlib
import json

import numpy as np
import pytest
from scipy.linalg import expm

from tests.helpers import run
from twolayer import activations
from twolayer.errors import DivergenceWarning, ParameterError
from twolayer.params import SgdOde
from twolayer.sgd import engine, ode, simulate
from twolayer.sgd.init import Overlaps, omega_of
from twolayer.sgd.schedule import Schedule
from twolayer.sgd.simulate import _numpy_batch_block
from twolayer.sgd.wide import _WideSystem

ode_module = importlib.import_module("twolayer.sgd.ode")


# --------------------------------------------------------------------------- defaults
def test_defaults_reproduce_the_committee_machine_results():
    """b = 1, γ_a = ω = 0, constant schedule: the values of the code before the extensions
    (commit cd53c24, same calls), to 1e-12."""
    r = ode("erf", "erf", p=3, k=2, d=100, t_max=5.0, noise=0.1)["risk"].values[-1]
    assert r == pytest.approx(0.01367715973866811, rel=1e-12)
    # tanh: the wide path by quadrature (the erf student's moments have since become closed
    # forms, 0.0893778448869 against the former 0.0893778450312: 1.6e-9 apart)
    # (finite_d=False: the wide ODE's former d = ∞ form; its default now adds the O(1/(d − k))
    # average over the off-diagonal orthogonal overlaps)
    r = ode("tanh", "erf", p=80, k=1, d=200, t_max=1.0, reduction="wide",
            finite_d=False)["risk"].values[-1]
    assert r == pytest.approx(0.08226314511061546, rel=1e-12)
    sim = simulate("erf", "erf", p=2, k=1, d=100, t_max=1.0, seeds=2, noise=0.1)
    np.testing.assert_allclose(sim["risk"].values[:, -1], [0.14626459648465803,
                                                           0.14921218304291683], rtol=1e-12)
    sim = simulate("sigmoid", "erf", p=2, k=1, d=50, t_max=0.5, seeds=2)  # NumPy fallback
    np.testing.assert_allclose(sim["risk"].values[:, -1], [0.286078710826767,
                                                           0.2889824387229113], rtol=1e-12)
    assert "a" not in sim


def test_extended_step_with_neutral_settings_equals_the_plain_step():
    """A steps schedule with factor 1 runs the extended kernel (mini-batch, a, decay) with
    b = 1, γ_a = ω = 0, g = 1: the same trajectory as the plain kernel up to rounding."""
    kw = dict(p=3, k=2, d=200, t_max=2.0, seeds=2, noise=0.1)
    plain = simulate("erf", "erf", **kw)["risk"].values
    neutral = simulate("erf", "erf", schedule="steps", schedule_times=[0.5],
                       schedule_factors=[1.0], **kw)["risk"].values
    np.testing.assert_allclose(neutral, plain, rtol=1e-10)


def test_compiled_and_numpy_extended_steps_agree():
    """The Numba kernel and the NumPy fallback of the extended step (b = 4, a trained, decay,
    varying rates), written separately, on the same inputs."""
    from twolayer.sgd._kernels import sgd_batch_block

    rng = np.random.default_rng(0)
    s, p, k, d, b, n = 2, 3, 2, 40, 4, 25
    w0, wt = rng.normal(size=(s, p, d)), rng.normal(size=(s, k, d))
    xs, eps = rng.normal(size=(s, n * b, d)), 0.3 * rng.normal(size=(s, n * b))
    lrs, lras = 0.5 * rng.uniform(0.5, 1.0, n), 0.02 * rng.uniform(0.5, 1.0, n)
    shrink = 1.0 - 0.01 * rng.uniform(size=n)
    erf = activations.get("erf")
    w1, a1 = w0.copy(), np.ones((s, p))
    sgd_batch_block(w1, wt, a1, xs, eps, lrs, lras, shrink, b, 0, 0, False, np.ones(s, bool),
                    np.empty((p, d)))
    w2, a2 = w0.copy(), np.ones((s, p))
    _numpy_batch_block(w2, wt, a2, xs, eps, lrs, lras, shrink, b, erf, erf, False,
                       np.ones(s, bool))
    assert np.abs(a1 - 1).max() > 1e-3  # the second layer moved
    np.testing.assert_allclose(w1, w2, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(a1, a2, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- closed forms
def test_linear_network_with_decay_and_batch_follows_its_exact_solution():
    """Linear student and teacher, p = k = 1, a = 1: the ODE is affine in (M, Q),
    dM = P − (1 + ω) M, dQ = −2(1 + ω) Q + 2M + c (P − 2M + Q + Δ), c = γ/b; its exact
    solution by the matrix exponential (the ODE at rtol 1e-10). With a steps schedule (factor
    f from t_1 on) the drift gets f and the variance term f²."""
    gamma, b, om, noise, t1, f = 0.8, 4, 0.3, 0.2, 0.7, 0.5
    init = Overlaps(np.array([[1.3]]), np.array([[0.2]]), np.array([[1.0]]))

    def affine(g):  # d(M, Q, 1)/dt
        c = g * g * gamma / b
        return np.array([[-(1 + om) * g, 0.0, g],
                         [2 * g - 2 * c, -2 * (1 + om) * g + c, c * (1 + noise)],
                         [0.0, 0.0, 0.0]])

    for t_max in (0.5, 2.0):
        res = ode("linear", "linear", init=init, gamma=gamma, batch=b, weight_decay=om,
                  noise=noise, t_max=t_max, schedule="steps", schedule_times=[t1],
                  schedule_factors=[f], rtol=1e-10)
        x = expm(affine(1.0) * min(t_max, t1)) @ np.array([0.2, 1.3, 1.0])
        if t_max > t1:
            x = expm(affine(f) * (t_max - t1)) @ x
        M, Q = x[0], x[1]
        assert res["M"].values[-1, 0, 0] == pytest.approx(M, rel=1e-7)
        assert res["Q"].values[-1, 0, 0] == pytest.approx(Q, rel=1e-7)
        assert res["risk"].values[-1] == pytest.approx(0.5 * (Q - 2 * M + 1.0), rel=1e-6)


def test_batch_divides_the_variance_term():
    """dQ(b) − dQ(gradient flow) = (dQ(b = 1) − dQ(gradient flow)) / b, erf kernel."""
    ov = Overlaps(np.array([[1.0, 0.2], [0.2, 0.8]]), np.array([[0.3, 0.1], [0.0, 0.5]]),
                  np.eye(2))

    def dq(batch, variance=True):
        sys = ode_module._System(engine("erf", "erf"), ov.P, 2, 1.5, 0.1, variance, False,
                                 batch=batch)
        return sys.rhs(0.0, sys.pack(ov.Q, ov.M))

    flow = dq(1, variance=False)
    np.testing.assert_allclose(dq(8) - flow, (dq(1) - flow) / 8, rtol=1e-12, atol=1e-15)
    assert np.abs(dq(1) - flow).max() > 1e-3


def test_second_layer_flow_matches_monte_carlo():
    """The a-weighted right-hand side (erf closed forms) against Monte Carlo over the fields:
    dM_jr = a_j E[e σ'_j ν_r], dQ_jl = a_j E[e σ'_j λ_l] + a_l E[e σ'_l λ_j] + (γ/(p b)) a_j a_l
    E[(e² + Δ) σ'_j σ'_l], da_j = (γ_a p/γ) E[e σ_j], e = y* − ŷ, ŷ = (1/p) Σ a_j σ_j."""
    p, k, gamma, gamma_a, b, noise = 2, 2, 2.0, 1.5, 2, 0.1
    rng = np.random.default_rng(3)
    a = np.array([0.7, 1.4])
    Q = np.array([[1.0, 0.3], [0.3, 0.7]])
    M = np.array([[0.4, 0.1], [-0.2, 0.5]])
    P = np.eye(k)
    sys = ode_module._System(engine("erf", "erf"), P, p, gamma, noise, True, False,
                             batch=b, gamma_a=gamma_a)
    out = sys.rhs(0.0, sys.pack(Q, M, a))
    dQ, dM, da = sys.unpack(out)
    n = 400_000
    x = rng.multivariate_normal(np.zeros(p + k), omega_of(Q, M, P), size=n)
    lam, nu = x[:, :p], x[:, p:]
    erf = activations.get("erf")
    e = erf.fn(nu).mean(1) - erf.fn(lam) @ a / p
    d1 = erf.deriv(lam)
    samples = {
        "M": (a[:, None, None] * (e * d1.T)[:, None, :] * nu.T[None]).reshape(p * k, n),
        "Q": np.stack([a[j] * e * d1[:, j] * lam[:, m] + a[m] * e * d1[:, m] * lam[:, j]
                       + gamma / (p * b) * a[j] * a[m] * (e * e + noise) * d1[:, j] * d1[:, m]
                       for j in range(p) for m in range(p)]),
        "a": gamma_a * p / gamma * (e * erf.fn(lam).T),
    }
    for name, ours in (("M", dM.ravel()), ("Q", dQ.ravel()), ("a", da)):
        mean = samples[name].mean(axis=1)
        se = samples[name].std(axis=1) / np.sqrt(n)
        assert np.all(np.abs(ours - mean) < 4 * se), (name, ours, mean, se)


def test_erf_kernel_and_generic_engine_agree_with_a_second_layer():
    """The compiled erf right-hand side with a ≠ 1 against the generic engine (pair closed
    forms for the drift, the conditioned quadrature of sgd.smooth for the variance term)."""
    rng = np.random.default_rng(5)
    p, k = 3, 2
    Wm = rng.normal(size=(p + k, 12))
    om = Wm @ Wm.T / 12
    a = np.array([0.5, 1.2, -0.8])
    erf = activations.get("erf")
    generic = ode_module.Engine(erf, erf)
    for (dq1, dm1), (dq2, dm2) in [(engine("erf", "erf").flow(om, p, 0.1, 0.7, a),
                                    generic.flow(om, p, 0.1, 0.7, a))]:
        np.testing.assert_allclose(dm1, dm2, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dq1, dq2, rtol=1e-6, atol=1e-8)
    assert engine("erf", "erf").risk(om, p, a) == pytest.approx(
        float(generic.risk(om, p, a)), rel=1e-12)


def test_schedule_factors():
    assert Schedule("power", t0=0.5, beta=1.5).factor(1.5) == pytest.approx(4.0**-1.5)
    g = Schedule("steps", times=(1.0, 2.0), factors=(0.5, 0.1)).factor([0.0, 0.99, 1.0, 3.0])
    np.testing.assert_array_equal(g, [1.0, 1.0, 0.5, 0.1])


def test_steps_schedule_equals_two_constant_runs():
    """g = f from t_1 on: the flow after t_1 is the constant-rate flow at γ' = fγ in its own
    time t' = f (t − t_1) (t keeps counting steps at the base rate γ)."""
    kw = dict(p=2, k=2, d=100, noise=0.1, per_decade=10)
    g0, t1, f, T = 1.0, 0.8, 2.5, 2.0
    both = ode("erf", "erf", gamma=g0, t_max=T, schedule="steps", schedule_times=[t1],
               schedule_factors=[f], **kw)
    first = ode("erf", "erf", gamma=g0, t_max=t1, **kw)
    mid = Overlaps(first["Q"].values[-1], first["M"].values[-1], first["P"].values)
    second = ode("erf", "erf", gamma=f * g0, t_max=f * (T - t1), init=mid, **kw)
    assert both["risk"].values[-1] == pytest.approx(second["risk"].values[-1], rel=1e-6)
    np.testing.assert_allclose(both["Q"].values[-1], second["Q"].values[-1], rtol=1e-6)


def test_wide_reduction_with_batch_decay_and_schedule_equals_the_full_flow():
    """At Q = M P⁻¹ Mᵀ + diag(q) the reduction is exact; with b, ω and g(t) ≠ 1 too."""
    rng = np.random.default_rng(1)
    p, k = 5, 2
    P = np.diag(rng.uniform(0.7, 1.3, k))
    M = rng.normal(0.0, 0.5, (p, k))
    q = rng.uniform(0.2, 1.0, p)
    p_inv = np.linalg.inv(P)
    sched = Schedule("power", t0=0.3, beta=0.7)
    full = ode_module._System(engine("erf", "erf"), P, p, 1.0, 0.1, True, False, batch=4,
                              decay=0.3, schedule=sched)
    Q = M @ p_inv @ M.T + np.diag(q)
    dQ, dM, _ = full.unpack(full.rhs(0.9, full.pack(Q, M)))
    erf = activations.get("erf")
    wide = _WideSystem(erf, erf, P, p, 1.0, 0.1, True, False, 64, 40, batch=4, decay=0.3,
                       schedule=sched)
    out = wide.rhs(0.9, wide.pack(M, q))
    dm, dq = out[: M.size].reshape(M.shape), out[M.size:]
    np.testing.assert_allclose(dm, dM, atol=1e-12)
    np.testing.assert_allclose(dq, np.diag(dQ) - 2 * np.einsum("jr,rs,js->j", dM, p_inv, M),
                               atol=1e-12)


# --------------------------------------------------------------------------- ODE vs SGD
# |simulation mean − ODE| ≤ 4 s.e. of the seed mean + 2% of the ODE. The floor is the
# finite-d gap of the committee machine itself at d = 500 (b = 1, γ = 4, 8 seeds: up to 1.0%
# relative, 3.8 s.e.). Each case also checks that the ODE without the feature is rejected.
_SEEDS, _D = 8, 500


def _deviation(sim, th):
    t = sim["t"].values
    keep = t >= 0.05
    mean = sim["risk"].values.mean(0)[keep]
    se = sim["risk"].values.std(0, ddof=1)[keep] / np.sqrt(sim.sizes["seed"])
    ref = th["risk"].interp(t=t).values[keep]
    return np.abs(mean - ref) - (4 * se + 0.02 * ref)


@pytest.mark.parametrize(("name", "kw", "off"), [
    ("batch", dict(k=1, gamma=4.0, batch=8, t_max=3.0), dict(batch=1)),
    ("decay", dict(k=1, gamma=2.0, weight_decay=0.5, t_max=3.0), dict(weight_decay=0.0)),
    ("second layer", dict(k=2, gamma=2.0, gamma_a=2.0, t_max=3.0), dict(gamma_a=0.0)),
    ("power", dict(k=1, gamma=4.0, batch=2, schedule="power", schedule_t0=0.2,
                   schedule_beta=1.0, t_max=3.0), dict(schedule="constant", schedule_t0=1.0,
                                                       schedule_beta=0.5)),
    ("steps", dict(k=1, gamma=2.0, schedule="steps", schedule_times=[0.1, 1.0],
                   schedule_factors=[2.0, 0.25], t_max=3.0),
     dict(schedule="constant", schedule_times=[], schedule_factors=[])),
    ("tanh, all", dict(student="tanh", teacher="tanh", k=1, gamma=2.0, gamma_a=1.0, batch=4,
                       weight_decay=0.2, t_max=2.0), dict(gamma_a=0.0, batch=1,
                                                          weight_decay=0.0)),
])
def test_ode_matches_sgd(name, kw, off):
    common = {"student": "erf", "teacher": "erf", "p": 2, "d": _D, "noise": 0.1, "per_decade": 5,
              **kw}
    sim = simulate(seeds=_SEEDS, **common)
    th = ode(**common)
    assert np.all(_deviation(sim, th) <= 0), name
    assert np.any(_deviation(sim, ode(**{**common, **off})) > 0), name
    if name == "second layer":
        a_sim = sim["a"].values[:, -1].mean(0)
        se = sim["a"].values[:, -1].std(0, ddof=1) / np.sqrt(_SEEDS)
        a_th = th["a"].values[-1]
        assert np.all(np.abs(a_sim - a_th) <= 4 * se + 0.02 * np.abs(a_th))
        assert np.all(np.abs(a_th - 1) > 0.2)  # it moved


def test_extended_runs_report_divergence():
    """Linear units at γ/p = 10, where the variance term outgrows the drift, with weight
    decay: the extended step and its ODE both blow up, stop and say so."""
    kw = dict(p=2, k=1, d=100, gamma=20.0, weight_decay=0.01, t_max=5.0)
    with pytest.warns(DivergenceWarning):
        sim = simulate("linear", "linear", seeds=2, **kw)
    assert sim.attrs["status"] == "diverged" and np.all(np.isfinite(sim["diverged_at"]))
    with pytest.warns(DivergenceWarning):
        th = ode("linear", "linear", **kw)
    assert th.attrs["status"] == "diverged" and np.isnan(th["risk"].values[-1])


# --------------------------------------------------------------------------- input and CLI
@pytest.mark.parametrize(("kw", "words"), [
    (dict(schedule="steps"), "as many schedule_factors"),
    (dict(schedule_times=[1.0]), "need schedule='steps'"),
    (dict(schedule="steps", schedule_times=[2, 1], schedule_factors=[1, 1]), "increase"),
    (dict(schedule_beta=1.0), "need schedule='power'"),
    (dict(batch=0), "'batch' parameter must be >= 1"),
    (dict(gamma_a=-1), "'gamma_a' parameter must be >= 0"),
])
def test_bad_extension_parameters(kw, words):
    with pytest.raises(ParameterError, match=words):
        SgdOde.of(kw)


def test_wide_reduction_refuses_a_trained_second_layer(capsys):
    with pytest.raises(ParameterError, match="--reduction full"):
        ode("erf", "erf", p=4, d=200, gamma_a=1.0, reduction="wide", t_max=0.1)
    code, _, err = run(capsys, ["sgd", "ode", "--p", "4", "--d", "200", "--gamma-a", "1",
                                "--reduction", "wide"])
    assert code == 2 and err.count("\n") == 1 and "--reduction full" in err


def test_cli_json_gains_the_second_layer(capsys):
    code, out, _ = run(capsys, ["sgd", "simulate", "--p", "2", "--k", "1", "--d", "100",
                                "--gamma-a", "1", "--batch", "2", "--t-max", "0.5",
                                "--per-decade", "3", "--seeds", "2", "--json"])
    obj = json.loads(out)
    assert code == 0 and obj["params"]["batch"] == 2
    a, ode_a = np.array(obj["a"]), np.array(obj["ode_a"])
    assert a.shape == (2, len(obj["t"]), 2) and ode_a.shape == (len(obj["t"]), 2)
    np.testing.assert_allclose(a[:, 0], 1.0)
    # two seeds at d = 100: the second layer's trajectory agrees with the ODE's to a few %
    np.testing.assert_allclose(a.mean(0)[-1], ode_a[-1], rtol=0.03)

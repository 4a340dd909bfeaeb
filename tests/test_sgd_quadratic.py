"""The exact closure for degree-≤2 activations (twolayer.sgd.quadratic) against independent
references: Gauss–Hermite tensor rules (exact for these polynomials at d = 3), Monte Carlo with
its error bar, the one-step SGD update of the individual units, the full ODE, and SGD."""

import importlib
import math

import numpy as np
import pytest

from twolayer.errors import ModelAssumptionError, ParameterError
from twolayer.gaussian import hermite_rule, tensor_rule
from twolayer.sgd import ode, simulate
from twolayer.sgd.init import factor_overlaps, initial_weights, overlaps_of

quad = importlib.import_module("twolayer.sgd.quadratic")
ode_mod = importlib.import_module("twolayer.sgd.ode")

D = 3
NODES, WEIGHTS = tensor_rule([hermite_rule(6)] * D)  # exact up to degree 11 per axis


def _forms(rng, n=3):
    out = []
    for _ in range(n):
        A = rng.standard_normal((D, D))
        out.append(quad.Quad(rng.standard_normal(), rng.standard_normal(D), (A + A.T) / 4))
    return out


def _value(q, x):
    return q.c + x @ q.h + np.einsum("ni,ij,nj->n", x, q.H, x)


def test_closed_form_moments_equal_gauss_hermite_at_d3():
    a, b, c = _forms(np.random.default_rng(1))
    x, w = NODES, WEIGHTS
    va, vb, vc = (_value(q, x) for q in (a, b, c))
    xx = np.einsum("ni,nj->nij", x, x)
    assert quad.mean(a) == pytest.approx(w @ va, rel=1e-12)
    assert quad.moment3(a, b, c) == pytest.approx(w @ (va * vb * vc), rel=1e-11)
    np.testing.assert_allclose(quad.x_moment2(a, b), (w * va * vb) @ x, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(quad.xx_moment(a), np.einsum("n,nij->ij", w * va, xx),
                               rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(quad.xx_moment3(a, b, c),
                               np.einsum("n,nij->ij", w * va * vb * vc, xx), rtol=1e-10,
                               atol=1e-10)


def test_eighth_moment_against_monte_carlo_at_d5():
    """E[e² G x xᵀ] (degree 8) at d = 5: closed form vs 4e5 samples, within 4 s.e. per entry."""
    rng = np.random.default_rng(2)
    d, n = 5, 400_000
    A, B = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    e = quad.Quad(0.3, 0.5 * rng.standard_normal(d), (A + A.T) / 8)
    G = quad.Quad(1.0, 0.4 * rng.standard_normal(d), (B @ B.T) / 20)
    x = rng.standard_normal((n, d))
    f = _value(e, x) ** 2 * _value(G, x)
    samples = f[:, None, None] * np.einsum("ni,nj->nij", x, x)
    mc, se = samples.mean(0), samples.std(0) / math.sqrt(n)
    z = np.abs(quad.xx_moment3(e, e, G) - mc) / se
    assert z.max() < 4.0, z


def _expected_step(W, Wt, student, teacher, gamma, noise):
    """E over x (Gauss–Hermite, exact) and ξ of one SGD step of the p units: (Δm, ΔS)."""
    from twolayer import activations

    s, t = activations.get(student), activations.get(teacher)
    p, d = W.shape
    x, w = NODES, WEIGHTS
    lam, nu = x @ W.T / math.sqrt(d), x @ Wt.T / math.sqrt(d)
    e = s.fn(lam).mean(1) - t.fn(nu).mean(1)
    dW = -(gamma / p) * np.einsum("n,nj,ni->nji", e, s.deriv(lam), x) / math.sqrt(d)
    mean_dw = np.einsum("n,nji->ji", w, dW)
    second = np.einsum("n,nji,njl->il", w, dW, dW) / p
    # the noise ξ adds (γ/p)² Δ (1/p) Σ_j σ'_j² x xᵀ / d on average
    sq = np.einsum("n,nj,ni,nl->il", w, s.deriv(lam) ** 2, x, x) / (p * d)
    dS = (W.T @ mean_dw + mean_dw.T @ W) / p + second + (gamma / p) ** 2 * noise * sq
    return mean_dw.mean(0), dS


@pytest.mark.parametrize("student,teacher", [("square", "square"), ("he2", "linear"),
                                             ("linear", "he2")])
def test_drift_is_the_expected_step_of_the_units(student, teacher):
    """The closure's right-hand side × dt = γ/(pd) equals the exact expectation of one SGD step
    computed unit by unit (no (m, S) algebra), variance term and label noise included."""
    p, k, gamma, noise = 7, 2, 3.0, 0.4
    W, Wt = initial_weights(p, k, D, seed=3, init_scale=0.8)
    prm_kw = dict(p=p, d=D, gamma=gamma, noise=noise, variance=True)
    sysm = quad._Closure(student, teacher, *quad.summaries(Wt), **prm_kw)
    m, S = quad.summaries(W)
    drift = sysm.rhs(0.0, sysm.pack(m, S))
    du, dU = sysm.unpack(np.concatenate([drift[:D], drift[D:]]))
    dm_ref, dS_ref = _expected_step(W, Wt, student, teacher, gamma, noise)
    dt = gamma / (p * D)
    np.testing.assert_allclose(math.sqrt(D) * du * dt, dm_ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(D * dU * dt, dS_ref, rtol=1e-10, atol=1e-14)


def test_risk_is_the_population_risk_of_the_weights():
    W, Wt = initial_weights(50, 3, D, seed=4)
    from twolayer.sgd.integrals import engine

    ref = float(engine("square", "square").risk(overlaps_of(W, Wt).omega(), 50))
    sysm = quad._Closure("square", "square", *quad.summaries(Wt), p=50, d=D, gamma=1.0,
                         noise=0.0, variance=True)
    assert sysm.risk(*sysm.unpack(sysm.pack(*quad.summaries(W)))) == pytest.approx(ref, rel=1e-12)


def test_gradient_flow_equals_the_full_ode():
    """Without the variance term both are exact: the closure from the factored overlaps
    follows the full ODE (square, p = 6, k = 1, d = 3)."""
    start = overlaps_of(*initial_weights(6, 1, D, seed=5))
    kw = dict(init=start, d=D, gamma=1.0, t_max=5.0, per_decade=4, variance=False)
    full = ode("square", "square", reduction="full", **kw)
    closure = ode("square", "square", reduction="quadratic", **kw)
    assert closure.attrs["reduction"] == "quadratic" and closure.attrs["status"] == "ok"
    np.testing.assert_allclose(closure.risk.values, full.risk.values, rtol=2e-5)


def test_factored_overlaps_are_exact_and_rank_is_checked():
    W, Wt = initial_weights(40, 2, D, seed=6)
    ov = overlaps_of(W, Wt)
    W2, Wt2 = factor_overlaps(ov, D, seed=1)
    back = overlaps_of(W2, Wt2)
    for a, b in ((back.Q, ov.Q), (back.M, ov.M), (back.P, ov.P)):
        np.testing.assert_allclose(a, b, atol=1e-12)
    with pytest.raises(ParameterError, match="rank"):
        factor_overlaps(overlaps_of(*initial_weights(10, 1, 8, seed=0)), D)


def test_auto_picks_the_closure_and_wide_warns_at_small_d():
    prm = ode_mod.SgdOde(student="square", teacher="he2", p=500, k=1, d=3)
    assert ode_mod.choose_reduction(prm) == "quadratic"
    with pytest.warns(UserWarning, match="quadratic"):
        ode_mod.choose_reduction(prm.replace(reduction="wide"))
    with pytest.raises(ModelAssumptionError, match="reduction='full'"):
        ode("erf", "square", p=100, k=1, d=3, reduction="quadratic", t_max=1.0)
    with pytest.raises(ModelAssumptionError):
        ode("square", "square", p=100, k=1, d=3, reduction="quadratic", spherical=True,
            t_max=1.0)


def test_closure_follows_sgd_at_d3():
    """Square, p = 100, k = 1, d = 3, γ = 1 to t = 3, both from the same overlaps: the closure
    lies within 4 standard errors of the mean of 24 SGD runs at every recorded time (measured:
    at most 2.2 s.e., 7% relative; t = 0.01 is 3 steps)."""
    start = overlaps_of(*initial_weights(100, 1, D, seed=7))
    kw = dict(init=start, d=D, gamma=1.0, t_max=3.0, per_decade=3, noise=0.0)
    th = ode("square", "square", **kw)
    assert th.attrs["reduction"] == "quadratic"
    sim = simulate("square", "square", seeds=24, **kw)
    r = th.risk.interp(t=sim.t.values).values
    se = sim.risk_std.values / math.sqrt(24)
    assert r[0] == pytest.approx(sim.risk_mean.values[0], rel=1e-9)
    z = np.abs(r - sim.risk_mean.values)[1:] / se[1:]
    assert np.all(z < 4.0), z
    assert sim.risk_mean.values[-1] < 0.2 * sim.risk_mean.values[0]  # it did learn


def test_the_start_is_the_simulations_draw():
    """Without --init the closure starts from the weights the simulation draws (same seed)."""
    W, Wt = initial_weights(200, 1, D, seed=8, init_scale=0.5)
    _, S, ms, Ss = quad.start(ode_mod.SgdOde(student="square", teacher="square", p=200, k=1, d=D,
                                             seed=8, init_scale=0.5))
    np.testing.assert_allclose(S, W.T @ W / 200, rtol=1e-13)
    np.testing.assert_allclose(ms, Wt[0], rtol=1e-13)
    np.testing.assert_allclose(Ss, np.outer(Wt[0], Wt[0]), rtol=1e-13)


def test_cli_ode_and_simulate_from_one_init_file_at_d3(capsys, tmp_path):
    """`sgd ode --json` picks the closure and prints m and S; `sgd simulate --init` at d = 3
    (d < p + k: the overlaps are factored) starts at exactly the ODE's risk."""
    import json

    from tests.helpers import run

    ov = overlaps_of(*initial_weights(80, 1, D, seed=9))
    path = tmp_path / "init.json"
    path.write_text(json.dumps({"Q": ov.Q.tolist(), "M": ov.M.tolist(), "P": ov.P.tolist()}))
    common = ["--student", "square", "--teacher", "he2", "--p", "80", "--k", "1", "--d", "3",
              "--gamma", "1", "--t-max", "0.5", "--init", str(path), "--json"]
    code, out, _ = run(capsys, ["sgd", "ode", *common])
    obj = json.loads(out)
    assert code == 0 and obj["reduction"] == "quadratic"
    assert np.shape(obj["S"]) == (3, 3) and np.shape(obj["m"]) == (3,)
    lib = ode("square", "he2", init=ov, d=D, gamma=1.0, t_max=0.5)
    np.testing.assert_allclose(obj["risk"], lib.risk.values, rtol=1e-12)
    code, out, _ = run(capsys, ["sgd", "simulate", *common, "--seeds", "2", "--no-ode"])
    assert code == 0 and json.loads(out)["risk"][0] == pytest.approx(obj["risk"][0], rel=1e-10)


def test_divergence_is_a_status_as_in_sgd():
    """γ/p = 3 at d = 3: SGD blows up, and the closure says so (status, time, NaN after)."""
    from twolayer.errors import DivergenceWarning

    kw = dict(p=100, k=1, d=D, gamma=300.0, t_max=10.0, per_decade=2)
    with pytest.warns(DivergenceWarning):
        sim = simulate("square", "square", seeds=2, **kw)
    with pytest.warns(DivergenceWarning):
        th = ode("square", "square", **kw)
    assert sim.attrs["status"] == "diverged" and th.attrs["status"] == "diverged"
    assert th.attrs["reduction"] == "quadratic" and np.isnan(th.risk.values[-1])


def test_variance_term_is_the_full_odes_times_the_norm_factor():
    """Square σ, σ⋆: e²σ'_j² is homogeneous of degree 6, so E[e²σ'_j²|x|²/d] = (d + 6)/d ·
    E[e²σ'_j²]: the closure's exact variance term in tr U = (1/p) Σ_j Q_jj is (d + 6)/d times
    the full ODE's, which takes |x|²/d = 1 (d = 3 and 5)."""
    from twolayer.sgd.integrals import engine

    for d in (3, 5):
        p = 6
        W, Wt = initial_weights(p, 1, d, seed=5)
        om = overlaps_of(W, Wt).omega()
        eng = engine("square", "square")
        full = np.trace(eng.flow(om, p, 0.0, 1.0)[0] - eng.flow(om, p, 0.0, 0.0)[0]) / p
        kw = dict(d=d, p=p, gamma=float(p * d), noise=0.0)  # var_coef γ/(pd) = 1
        with_var = quad._Closure("square", "square", *quad.summaries(Wt), variance=True, **kw)
        without = quad._Closure("square", "square", *quad.summaries(Wt), variance=False, **kw)
        y = with_var.pack(*quad.summaries(W))
        dU = with_var.unpack(with_var.rhs(0.0, y) - without.rhs(0.0, y))[1]
        assert np.trace(dU) / d == pytest.approx((d + 6) / d * full, rel=1e-10)


def test_decay_and_schedule_follow_the_full_ode_and_batch_divides_the_variance_term():
    """Weight decay and a steps schedule act on (m, S) exactly as on (Q, M): without the
    variance term the closure follows the full ODE (square, p = 6, d = 3). A mini-batch b only
    divides the variance weight γ/(p b), and t does not depend on γ otherwise: (γ, b = 4) is
    (γ/4, b = 1) exactly. A trained second layer is refused (units weighed unequally)."""
    start = overlaps_of(*initial_weights(6, 1, D, seed=5))
    kw = dict(init=start, d=D, gamma=1.0, t_max=5.0, per_decade=4, variance=False,
              weight_decay=0.3, schedule="steps", schedule_times=[1.0, 2.5],
              schedule_factors=[0.5, 2.0])
    full = ode("square", "square", reduction="full", **kw)
    closure = ode("square", "square", reduction="quadratic", **kw)
    assert closure.attrs["status"] == "ok"
    np.testing.assert_allclose(closure.risk.values, full.risk.values, rtol=2e-5)
    plain = ode("square", "square", reduction="quadratic", init=start, d=D, gamma=0.5, t_max=3.0)
    batch = ode("square", "square", reduction="quadratic", init=start, d=D, gamma=2.0, batch=4,
                t_max=3.0)
    np.testing.assert_allclose(batch.risk.values, plain.risk.values, rtol=1e-9)
    with pytest.raises(ModelAssumptionError, match="second layer"):
        ode("square", "square", reduction="quadratic", init=start, d=D, gamma_a=0.5)

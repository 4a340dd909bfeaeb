"""The sRF fixed point on the real post-step W1: its random-features limit, an exact linear
formula, the simulation's own W1, and the simulation's test error."""

import importlib
import json
from dataclasses import replace

import numpy as np
import pytest

from twolayer.errors import ParameterError
from twolayer.onestep import linear_rf_error, simulate, step_map, theory
from twolayer.onestep.poststep import post_step_rule, post_step_theory, stepped_weights
from twolayer.onestep.spectrum import finite_rule
from twolayer.params import OnestepSimulate

T = importlib.import_module("twolayer.onestep.theory")


def test_eta_zero_post_step_theory_is_the_finite_d_rf_theory_of_the_same_w0():
    """η̃ = 0: W1 = W0, and the rule read off W1 (ĝ ⟂ θ, r_s = 0) is finite_rule's rule of the
    same draw, so the test errors agree to rounding."""
    d, p, scale = 400, 300, 1.0
    fin = finite_rule(d, p, scale, np.random.default_rng(5))
    rng = np.random.default_rng(5)  # finite_rule's draws, in its order: W0, v̂, ζ̂
    w0 = rng.standard_normal((p, d))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    v = rng.standard_normal(d)
    v /= np.linalg.norm(v)
    zeta = rng.standard_normal(d)
    zeta -= (zeta @ v) * v
    zeta /= np.linalg.norm(zeta)
    ps = post_step_rule(w0, zeta, v, spike=0.0)  # teacher θ = ζ̂ ⟂ ĝ
    assert ps.step.bulk_scale == pytest.approx(1.0, abs=1e-12)
    assert ps.step.alignment == pytest.approx(0.0, abs=1e-12)
    for attr in ("nodes", "w", "w_spike", "w_teacher"):
        np.testing.assert_allclose(getattr(ps.rule, attr), getattr(fin, attr), atol=1e-12)
    # the cross weights sum to (Wv̂)·(Wζ̂): zero on average, s.d. ≈ c·√p/d for this bulk
    assert abs(ps.rule.w_cross.sum()) <= 3 * scale * np.sqrt(p) / d
    alphas, lams = np.array([0.5, 2.0]), np.array([0.01])
    rf = step_map("tanh", "tanh", 0.5, 0.0)
    ref = T.solve(T.channel_tables("tanh", "tanh", rf), fin, alphas, lams, beta=p / d)
    tab = T.channel_tables("tanh", "tanh", ps.step)
    got = T.solve(tab, replace(ps.rule, w_cross=None), alphas, lams, beta=p / d)
    np.testing.assert_allclose(got["test_error"], ref["test_error"], rtol=1e-9)


def test_linear_step_against_the_exact_ridge_formula_on_the_same_w1():
    """σ = σ⋆ = linear: the step is exactly rank one (W1 = W0 + η̃ 1 gᵀ) and the ridge test error
    on that W1 has a deterministic equivalent (linear_rf_error): agreement within 1% at d = 400
    (the finite-d fixed point's own O(1/d) error; the step moves the error by 30-40%)."""
    prm = OnestepSimulate(student="linear", teacher="linear", alpha0=1.0, eta=1.0,
                          alpha=[0.5, 1.5, 3.0], lam=[0.05], d=400, seeds=2, noise=0.2)
    ds = post_step_theory(prm)
    for i in range(2):
        theta, w0, w1 = stepped_weights(prm, i)
        exact = [linear_rf_error(w1, theta, a, 0.05, noise=0.2) for a in prm.alpha]
        before = [linear_rf_error(w0, theta, a, 0.05, noise=0.2) for a in prm.alpha]
        got = ds["test_error"].values[i, :, 0]
        np.testing.assert_allclose(got, exact, rtol=0.01)
        assert np.all(np.abs(np.array(before) / exact - 1) > 0.1)  # the check has teeth


@pytest.mark.parametrize("steps", [dict(alpha0=0.5, eta=2.0),
                                   dict(alpha0=[0.5, 1.0], eta=[2.0, 1.0], noise=0.1)])
def test_stepped_weights_are_the_simulations(steps):
    """Same seeds, same W1 (one step, or two with label noise): the measured spike against
    simulate's top singular value of W1 − W0 over √p (the mean row of W1 − W0 is that singular
    vector up to O(1/√d))."""
    kw = dict(student="tanh", teacher="tanh", d=200, seeds=2, alpha=[1.0], lam=[0.01],
              n_test=200, **steps)
    sim = simulate(**kw)
    prm = OnestepSimulate(**kw)
    for i in range(2):
        _, w0, w1 = stepped_weights(prm, i)
        sv = np.linalg.svd(w1 - w0, compute_uv=False)[0] / np.sqrt(prm.width)
        assert sv == pytest.approx(float(sim["spike_sv"][i]), rel=1e-6)


def test_post_step_theory_matches_the_simulation_where_the_surrogate_is_low():
    """tanh/tanh, α0 = 0.5, η̃ = 2, α = 2, d = 400, 8 paired seeds: the post-step theory is within
    3 s.e. of the simulation, and the d = ∞ surrogate is below both."""
    kw = dict(student="tanh", teacher="tanh", alpha0=0.5, eta=2.0, alpha=[2.0], lam=[0.01],
              d=400, seeds=8)
    post = post_step_theory(**kw)["test_error"].values[:, 0, 0]
    sim = simulate(**kw, n_test=4000)["test_error"].values[:, 0, 0]
    diff = post - sim
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert abs(diff.mean()) <= 3 * se
    inf = float(theory(**{k: kw[k] for k in ("student", "teacher", "alpha0", "eta", "alpha",
                                                "lam")})["test_error"][0, 0])
    assert inf < post.mean() - 3 * post.std(ddof=1) / np.sqrt(len(post))


def test_post_step_theory_after_several_large_steps():
    """erf/tanh, three steps of α0 = 1, η̃ = 3, α = 2, d = 400, 6 paired seeds: the d = ∞
    theory (Marchenko–Pastur bulk after the recursion) is 9% below the simulation (measured
    0.0561 against 0.0617 ± 0.0016); the fixed point on the real W after the three steps agrees
    within 3 paired s.e. (measured +0.0002 ± 0.0013). A Gaussian second layer is refused."""
    kw = dict(student="erf", teacher="tanh", alpha0=[1.0] * 3, eta=[3.0] * 3, alpha=[2.0],
              lam=[0.01], d=400, seeds=6)
    post = post_step_theory(**kw)
    sim = simulate(**kw)["test_error"].values[:, 0, 0]
    diff = post["test_error"].values[:, 0, 0] - sim
    assert abs(diff.mean()) <= 3 * diff.std(ddof=1) / np.sqrt(len(diff))
    inf = float(theory(**{k: kw[k] for k in ("student", "teacher", "alpha0", "eta", "alpha",
                                                "lam")})["test_error"][0, 0])
    assert inf < sim.mean() - 3 * sim.std(ddof=1) / np.sqrt(len(sim))
    assert post.attrs["noise_ratio"] == pytest.approx(27.0)
    with pytest.raises(ParameterError, match="same spike in every row"):
        post_step_theory(alpha0=[0.5, 0.5], eta=[1.0, 1.0], a_init="gaussian", d=50, seeds=1)


def test_theory_carries_the_validity_indicators(capsys):
    """η̃²/α0 and c₀ − 1 on every theory result: relu/tanh, α0 = η̃ = 2 has η̃²/α0 = 2 and
    c₀ − 1 = η̃ E σ''(μ0⋆ − μ0) = 2·φ(0)·(0 − φ(0)) = −1/π; random features have 0 and 0."""
    ds = theory("relu", "tanh", alpha0=2.0, eta=2.0, alpha=[1.0])
    assert ds.attrs["noise_ratio"] == pytest.approx(2.0, rel=1e-12)
    assert ds.attrs["noncentred"] == pytest.approx(-1 / np.pi, rel=1e-12)
    rf = theory("relu", "tanh", alpha0=2.0, eta=0.0, alpha=[1.0])
    assert rf.attrs["noise_ratio"] == 0.0 and rf.attrs["noncentred"] == 0.0
    from .helpers import run

    code, out, _ = run(capsys, ["onestep", "theory", "--alpha0", "0.5", "--eta", "2", "--alpha",
                                "1", "--json"])
    assert code == 0 and json.loads(out)["validity"]["noise_ratio"] == pytest.approx(8.0)


def test_cross_weights_close_the_relu_gap():
    """relu/tanh, α0 = 2, η̃ = 1, α = 2, d = 400, 8 paired seeds: with the cross weights X' the
    post-step theory is within 3 s.e. of the simulation; without them it is far above (the
    part of the step linear in W0 correlates W ĝ with W ζ̂)."""
    kw = dict(student="relu", teacher="tanh", alpha0=2.0, eta=1.0, alpha=[2.0], lam=[0.01],
              d=400, seeds=8)
    post = post_step_theory(**kw)["test_error"].values[:, 0, 0]
    sim = simulate(**kw, n_test=4000)["test_error"].values[:, 0, 0]
    prm = OnestepSimulate(**kw)
    bare = []
    for i in range(8):
        theta, w0, w1 = stepped_weights(prm, i)
        ps = post_step_rule(w1, theta, (w1 - w0).mean(0))
        tab = T.channel_tables("relu", "tanh", ps.step)
        sol = T.solve(tab, replace(ps.rule, w_cross=None), np.array([2.0]), np.array([0.01]))
        bare.append(sol["test_error"][0, 0])

    def paired(x):
        diff = x - sim
        return diff.mean(), diff.std(ddof=1) / np.sqrt(len(diff))

    m, se = paired(post)
    assert abs(m) <= 3 * se
    m, se = paired(np.array(bare))
    assert m > 3 * se

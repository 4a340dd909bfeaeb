"""weights_rule: the sRF fixed point on a given (simulated) post-step W instead of the
Marchenko–Pastur bulk."""

import numpy as np
import pytest

from twolayer import activations
from twolayer.errors import ParameterError
from twolayer.onestep import simulate, theory
from twolayer.onestep.simulate import _giant_step
from twolayer.onestep.spectrum import step_maps, weights_rule
from twolayer.onestep.theory import channel_tables, solve


def test_weights_rule_of_a_spiked_matrix_has_the_bulk_averages():
    """W = √c W0 + 1vᵀ (W0 unit rows, p = d = 400): the spike is recovered and the spectral
    averages are those of the d = ∞ rule at β = 1: ⟨D⟩ = c, Σ F'/p = c, Σ H'/p = c."""
    rng = np.random.default_rng(2)
    p = d = 400
    c = 1.3
    w0 = rng.standard_normal((p, d))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    v = rng.standard_normal(d)
    v *= 0.8 / np.linalg.norm(v)
    theta = rng.standard_normal(d)
    theta /= np.linalg.norm(theta)
    rule, _, _ = weights_rule(np.sqrt(c) * w0 + v, theta)
    assert rule.w.sum() == pytest.approx(1.0)
    assert np.sum(rule.w * rule.nodes) == pytest.approx(c, rel=0.01)  # mean eigenvalue c
    assert rule.w_spike.sum() == pytest.approx(c, rel=0.15)  # ‖B v̂‖²/… ~ c·β, χ² with 1/√p
    assert rule.w_teacher.sum() == pytest.approx(c, rel=0.15)
    with pytest.raises(ParameterError, match="shape"):
        weights_rule(w0, theta[:10])


def test_the_simulated_bulk_accounts_for_the_large_step_gap():
    """erf/tanh, three steps of α0 = 1, η̃ = 3, λ = 0.01. Measured at d = p = 1000, 16 seeds:
    simulation − d = ∞ theory = 0.0063 ± 0.0017 (α = 0.5) and 0.0067 ± 0.0017 (α = 2). The
    fixed point on simulated bulks (the recursion's channel, weights_rule, d = 300, 12 draws)
    moves the theory up by that much; and it agrees with a d = 300 simulation within 3 s.e."""
    kw = dict(alpha0=[1.0, 1.0, 1.0], eta=[3.0, 3.0, 3.0], alpha=[0.5, 2.0], lam=0.01)
    gap, gap_se = np.array([0.0063, 0.0067]), np.array([0.0017, 0.0017])
    d, seeds = 300, 12
    inf = theory("erf", "tanh", **kw)["test_error"].values[:, 0]
    s, t = activations.get("erf"), activations.get("tanh")
    tab = channel_tables("erf", "tanh", step_maps("erf", "tanh", kw["alpha0"], kw["eta"])[-1])
    rng = np.random.default_rng(7)
    errs = []
    for _ in range(seeds):
        theta = rng.standard_normal(d)
        theta /= np.linalg.norm(theta)
        w = rng.standard_normal((d, d))
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        for eta in kw["eta"]:
            x = rng.standard_normal((d, d))
            w = _giant_step(s, w, x, t.fn(x @ theta), eta)
        rule, _, _ = weights_rule(w, theta)
        errs.append(solve(tab, rule, np.array(kw["alpha"]), np.array([0.01]))["test_error"][:, 0])
    errs = np.array(errs)
    se_w = errs.std(0, ddof=1) / np.sqrt(seeds)
    shift = errs.mean(0) - inf
    assert np.all(shift > 3 * se_w)  # the bulk's effect is resolved (measured ≈ 0.0065)
    assert np.all(np.abs(shift - gap) < 3 * np.hypot(se_w, gap_se))
    sim = simulate("erf", "tanh", d=d, seeds=seeds, n_test=2000, seed=1, **kw)
    te = sim["test_error"].values[:, :, 0]
    se = np.hypot(te.std(0, ddof=1), errs.std(0, ddof=1)) / np.sqrt(seeds)
    assert np.all(np.abs(te.mean(0) - errs.mean(0)) < 3 * se)

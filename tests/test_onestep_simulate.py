"""Simulation of the one-step network against the theory and the step map."""

import json

import numpy as np
import pytest

from twolayer.onestep import simulate, step_map, theory
from twolayer.onestep.simulate import _ridge

from .conftest import FINITE_SIZE_MARGIN

ALPHAS = [0.3, 1.0, 2.0]


def _agree(sim, th):
    mean = sim["test_error_mean"].values[:, 0]
    se = sim["test_error_std"].values[:, 0] / np.sqrt(sim.sizes["seed"])
    want = th["test_error"].values[:, 0]
    return np.abs(mean - want) <= 2 * se + FINITE_SIZE_MARGIN * want


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_simulation_matches_theory_tanh(eta):
    kw = dict(alpha0=0.5, eta=eta, lam=0.01, alpha=ALPHAS)
    sim = simulate("tanh", "tanh", d=500, seeds=4, n_test=4000, **kw)
    th = theory("tanh", "tanh", **kw)
    assert np.all(_agree(sim, th))
    # training error too (theory: E_κ[E(κ)/(1+V)²])
    np.testing.assert_allclose(sim["train_error_mean"].values[:, 0],
                               th["train_error"].values[:, 0], rtol=0.2)  # d=500, near α=β


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_simulation_matches_theory_other_widths(beta):
    kw = dict(alpha0=1.0, eta=1.5, lam=0.05, alpha=[0.5, 2.0], noise=0.1)
    sim = simulate("tanh", "tanh", d=400, beta=beta, seeds=4, n_test=4000, **kw)
    th = theory("tanh", "tanh", beta=beta, **kw)
    assert np.all(_agree(sim, th))


def test_step_diagnostics_match_step_map():
    sim = simulate("tanh", "tanh", alpha0=0.5, eta=1.0, lam=0.01, alpha=[1.0], d=600, seeds=2,
                   n_test=500)
    sm = step_map("tanh", "tanh", 0.5, 1.0)
    assert sim["spike_sv"].mean() == pytest.approx(sm.spike, rel=0.04)
    assert sim["spike_overlap"].mean() == pytest.approx(sm.alignment, rel=0.04)
    assert sim["bulk_scale"].mean() == pytest.approx(sm.bulk_scale, rel=0.02)


def test_non_centred_student_bulk_shrinks_as_predicted():
    """relu student: the mean residual shrinks W0 by c0 = 1 + η̃ κ (μ0⋆ − μ0) (design.md)."""
    sm = step_map("relu", "tanh", 2.0, 2.0)
    assert sm.bulk_shrink == pytest.approx(1 - 2 * (1 / np.sqrt(2 * np.pi)) ** 2)  # 0.68
    sim = simulate("relu", "tanh", alpha0=2.0, eta=2.0, lam=0.01, alpha=[1.0], d=500,
                   seeds=2, n_test=500)
    assert sim["bulk_scale"].mean() == pytest.approx(sm.bulk_scale, rel=0.02)
    assert sim["spike_sv"].mean() == pytest.approx(sm.spike, rel=0.04)


def test_runs_do_not_depend_on_the_number_of_seeds():
    kw = dict(alpha0=0.5, eta=1.0, lam=0.01, alpha=[0.5, 1.5], d=100, n_test=500)
    two = simulate("tanh", "tanh", seeds=2, **kw)
    three = simulate("tanh", "tanh", seeds=3, **kw)
    np.testing.assert_array_equal(two["test_error"].values, three["test_error"].values[:2])
    other = simulate("tanh", "tanh", seeds=2, seed=1, **kw)
    assert not np.allclose(two["test_error"].values, other["test_error"].values)
    assert json.loads(two.attrs["params"])["d"] == 100


def test_ridge_paths_agree_with_lstsq():
    rng = np.random.default_rng(0)
    for n, p in ((40, 25), (25, 40)):
        z, y = rng.standard_normal((n, p)), rng.standard_normal(n)
        lams = np.array([0.0, 0.1, 2.0])
        gram = z.T @ z if n >= p else None
        many = _ridge(z, y, gram, lams)
        for j, lam in enumerate(lams):
            aug = np.vstack([z, np.sqrt(lam) * np.eye(p)])
            want = np.linalg.lstsq(aug, np.concatenate([y, np.zeros(p)]), rcond=None)[0]
            np.testing.assert_allclose(many[:, j], want, atol=1e-8)
            if lam > 0:
                np.testing.assert_allclose(_ridge(z, y, gram, lams[j : j + 1])[:, 0], want,
                                           atol=1e-8)


def test_non_centred_student_softplus_matches_simulation():
    """softplus (μ0 ≠ 0, κ ≠ 0) with an odd teacher: corrected step map, theory vs simulation."""
    kw = dict(alpha0=2.0, eta=2.0, lam=0.01, alpha=[0.8, 2.0])
    sim = simulate("softplus", "sin", d=500, seeds=3, n_test=4000, **kw)
    th = theory("softplus", "sin", **kw)
    assert np.all(_agree(sim, th))


def test_relu_theory_gap_is_bounded():
    """Known limitation (design.md): for relu the post-step bulk is not a rescaled MP law and the
    d = inf theory sits above simulation (measured +5% to +17% at α0 = η̃ = 2). Guard its size."""
    kw = dict(alpha0=2.0, eta=2.0, lam=0.01, alpha=[1.5, 2.5])
    sim = simulate("relu", "tanh", d=500, seeds=3, n_test=4000, **kw)
    th = theory("relu", "tanh", **kw)
    ratio = th["test_error"].values[:, 0] / sim["test_error_mean"].values[:, 0]
    assert np.all((ratio > 0.97) & (ratio < 1.2))

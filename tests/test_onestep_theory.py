"""sRF theory: against reference figures, the exact linear-RF formula, finite d, and limits."""

import numpy as np
import pytest

from twolayer.errors import ConvergenceWarning, ModelAssumptionError
from twolayer.onestep import linear_rf_error, rf_theory, step_map, theory
from twolayer.onestep.spectrum import finite_rule, mp_rule

from .conftest import FINITE_SIZE_MARGIN

ALPHAS = [0.2, 0.6, 1.0, 2.0, 3.0]
# shared/reference/onestep.md: independent simulations, tanh/tanh, α0 = 0.5, λ = 0.01,
# d = p = 2000, 8 seeds (mean, std over seeds).
SIM_STEP = {0.2: (0.2861, 0.0117), 0.6: (0.3117, 0.0110), 1.0: (0.2964, 0.0161),
            2.0: (0.1801, 0.0075), 3.0: (0.1447, 0.0062)}
SIM_RF = {0.2: (0.4089, 0.0080), 0.6: (0.4149, 0.0143), 1.0: (0.3538, 0.0176),
          2.0: (0.2065, 0.0098), 3.0: (0.1679, 0.0056)}


def test_step_map_matches_reference_srf_parameters():
    # shared/reference/onestep.md: c^(1/2) = 1.0377, r = 0.6511, γ = 0.5635 (tanh/tanh, α0=.5, η̃=1)
    sm = step_map("tanh", "tanh", alpha0=0.5, eta=1.0)
    assert sm.bulk_scale == pytest.approx(1.0377, abs=1e-4)
    assert sm.spike == pytest.approx(0.6511, abs=1e-4)
    assert sm.alignment == pytest.approx(0.5635, abs=1e-4)


@pytest.mark.parametrize("eta,ref", [(1.0, SIM_STEP), (0.0, SIM_RF)])
def test_d_inf_theory_matches_reference_simulations(eta, ref):
    ds = theory("tanh", "tanh", alpha0=0.5, eta=eta, lam=0.01, alpha=ALPHAS)
    assert bool(ds["converged"].all())
    for a, (mean, std) in ref.items():
        got = float(ds["test_error"].sel(alpha=a).item())
        se = std / np.sqrt(8)
        assert abs(got - mean) <= 2 * se + FINITE_SIZE_MARGIN * mean, (a, got, mean)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("lam", [1e-3, 0.1])
def test_linear_rf_equals_exact_ridge_formula(beta, lam):
    """σ = σ⋆ = linear, η̃ = 0: the fixed point against the deterministic equivalent of ridge."""
    d = 1200
    rng = np.random.default_rng(3)
    errs = []
    for _ in range(3):  # average the exact formula over draws of W (fluctuations ~1/√d)
        w = rng.standard_normal((round(beta * d), d))
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        th = rng.standard_normal(d)
        th /= np.linalg.norm(th)
        errs.append([linear_rf_error(w, th, a, lam, noise=0.2) for a in (0.5, 1.5, 3.0)])
    exact, se = np.mean(errs, axis=0), np.std(errs, axis=0, ddof=1) / np.sqrt(len(errs))
    ds = rf_theory("linear", "linear", lam=lam, alpha=[0.5, 1.5, 3.0], beta=beta, noise=0.2)
    assert np.all(np.abs(ds["test_error"].values[:, 0] - exact) <= 3 * se + 0.005 * exact)


def test_mp_rule_against_finite_draws():
    """The d = ∞ spectral weights (bulk, spike, teacher) against finite draws, β = 0.5, 1, 2."""
    g = lambda x: 1.0 / (x + 0.3)  # noqa: E731
    for beta in (0.5, 1.0, 2.0):
        m = mp_rule(beta, 1.3)
        fin = [finite_rule(600, round(600 * beta), 1.3, np.random.default_rng(s)) for s in range(6)]
        for attr in ("w", "w_spike", "w_teacher"):
            vals = [np.sum(getattr(f, attr) * g(f.nodes)) for f in fin]
            se = np.std(vals, ddof=1) / np.sqrt(len(vals))  # χ² weights: ~√(2/p) per draw
            got = np.sum(getattr(m, attr) * g(m.nodes))
            assert abs(got - np.mean(vals)) <= 3 * se + 0.005 * abs(got), (beta, attr)


def test_finite_d_theory_approaches_d_inf():
    kw = dict(alpha0=0.5, eta=1.0, lam=0.01, alpha=[0.6, 2.0])
    inf = theory("tanh", "tanh", **kw)["test_error"].values[:, 0]
    # Draw-to-draw spread comes from the teacher's projections H' (relative ~√(2/p)); averaged
    # over draws the finite-d theory has no visible bias with respect to d = ∞.
    fin = theory("tanh", "tanh", d=900, draws=6, seed=1, **kw)
    draws = fin["test_error_draws"].values[:, :, 0]
    se = draws.std(axis=0, ddof=1) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - inf) <= 3 * se + 0.003 * inf)
    assert np.all(se < 0.025 * inf)  # so that the check above has teeth (< 8%)


def test_one_step_beats_random_features():
    """Non-linear teacher, α0 = 2, η̃ = 2: the step lowers the error by a wide margin."""
    kw = dict(lam=0.01, alpha=[0.5, 1.0, 2.0, 3.0])
    step = theory("tanh", "tanh", alpha0=2.0, eta=2.0, **kw)["test_error"].values[:, 0]
    rf = rf_theory("tanh", "tanh", **kw)["test_error"].values[:, 0]
    assert np.all(step < 0.6 * rf)


def test_theory_refuses_models_without_spiked_form():
    with pytest.raises(ModelAssumptionError, match="no uniform spike"):
        theory("square", "tanh", alpha0=1, eta=1, lam=0.01, alpha=[1.0])
    with pytest.raises(ModelAssumptionError, match="per-neuron"):
        theory("relu", "he2", alpha0=1, eta=1, lam=0.01, alpha=[1.0])


def test_non_convergence_is_flagged_and_warned():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        ds = theory("tanh", "tanh", alpha0=0.5, eta=1, lam=0.01, alpha=[0.5, 2.0], max_iter=5)
    assert not bool(ds["converged"].any())
    assert np.all(ds["residual"].values > 1e-10)
    assert np.all(ds["iterations"].values == 5)


def test_vectorised_grid_equals_pointwise():
    grid = theory("tanh", "sin", alpha0=1, eta=1.5, lam=[0.01, 0.1], alpha=[0.5, 2.0])
    one = theory("tanh", "sin", alpha0=1, eta=1.5, lam=0.1, alpha=[2.0])
    assert grid["test_error"].sel(alpha=2.0, lam=0.1).item() == pytest.approx(
        one["test_error"].item(), rel=1e-8)

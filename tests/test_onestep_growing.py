"""A learning rate growing with d (η̃ = eta·d^(ζ − ½)): the simulation's feature spikes, and
the d = ∞ limit theory against an independent simulation of its equivalent model."""

import json
import math

import numpy as np
import pytest

from tests.helpers import run
from twolayer import activations
from twolayer.errors import ParameterError
from twolayer.onestep import simulate, theory
from twolayer.onestep.growing import alignment, emerging_degrees, equivalent_model_error
from twolayer.onestep.simulate import _giant_step


def test_a_step_with_a_random_second_layer_is_minus_eta_p_times_the_gradient():
    """f = (1/p) Σ a_j σ(w_j·x): against central finite differences of ½ mean (y − f)²."""
    rng = np.random.default_rng(5)
    p, d, n0, eta = 4, 6, 10, 0.7
    s = activations.get("relu")
    w = rng.standard_normal((p, d)) / np.sqrt(d)
    a = rng.standard_normal(p)
    x = rng.standard_normal((n0, d))
    y = np.sin(x[:, 0])

    def loss(m):
        return 0.5 * np.mean((y - np.maximum(x @ m.T, 0) @ a / p) ** 2)

    grad = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[idx] = 1e-6
        grad[idx] = (loss(w + e) - loss(w - e)) / 2e-6
    np.testing.assert_allclose(_giant_step(s, w, x, y, eta, a), w - eta * p * grad, atol=1e-7)


@pytest.mark.parametrize("student, zeta, a_init, expected", [
    ("relu", 0.1, "gaussian", [1]),        # ℓ = 1: ζ < 1/4
    ("relu", 0.3, "gaussian", [1, 2]),     # ℓ = 2: 1/4 < ζ < 1/3
    ("relu", 0.39, "gaussian", [1, 2, 4]),  # ℓ = 4: 3/8 < ζ < 2/5; μ3 = 0 for relu
    ("tanh", 0.36, "gaussian", [1, 3]),    # ℓ = 3: tanh is odd
    ("relu", 0.39, "constant", [1]),       # a constant second layer: one feature
])
def test_emerging_degrees_follow_the_thresholds_and_the_hermite_coefficients(
        student, zeta, a_init, expected):
    assert emerging_degrees(student, zeta, a_init) == expected


@pytest.mark.parametrize("zeta", [0.0, 0.25, 1 / 3, 0.5])
def test_thresholds_and_the_giant_step_are_refused_by_the_limit(zeta):
    with pytest.raises(ParameterError):
        emerging_degrees("relu", zeta)


def test_learned_variance_is_the_hermite_sum_of_the_projected_teacher():
    """Σ_{k∈K} (γ^k μ⋆_k)²/k! for a relu teacher (μ⋆_1 = ½, μ⋆_2 = 1/√(2π)), K = {1, 2}."""
    ds = theory(student="relu", teacher="relu", alpha0=1.0, eta=1.0, eta_exponent=0.3,
                a_init="gaussian", alpha=[1.0])
    g = ds.attrs["alignment"]
    # f0 = 0 with a Gaussian a: E ρ² = E relu² = ½
    assert g == pytest.approx(0.5 / math.sqrt(0.25 + 0.5 / 1.0), rel=1e-12)
    expected = (g * 0.5) ** 2 + (g**2 / math.sqrt(2 * math.pi)) ** 2 / 2
    assert ds.attrs["learned_variance"] == pytest.approx(expected, rel=1e-9)
    assert list(ds.attrs["degrees"]) == [1, 2]


def test_step_direction_alignment_matches_the_simulated_step():
    """The top right singular vector of W1 − W0 against γ = μ1⋆/√(μ1⋆² + E ρ²/α0), for both
    second layers (ρ = y − μ0 with a constant one, y with a Gaussian one); d = 1000, 2 seeds."""
    for a_init in ("constant", "gaussian"):
        sim = simulate(student="relu", teacher="tanh", d=1000, alpha0=1.0, eta=2.0,
                       eta_exponent=0.2, a_init=a_init, alpha=[0.2], seeds=2, n_test=10)
        gamma = alignment("relu", "tanh", 1.0, 0.0, a_init).alignment
        assert sim["spike_overlap"].values.mean() == pytest.approx(gamma, abs=0.02)
        assert sim.attrs["eta_tilde"] == pytest.approx(2.0 * 1000 ** -0.3, rel=1e-12)


@pytest.mark.parametrize("student, teacher, zeta", [("relu", "relu", 0.3), ("erf", "sin", 0.36)])
def test_limit_theory_matches_its_equivalent_model(student, teacher, zeta):
    """Measured at d = 1000, 4 seeds: relu/relu 0.2820 ± 0.0044 vs 0.2888; erf/sin
    0.1722 ± 0.0048 vs 0.1694 (α = 2). Here d = 500, 6 seeds, within 3 s.e. + 4%."""
    ds = theory(student=student, teacher=teacher, alpha0=1.0, eta=1.0, eta_exponent=zeta,
                a_init="gaussian", alpha=[2.0], lam=[0.01])
    mean, se = equivalent_model_error(student, teacher, 500, 2.0, 0.01,
                                      list(ds.attrs["degrees"]), ds.attrs["alignment"], seeds=6,
                                      n_test=8000, seed=11)
    value = float(ds["test_error"].squeeze())
    assert abs(mean - value) < 3 * se + 0.04 * value
    rf = float(theory(student=student, teacher=teacher, eta=0.0, alpha=[2.0])["test_error"]
               .squeeze())
    assert value < rf - 0.03  # the learned degrees are worth more than the tolerance


def test_network_with_one_emerging_degree_is_near_the_limit():
    """relu/relu, ζ = 0.2 (only He_1 emerges), Gaussian a: measured 0.3039 ± 0.0033 at d = 2000
    (4 seeds) against the limit 0.3051. Here d = 500, 4 seeds, within 3 s.e. + 5%."""
    kw = dict(student="relu", teacher="relu", alpha0=1.0, eta=4.0, eta_exponent=0.2,
              a_init="gaussian", alpha=[2.0], lam=[0.01])
    value = float(theory(**kw)["test_error"].squeeze())
    sim = simulate(**kw, d=500, seeds=4, n_test=5000)
    errs = sim["test_error"].values.ravel()
    assert abs(errs.mean() - value) < 3 * errs.std(ddof=1) / 2 + 0.05 * value


def test_feature_spikes_count_the_emerging_degrees():
    """relu, Gaussian a, d = 400: one degree at ζ = 0.1, two at ζ = 0.3 (the limit's K); a
    constant second layer keeps one feature (He_2(κ) stays out of the top span)."""
    kw = dict(student="relu", teacher="relu", alpha0=1.0, eta=4.0, alpha=[2.0], d=400,
              seeds=2, n_test=10, feature_spikes=4)
    counts = {}
    for zeta, a_init in ((0.1, "gaussian"), (0.3, "gaussian"), (0.3, "constant")):
        sim = simulate(**kw, eta_exponent=zeta, a_init=a_init)
        counts[zeta, a_init] = list(sim["feature_degrees"].values)
        assert np.all(sim["feature_sv"].values[:, 0] > sim["feature_edge"].values)
        if (zeta, a_init) == (0.3, "gaussian"):
            assert np.all(sim["feature_captured"].sel(degree=2).values > 0.6)
    assert counts == {(0.1, "gaussian"): [1, 1], (0.3, "gaussian"): [2, 2],
                      (0.3, "constant"): [1, 1]}


def test_cli_growing_step(capsys):
    code, out, _ = run(capsys, ["onestep", "theory", "--student", "relu", "--teacher", "relu",
                                "--eta-exponent", "0.3", "--a-init", "gaussian", "--alpha",
                                "2", "--json"])
    assert code == 0
    assert json.loads(out)["degrees"] == [1, 2]
    code, _, err = run(capsys, ["onestep", "theory", "--eta-exponent", "0.25"])
    assert code == 2 and "threshold" in err and err.count("\n") == 1
    code, _, err = run(capsys, ["onestep", "theory", "--a-init", "gaussian", "--d", "500"])
    assert code == 2 and "d = inf" in err
    code, _, err = run(capsys, ["onestep", "theory", "--eta-exponent", "0.7"])
    assert code == 2 and "--eta-exponent" in err


def test_giant_step_with_a_gaussian_second_layer_has_no_finite_d_theory():
    with pytest.raises(ParameterError, match="d = inf"):
        theory(a_init="gaussian", d=500, alpha=[1.0])


@pytest.mark.parametrize("student, zeta, expected", [
    ("tanh", 0.3, []), ("tanh", 0.35, [2]), ("tanh", 0.4, [2]),  # m < ζ/(½ − ζ); μ_{m+1} ≠ 0
    ("relu", 0.3, [1]), ("relu", 0.4, [1, 3]), ("relu", 0.45, [1, 3, 5, 7]),
])
def test_second_step_outliers_follow_moniri_hassani(student, zeta, expected):
    """⌊ζ2/(½ − ζ1)⌋ orders (arXiv 2605.17767), less those whose μ_{m+1} vanishes; the integer
    ratios (ζ = 0.4: 4, ζ = 0.45: 9) are thresholds, where m = ratio is not counted."""
    from twolayer.onestep.growing import second_step_outliers

    assert second_step_outliers(student, zeta, zeta) == expected
    assert second_step_outliers(student, zeta, zeta, "constant") == []


def test_two_growing_steps_add_the_predicted_outlier():
    """tanh, Gaussian a, two steps of η̃ = 4·d^(ζ − ½), d = 400: after the second step W has
    the first spike (left vector a) and, at ζ = 0.45, the order-2 outlier (left vector ∝ a³,
    its singular value over the bulk edge grows as d^0.35); at ζ = 0.2 no order is predicted
    and none is seen. Measured at d = 800: 0.188 vs edge 0.117 (ζ = 0.45), 0.020 vs 0.070."""
    kw = dict(student="tanh", teacher="tanh", d=400, alpha0=[1.0, 1.0], eta=[4.0, 4.0],
              a_init="gaussian", alpha=[0.5], seeds=2, n_test=10)
    hi = simulate(**kw, eta_exponent=[0.45, 0.45])
    lo = simulate(**kw, eta_exponent=[0.2, 0.2])
    assert list(hi["step_outliers"].values[:, 1]) == [2, 2]
    assert list(lo["step_outliers"].values[:, 1]) == [1, 1]
    assert list(hi["step_outliers"].values[:, 0]) == [1, 1]  # one step: one spike
    assert np.all(hi["step_poly"].values[:, 1, :2] > 0.5)  # both are polynomials of a
    assert np.all(hi["step_sv"].values[:, 1, 1] > 1.15 * hi["step_edge"].values[:, 1])
    assert hi.attrs["eta_tilde"] == pytest.approx([4 * 400**-0.05] * 2)


def test_per_step_exponents_must_match_the_steps():
    with pytest.raises(ParameterError, match="per-step lists"):
        simulate(alpha0=[1.0, 1.0], eta=1.0, eta_exponent=[0.2, 0.3, 0.4], d=50, seeds=1)
    with pytest.raises(ParameterError, match="eta_exponent"):
        simulate(eta_exponent=[0.2, 0.7], alpha0=[1, 1], d=50, seeds=1)


def test_no_step_is_random_features_whatever_the_exponent(tmp_path, capsys):
    """η̃ = 0 is the random-features baseline with or without eta_exponent and a_init (the
    figure's RF line asks for it), and the CLI draws a growing-step run with it."""
    rf = float(theory(eta=0.0, alpha=[1.0])["test_error"].squeeze())
    other = theory(eta=0.0, eta_exponent=0.3, a_init="gaussian", alpha=[1.0])
    assert float(other["test_error"].squeeze()) == rf
    png = tmp_path / "grow.png"
    code, out, _ = run(capsys, ["onestep", "simulate", "--student", "relu", "--teacher", "relu",
                                "--eta", "4", "--eta-exponent", "0.3", "--a-init", "gaussian",
                                "--d", "60", "--seeds", "2", "--alpha", "1,2", "--plot",
                                str(png)])
    assert code == 0 and png.stat().st_size > 10_000
    assert "learns He_k(kappa) freely for k = 1, 2" in out

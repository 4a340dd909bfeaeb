"""The d = ∞ bulk of the post-step weights (twolayer.onestep.stepbulk, theory(bulk="step"))."""

import json

import numpy as np
import pytest

from twolayer.errors import ModelAssumptionError, ParameterError
from twolayer.onestep import simulate, theory
from twolayer.onestep.poststep import post_step_rule, stepped_weights
from twolayer.onestep.spectrum import mp_rule, step_map
from twolayer.onestep.stepbulk import step_bulk
from twolayer.params import OnestepSimulate

from .helpers import run

Z = np.array([-0.02, -0.3, -1.0, -4.0])


def _transforms(rule, z):
    """Σ w/(D − z) of a node rule, for its four measures."""
    return {"w": np.array([np.sum(rule.w / (rule.nodes - x)) for x in z]),
            "spike": np.array([np.sum(rule.w_spike / (rule.nodes - x)) for x in z]),
            "teacher": np.array([np.sum(rule.w_teacher / (rule.nodes - x)) for x in z])}


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_without_a_noise_part_the_step_bulk_is_marchenko_pastur(beta):
    """η̃ → 0 (the step's randomness is O(η̃²)): W = W0, rows N(0, I/d); the transforms of the
    eigenvalues, of Wĝ and of Wζ̂ are the surrogate's Marchenko–Pastur ones (an atom at 0 when
    β > 1)."""
    sb = step_bulk("tanh", "tanh", 0.5, 1e-3, beta=beta)
    mp = _transforms(mp_rule(beta, step_map("tanh", "tanh", 0.5, 1e-3).bulk_scale**2, 400), Z)
    st = sb.stieltjes(Z)
    for key in ("w", "spike", "teacher"):
        np.testing.assert_allclose(st[key][1], mp[key], rtol=2e-6)
    assert np.all(np.abs(st["cross"][1]) < 1e-4)


def test_masses_and_derivatives_are_those_of_the_transforms():
    """mass = lim −z G(z) and G' = dG/dz (central differences), for each measure."""
    sb = step_bulk("erf", "sin", 1.0, 2.0, noise=0.1)
    st = sb.stieltjes(Z)
    far = sb.stieltjes(np.array([-1e7]))
    h = 1e-6
    up, down = sb.stieltjes(Z + h), sb.stieltjes(Z - h)
    for key, (mass, _, dg) in st.items():
        assert 1e7 * far[key][1][0] == pytest.approx(mass, rel=1e-5, abs=1e-8)
        np.testing.assert_allclose(dg, (up[key][1] - down[key][1]) / (2 * h), rtol=1e-6)


def test_transforms_against_the_real_post_step_weights():
    """tanh/tanh, α0 = 0.5, η̃ = 2, d = p = 1200, 3 draws of the real W1: the eigenvalue
    transform within 1.5%, those of Wζ̂ (teacher) within 4% and Wĝ (spike) within 8% of the
    draws' mean (measured at d = 2000: 0.3%, 1–3%, 2–10% seed to seed), where the surrogate's
    Marchenko–Pastur ones are off by more than that for the spike and the teacher."""
    prm = OnestepSimulate(student="tanh", teacher="tanh", alpha0=0.5, eta=2.0, d=1200, seeds=3)
    z = np.array([-0.3, -1.0])
    fin = {k: [] for k in ("w", "spike", "teacher")}
    for i in range(3):
        theta, w0, w1 = stepped_weights(prm, i)
        for k, v in _transforms(post_step_rule(w1, theta, (w1 - w0).mean(0)).rule, z).items():
            fin[k].append(v)
    fin = {k: np.mean(v, 0) for k, v in fin.items()}
    st = step_bulk("tanh", "tanh", 0.5, 2.0).stieltjes(z)
    mp = _transforms(mp_rule(1.0, step_map("tanh", "tanh", 0.5, 2.0).bulk_scale**2, 400), z)
    for key, tol in (("w", 0.015), ("teacher", 0.04), ("spike", 0.08)):
        np.testing.assert_allclose(st[key][1], fin[key], rtol=tol)
    for key in ("teacher", "spike"):
        assert np.all(np.abs(mp[key] / fin[key] - 1) > np.abs(st[key][1] / fin[key] - 1))


@pytest.mark.parametrize("student, teacher, alpha0, eta", [("relu", "tanh", 2.0, 2.0),
                                                           ("tanh", "tanh", 0.5, 2.0)])
def test_sample_level_against_the_matrices_of_a_drawn_step(student, teacher, alpha0, eta):
    """N = (I + s(A² + kT))⁻¹, A = I + η̃μ2 S, on (θ, g⊥) and (1/d) tr N against the d × d
    matrices of one drawn step (d = 1000), the drawn (θ·x_μ, ρ_μ) taken as the sample law: the
    trace within 0.2%, the four forms within 0.012 (3× their draw-to-draw spread at d = 1000,
    measured 0.003–0.005 over 5 draws with mean deviation ≤ 0.0011; at d = 2000 they agree
    within 0.7%)."""
    from twolayer import activations
    from twolayer.onestep.stepbulk import StepLevel, _Start

    d = 1000
    n0 = round(alpha0 * d)
    act = activations.get(student)
    mu1, mu2 = act.mu(1), act.mu(2)
    v = act.deriv_second_moment - mu1**2 - mu2**2
    x = np.random.default_rng(3).standard_normal((n0, d))
    t = x[:, 0]  # θ = e_1
    rho = activations.get(teacher).fn(t) - act.mu(0)
    level = StepLevel(_Start(), alpha0, eta**2 / alpha0, t[None, :], np.full(n0, 1.0 / n0),
                      eta * mu2 * rho, v * rho**2, mu1 * rho, np.eye(1))
    a = np.eye(d) + eta * mu2 * (x.T * rho) @ x / n0
    k = a @ a + (eta**2 * v / alpha0) * (x.T * rho**2) @ x / n0
    gp = x[:, 1:].T @ rho / n0
    basis = np.zeros((d, 2))
    basis[0, 0], basis[1:, 1] = 1.0, gp / np.linalg.norm(gp)
    for s in (0.3, 1.0, 3.0):
        n = np.linalg.inv(np.eye(d) + s * k)
        assert level.trace(np.array([s]))[0].real == pytest.approx(np.trace(n) / d, rel=2e-3)
        np.testing.assert_allclose(level.forms(np.array([s]))[0].real, basis.T @ n @ basis,
                                   rtol=0, atol=0.012)


def test_two_sample_levels_against_the_matrices_of_two_drawn_steps():
    """K2 = A2 K1 A2 + k2 T2, K1 = A1² + k1 T1, with step 2's weights functions of θ·x and of
    κ = ĝ1·x (ĝ1 from step 1's samples), d = 1200: (1/d) tr (I + sK2)⁻¹ within 0.2% and its
    forms on (θ, ξ1, ξ2) within 0.015 of the matrices (measured over 6 draws at d = 1500:
    mean deviation ≤ 0.001, draw-to-draw spread ≤ 0.007). The weights are arbitrary smooth
    functions: the identity holds for any."""
    from twolayer.onestep.stepbulk import StepLevel, _Start

    d, a1, a2, k1, k2 = 1200, 1.0, 0.7, 1.5, 2.0
    rng = np.random.default_rng(5)
    n1, n2 = round(a1 * d), round(a2 * d)
    x1 = rng.standard_normal((n1, d))
    u1 = x1[:, 0]
    rho1 = np.tanh(u1) + 0.2
    rs1, rt1, c1 = 0.4 * rho1, 0.3 * rho1**2, rho1
    g = x1.T @ c1 / n1
    xi1 = np.concatenate([[0.0], g[1:]]) / np.linalg.norm(g[1:])
    gam = g[0] / np.linalg.norm(g)
    x2 = rng.standard_normal((n2, d))
    u2, w2 = x2[:, 0], x2 @ xi1
    kap = gam * u2 + np.sqrt(1 - gam**2) * w2
    rho2 = np.tanh(u2) - 0.3 * np.tanh(kap)
    rs2, rt2 = 0.3 * rho2 * (1 + 0.2 * kap**2), 0.5 * rho2**2 * (1 + 0.1 * kap**2)
    c2 = rho2 * (1 - 0.1 * kap**2)
    a = np.eye(d) + (x1.T * rs1) @ x1 / n1
    kk1 = a @ a + k1 * (x1.T * rt1) @ x1 / n1
    a = np.eye(d) + (x2.T * rs2) @ x2 / n2
    kk2 = a @ kk1 @ a + k2 * (x2.T * rt2) @ x2 / n2
    xi2 = (x2 - np.outer(u2, np.eye(d)[0]) - np.outer(w2, xi1)).T @ c2
    basis = np.stack([np.eye(d)[0], xi1, xi2 / np.linalg.norm(xi2)], 1)
    lev1 = StepLevel(_Start(), a1, k1, u1[None, :], np.full(n1, 1 / n1), rs1, rt1, c1,
                     np.eye(1))
    lev2 = StepLevel(lev1, a2, k2, np.stack([u2, w2]), np.full(n2, 1 / n2), rs2, rt2, c2,
                     np.eye(2))
    for s in (0.3, 1.0):
        n = np.linalg.inv(np.eye(d) + s * kk2)
        assert lev2.trace(np.array([s]))[0].real == pytest.approx(np.trace(n) / d, rel=2e-3)
        np.testing.assert_allclose(lev2.forms(np.array([s]))[0].real, basis.T @ n @ basis,
                                   rtol=0, atol=0.015)


@pytest.mark.parametrize("kw, sim, se", [
    (dict(student="relu", teacher="tanh", alpha0=2.0, eta=2.0), 0.3640, 0.0031),
    (dict(student="tanh", teacher="tanh", alpha0=0.5, eta=3.0), 0.3014, 0.0042)])
def test_step_bulk_against_the_measured_simulations(kw, sim, se):
    """α = 2, λ = 0.01, d = p = 2000, 8 seeds (benchmarks/stepbulk.py, measured 2026-11-26):
    the step bulk within 2 s.e., the surrogate more than 4 s.e. off (relu above, tanh below)."""
    step = float(theory(**kw, alpha=[2.0], bulk="step")["test_error"][0, 0])
    mp = float(theory(**kw, alpha=[2.0])["test_error"][0, 0])
    assert abs(step - sim) < 2 * se
    assert abs(mp - sim) > 4 * se


def test_step_bulk_after_several_steps_against_simulation():
    """Several steps: each step's samples enter the next step's bulk through its linear part.
    erf/tanh, three steps of α0 = 1, η̃ = 3, α = 2, λ = 0.01, d = p = 400, 6 seeds: the
    simulation is 0.0617 ± 0.0016; the step bulk within 2 s.e. (measured 0.0622), the surrogate
    more than 3 s.e. below (0.0561). tanh/tanh, two steps of α0 = 0.5, η̃ = 2 (measured at
    d = 2000, 8 seeds: 0.2749 ± 0.0024, 0.3046 ± 0.0026, 0.1964 ± 0.0019 at α = 0.5, 1, 2):
    the step bulk within 2 s.e., the surrogate more than 4 s.e. below at every α."""
    kw = dict(student="erf", teacher="tanh", alpha0=[1.0] * 3, eta=[3.0] * 3, alpha=[2.0],
              lam=[0.01])
    sim = simulate(**kw, d=400, seeds=6)["test_error"].values[:, 0, 0]
    mean, se = sim.mean(), sim.std(ddof=1) / np.sqrt(len(sim))
    assert abs(float(theory(**kw, bulk="step")["test_error"][0, 0]) - mean) < 2 * se
    assert float(theory(**kw)["test_error"][0, 0]) < mean - 3 * se
    kw = dict(student="tanh", teacher="tanh", alpha0=[0.5] * 2, eta=[2.0] * 2,
              alpha=[0.5, 1.0, 2.0], lam=[0.01])
    sim, se = np.array([0.2749, 0.3046, 0.1964]), np.array([0.0024, 0.0026, 0.0019])
    step = theory(**kw, bulk="step")
    assert np.all(np.abs(step["test_error"].values[:, 0] - sim) < 2 * se)
    assert np.all(theory(**kw)["test_error"].values[:, 0] < sim - 4 * se)
    assert "alpha0=0.5,0.5" in step.attrs["spectrum"]


def test_step_bulk_closes_the_surrogates_gap_against_simulation():
    """tanh/tanh, α0 = 0.5, η̃ = 2 (η̃²/α0 = 8), α = 2, λ = 0.01, d = p = 800, 8 seeds: the
    simulation is 0.2388 ± 0.0035; the step bulk is within 3 s.e., the surrogate more than 3 s.e.
    below (measured at d = 2000, 8 seeds: see benchmarks/stepbulk.py)."""
    kw = dict(student="tanh", teacher="tanh", alpha0=0.5, eta=2.0, alpha=[2.0], lam=[0.01])
    sim = simulate(**kw, d=800, seeds=8, n_test=4000)["test_error"].values[:, 0, 0]
    mean, se = sim.mean(), sim.std(ddof=1) / np.sqrt(len(sim))
    step = float(theory(**kw, bulk="step")["test_error"][0, 0])
    mp = float(theory(**kw)["test_error"][0, 0])
    assert abs(step - mean) <= 3 * se
    assert mp < mean - 3 * se


def test_step_bulk_at_a_small_step_is_the_surrogate():
    """η̃ = 0.05: the noise part is O(η̃²) and the two bulks give the same error to 1e-4; η̃ = 0
    is random features whatever the bulk; a linear student's step bulk is Marchenko–Pastur."""
    kw = dict(student="tanh", teacher="tanh", alpha0=1.0, alpha=[0.5, 2.0], lam=[0.01, 0.1])
    a = theory(**kw, eta=0.05, bulk="step")["test_error"].values
    b = theory(**kw, eta=0.05)["test_error"].values
    np.testing.assert_allclose(a, b, atol=1e-4)
    rf = theory(**kw, eta=0.0, bulk="step")["test_error"].values
    np.testing.assert_array_equal(rf, theory(**kw, eta=0.0)["test_error"].values)
    # a linear student: σ' = 1 has no noise part and no linear part, W1 = W0 + spike exactly
    lin = dict(kw, student="linear", eta=1.0)
    np.testing.assert_allclose(theory(**lin, bulk="step")["test_error"].values,
                               theory(**lin)["test_error"].values, rtol=1e-8)


def test_step_bulk_refusals():
    with pytest.raises(ModelAssumptionError, match="no uniform spike"):
        theory(student="square", teacher="tanh", bulk="step")
    with pytest.raises(ParameterError, match="post-step theory"):
        theory(d=100, bulk="step")
    with pytest.raises(ModelAssumptionError, match="constant second layer"):
        theory(eta_exponent=0.3, bulk="step")
    with pytest.raises(ModelAssumptionError, match="constant second layer"):
        theory(a_init="gaussian", bulk="step")


def test_cli_bulk_option(capsys):
    code, out, _ = run(capsys, ["onestep", "theory", "--alpha0", "0.5", "--eta", "2", "--alpha",
                                "2", "--bulk", "step", "--json"])
    res = json.loads(out)
    assert code == 0 and res["status"] == "ok" and res["params"]["bulk"] == "step"
    assert res["test_error"][0] == pytest.approx(
        float(theory(alpha0=0.5, eta=2.0, alpha=[2.0], bulk="step")["test_error"][0, 0]))
    code, _, err = run(capsys, ["onestep", "theory", "--d", "100", "--bulk", "step"])
    assert code == 2 and "post-step theory" in err and len(err.strip().splitlines()) == 1


def test_cli_simulate_beside_the_step_bulk(capsys):
    """`onestep simulate --theory-bulk step` puts the step-bulk theory beside the simulation
    (the library's value, at β = p/d); a bad value is refused before simulating."""
    code, out, _ = run(capsys, ["onestep", "simulate", "--alpha0", "0.5", "--eta", "2", "--alpha",
                                "2", "--d", "100", "--seeds", "1", "--theory-bulk", "step",
                                "--json"])
    res = json.loads(out)
    assert code == 0 and res["theory_bulk"] == "step"
    assert res["theory_test_error"][0] == pytest.approx(
        float(theory(alpha0=0.5, eta=2.0, alpha=[2.0], bulk="step")["test_error"][0, 0]))
    code, out, err = run(capsys, ["onestep", "simulate", "--d", "50", "--seeds", "1",
                                  "--theory-bulk", "stp"])
    assert code == 2 and "--theory-bulk" in err and "run 1" not in err


def test_cli_simulate_beside_the_post_step_theory(capsys):
    """`--theory-bulk post-step` (several steps too): the column is the mean over the runs of
    the fixed point on each run's own W after the steps, the library's post_step_theory."""
    from twolayer.onestep import post_step_theory

    args = dict(alpha0=[0.5, 0.5], eta=[2.0, 2.0], alpha=[2.0], d=150, seeds=2)
    code, out, _ = run(capsys, ["onestep", "simulate", "--alpha0", "0.5,0.5", "--eta", "2,2",
                                "--alpha", "2", "--d", "150", "--seeds", "2", "--theory-bulk",
                                "post-step", "--json"])
    res = json.loads(out)
    assert code == 0 and res["theory_bulk"] == "post-step"
    post = post_step_theory(**args)
    assert res["theory_test_error"][0] == pytest.approx(float(post["test_error_mean"][0, 0]))
    assert res["srf"]["spike"] == pytest.approx(float(post["spike"].mean()))

"""SGD simulation vs ODE from the same initial overlaps, limits, and reference figures."""

import warnings

import numpy as np
import pytest

from twolayer.errors import DivergenceWarning
from twolayer.sgd import initial_overlaps, ode, simulate

# Finite-d margin between the ODE (d → ∞) and SGD at d = 1000, relative to the risk, on top of
# three standard errors of the seed mean (measured deviations are 0.1-0.5% away from plateaus).
FINITE_D_MARGIN = 0.02


def _compare(sim, th, margin=FINITE_D_MARGIN):
    t = sim["t"].values
    r_ode = th["risk"].interp(t=t).values
    mean = sim["risk_mean"].values
    se = sim["risk_std"].values / np.sqrt(sim.sizes["seed"])
    gap = np.abs(r_ode - mean)
    bound = 3 * se + margin * r_ode
    assert np.all(gap <= bound), (t[gap > bound], r_ode[gap > bound], mean[gap > bound])
    return float(np.max(gap / r_ode))


@pytest.mark.parametrize(
    "kw",
    [
        # the SGD-variance term large: γ/p = 0.5 with label noise
        dict(p=2, k=2, gamma=1.0, noise=0.1, t_max=20.0),
        # a wide student: p = 8 > k = 2
        dict(p=8, k=2, gamma=2.0, noise=0.0, t_max=5.0),
    ],
    ids=["variance", "wide"],
)
def test_erf_ode_matches_simulation(kw):
    sim = simulate("erf", "erf", d=1000, seeds=8, **kw)
    th = ode("erf", "erf", d=1000, **kw)
    assert th.attrs["status"] == "ok"
    _compare(sim, th)
    assert sim["risk_mean"].values[-1] < 0.3 * sim["risk_mean"].values[0]  # it learned


@pytest.mark.slow
def test_erf_plateau_ode_matches_simulation():
    """p = k = 2, small init: the symmetric plateau at R ≈ 2.9e-3, then specialisation."""
    kw = dict(p=2, k=2, gamma=2.0, noise=0.0, t_max=300.0, init_scale=0.1)
    th = ode("erf", "erf", d=1000, **kw)
    plateau = th["risk"].sel(t=slice(20, 60)).values
    assert np.ptp(plateau) < 0.05 * plateau.mean()  # flat
    assert th["risk"].values[-1] < 0.3 * plateau.mean()  # escaped
    sim = simulate("erf", "erf", d=1000, seeds=8, **kw)
    # escape from the plateau is driven by O(1/√d) fluctuations: allow 10% there
    _compare(sim, th, margin=0.10)


def test_spherical_ode_matches_spherical_simulation():
    kw = dict(p=2, k=2, gamma=1.0, noise=0.05, t_max=10.0, spherical=True)
    sim = simulate("erf", "erf", d=1000, seeds=8, **kw)
    th = ode("erf", "erf", d=1000, **kw)
    np.testing.assert_allclose(np.diagonal(th["Q"].values, axis1=1, axis2=2), 1.0, atol=1e-6)
    _compare(sim, th)
    # and it differs from the unconstrained dynamics by more than the error bars
    free = ode("erf", "erf", d=1000, **{**kw, "spherical": False})
    assert abs(float(free["risk"][-1]) / float(th["risk"][-1]) - 1) > 2 * FINITE_D_MARGIN


def test_tanh_quadrature_ode_matches_simulation():
    kw = dict(p=2, k=2, gamma=1.0, noise=0.05, t_max=4.0)
    sim = simulate("tanh", "tanh", d=1000, seeds=8, **kw)
    th = ode("tanh", "tanh", d=1000, **kw)
    _compare(sim, th)


def test_relu_gradient_flow_ode_matches_small_step_simulation():
    """relu: closed-form pair integrals; γ/p = 0.025, so the variance term is a ~1% effect."""
    kw = dict(p=2, k=2, t_max=3.0)
    sim = simulate("relu", "relu", d=1000, seeds=8, gamma=0.05, **kw)
    th = ode("relu", "relu", d=1000, gamma=0.05, variance=False, **kw)
    _compare(sim, th, margin=0.03)


def test_small_gamma_tends_to_gradient_flow_linearly():
    kw = dict(p=3, k=2, noise=0.1, t_max=20.0, d=1000)
    flow = ode("erf", "erf", gamma=1.0, variance=False, **kw)["risk"].values
    gaps = [np.max(np.abs(ode("erf", "erf", gamma=g, **kw)["risk"].values - flow))
            for g in (0.2, 0.1, 0.05)]
    assert gaps[0] > 1e-4
    assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.05)
    assert gaps[1] / gaps[2] == pytest.approx(2.0, rel=0.05)


def test_classical_reference_curve():
    """erf, p = 10, k = 2, d = 3, γ = 0.05, Δ = 1e-3 (shared/reference/committee_classic.md).

    The reference's own random start gives 1.09e-1 at t = 0.01, 4.42e-3 at t = 10 and
    5.69e-7 at t = 1e4 (the label-noise floor). Our start (seed 3) differs, so the test checks
    the two decades of decay by t = 10 and the floor within a factor 2.
    """
    th = ode("erf", "erf", p=10, k=2, d=3, seed=3, gamma=0.05, noise=1e-3, t_max=1e4)
    r = th["risk"]
    assert th.attrs["status"] == "ok"
    assert 0.03 < float(r.sel(t=0.01)) < 0.2
    assert float(r.sel(t=10, method="nearest")) < 0.1 * float(r.sel(t=0.01))
    assert 5.69e-7 / 2 < float(r[-1]) < 5.69e-7 * 2
    assert np.all(np.diff(r.values[1:]) < 1e-9)  # decreasing


def test_euler_matches_adaptive():
    kw = dict(p=2, k=2, gamma=0.5, noise=0.01, t_max=5.0, d=1000)
    a = ode("erf", "erf", **kw)["risk"].values
    e = ode("erf", "erf", solver="euler", dt=1e-3, **kw)["risk"].values
    np.testing.assert_allclose(e, a, rtol=2e-3)


def test_ode_starts_where_simulation_starts():
    sim = simulate("erf", "erf", p=3, k=2, d=400, gamma=1.0, t_max=0.1, seeds=2, seed=5,
                   init_scale=0.5)
    ov = initial_overlaps(3, 2, 400, seed=5, init_scale=0.5)
    np.testing.assert_allclose(sim["Q"].values[:, 0], np.broadcast_to(ov.Q, (2, 3, 3)))
    np.testing.assert_allclose(sim["M"].values[:, 0], np.broadcast_to(ov.M, (2, 3, 2)))
    th = ode("erf", "erf", p=3, k=2, d=400, gamma=1.0, t_max=0.1, seed=5, init_scale=0.5)
    assert float(th["risk"][0]) == pytest.approx(float(sim["risk_mean"][0]), rel=1e-12)


def test_divergence_is_reported():
    """Linear SGD with γ/p·|x|²/d = 3 > 2 diverges; so does the ODE's (γ/p)(2R + Δ) growth."""
    kw = dict(p=1, k=1, gamma=3.0, noise=0.0, t_max=50.0)
    with pytest.warns(DivergenceWarning):
        sim = simulate("linear", "linear", d=200, seeds=2, **kw)
    assert np.all(np.isfinite(sim["diverged_at"].values))
    assert np.isnan(sim["risk_mean"].values[-1])
    with pytest.warns(DivergenceWarning):
        th = ode("linear", "linear", d=200, **kw)
    assert th.attrs["status"] == "diverged" and th.attrs["t_stop"] < 50
    assert np.isnan(th["risk"].values[-1])


def test_float32_simulation_matches_ode():
    kw = dict(p=2, k=2, d=1000, gamma=1.0, noise=0.1, t_max=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sim = simulate("erf", "erf", float32=True, seeds=8, **kw)
    assert sim["risk"].dtype == np.float64  # overlaps and risk are accumulated in float64
    _compare(sim, ode("erf", "erf", **kw))

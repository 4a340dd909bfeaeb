"""Regimes of one-pass SGD: the exponent map, and the finite-size reading against the ODE."""

import json

import pytest

from twolayer.cli import main
from twolayer.sgd import ode
from twolayer.sgd.regimes import classify, classify_exponents


@pytest.mark.parametrize(
    ("kappa", "delta", "name", "steps"),
    [
        (0.0, 0.5, "classical", "d^1.5"),
        (0.5, 0.0, "mean-field", "d^1.5"),
        (0.0, 0.0, "high-dimensional", "d^1"),
        (0.5, -0.5, "mixed", "d^1"),
        (0.0, -0.25, "variance-dominated", "d^0.5"),  # −1/2 < κ + δ < 0
        (0.5, -0.6, "variance-dominated", "d^0.8"),
        # one step moves Q_jj by γ²/(p²d) = d^(−1−2(κ+δ)): vanishes iff κ + δ > −1/2
        (1.0, -1.4, "variance-dominated", "d^0.2"),
        (1.0, -1.5, "no-ODE", "—"),
        (0.0, -0.6, "no-ODE", "—"),
    ],
)
def test_exponent_phase_diagram(kappa, delta, name, steps):
    reg = classify_exponents(kappa, delta)
    assert reg.name == name and reg.steps_per_unit_time == steps


def test_finite_reading_agrees_with_the_ode():
    """Where `classify` calls the variance term negligible (γ/p = 0.005) the ODE's final risk is
    within 3% of gradient flow's; where it calls it O(1) (γ/p = 0.5) it is 2.5× higher."""
    kw = dict(p=2, k=2, d=1000, noise=0.1, t_max=20.0)
    flow = ode("erf", "erf", gamma=1.0, variance=False, **kw)["risk"].values[-1]
    for gamma, name, close in ((0.01, "classical", True), (1.0, "high-dimensional", False)):
        assert classify(1000, 2, gamma).name == name
        r = ode("erf", "erf", gamma=gamma, **kw)["risk"].values[-1]
        assert bool(abs(r / flow - 1) < 0.03) is close
        assert bool(abs(r / flow - 1) > 1.0) is (not close)
    assert classify(1000, 5000, 1.0).name == "mean-field"
    assert classify(10, 1, 20.0).name == "no-ODE"  # γ²/(p²d) = 40
    assert classify(10, 10, 20.0).name == "high-dimensional"  # γ²/(p²d) = 0.4, γ/p = 2


def test_regimes_cli(capsys):
    assert main(["sgd", "regimes", "--kappa", "0", "--delta", "0", "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["name"] == "high-dimensional" and obj["variance_weight"] == "γ0/p0"
    assert main(["sgd", "regimes", "--d", "1000", "--p", "10", "--gamma", "0.01"]) == 0
    assert "classical" in capsys.readouterr().out
    assert main(["sgd", "regimes", "--d", "1000", "--kappa", "1"]) == 2
    assert main(["sgd", "regimes", "--kappa", "-1", "--delta", "0"]) == 2


def _one_step_jump(d: int, delta: float) -> float:
    """Mean |ΔQ_jj| over the first SGD step, p = d (κ = 1), γ = d^(−δ), 16 runs."""
    import numpy as np

    from twolayer.sgd import simulate

    gamma = d ** (-delta)
    ds = simulate(p=d, k=1, d=d, gamma=gamma, t_max=2 * gamma / (d * d), seeds=16,
                  per_decade=40)
    q = ds.Q_diag.values if "Q_diag" in ds else np.einsum("stjj->stj", ds.Q.values)
    first = int(np.flatnonzero(ds.steps.values == 1)[0])
    return float(np.abs(q[:, first] - q[:, 0]).mean())


def test_between_the_two_no_ode_edges_one_step_vanishes():
    """κ = 1, δ = −1.25 lies beyond the authors' edge δ = −(1 + κ)/2 = −1 but inside the package's
    κ + δ > −½: one step moves Q_jj by γ²/(p²d) = d^(−1/2) → 0, so an ODE can hold. From d = 64 to
    d = 512 the predicted shrink is at least √8 ≈ 2.8 (measured 5.6: the gradient part falls
    faster); beyond the package's edge (δ = −1.75) one step moves Q_jj by O(1),
    more as d grows."""
    assert classify_exponents(1.0, -1.25).name == "variance-dominated"
    assert "no-ODE" in classify_exponents(1.0, -1.25).note
    small, large = _one_step_jump(64, -1.25), _one_step_jump(512, -1.25)
    assert large < 0.01 and large < 0.25 * small  # measured 0.0040 and 0.023
    small, large = _one_step_jump(64, -1.75), _one_step_jump(512, -1.75)
    assert large > 1.0 and large > small  # measured 1.67 and 1.10: an O(1) move, no ODE
    assert classify_exponents(1.0, -1.75).name == "no-ODE"

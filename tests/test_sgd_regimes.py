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

"""Several giant steps: the update at the current W, exact reduction to one step, diagnostics."""

import json

import numpy as np
import pytest

from twolayer import activations
from twolayer.cli import main
from twolayer.errors import ParameterError
from twolayer.onestep import simulate
from twolayer.onestep.simulate import _giant_step
from twolayer.params import OnestepSimulate, OnestepTheory


def test_a_giant_step_is_minus_eta_p_times_the_gradient():
    """Against central finite differences of L(W) = ½ mean_μ (y_μ − (1/p) Σ_j σ(w_j·x_μ))²."""
    rng = np.random.default_rng(3)
    p, d, n0, eta = 4, 6, 10, 0.7
    s = activations.get("tanh")
    w = rng.standard_normal((p, d)) / np.sqrt(d)
    x = rng.standard_normal((n0, d))
    y = np.sin(x[:, 0])

    def loss(m):
        return 0.5 * np.mean((y - np.tanh(x @ m.T).mean(axis=1)) ** 2)

    grad = np.zeros_like(w)
    h = 1e-6
    for idx in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[idx] = h
        grad[idx] = (loss(w + e) - loss(w - e)) / (2 * h)
    np.testing.assert_allclose(_giant_step(s, w, x, y, eta), w - eta * p * grad, atol=1e-8)


def test_a_second_step_with_eta_zero_is_the_one_step_model_exactly():
    kw = dict(d=120, seeds=2, alpha=[0.5, 2.0], n_test=500)
    one = simulate(alpha0=1.0, eta=1.0, **kw)
    two = simulate(alpha0=[1.0, 1.0], eta=[1.0, 0.0], **kw)
    for v in ("test_error", "train_error", "spike_sv", "spike_overlap", "bulk_scale"):
        np.testing.assert_array_equal(two[v].values, one[v].values)
    # the first of several steps is that step: its spike is the one-step run's
    np.testing.assert_allclose(two["step_sv"].values[:, 0, 0], one["spike_sv"].values,
                               rtol=1e-10)


def test_a_second_step_aligns_the_spike_with_the_target():
    """tanh/tanh, α0 = η̃ = 1 twice, d = 400 (measured: |v·θ| 0.69 → 0.84 on average)."""
    ds = simulate(alpha0=[1.0, 1.0], eta=[1.0, 1.0], d=400, seeds=4, alpha=[1.0], n_test=1000)
    first, second = ds["step_overlap"].values[:, 0, 0], ds["step_overlap"].values[:, 1, 0]
    gain = second - first
    assert gain.mean() > 3 * gain.std(ddof=1) / np.sqrt(gain.size)
    assert (ds["step_sv"].values[:, 1, 0] > ds["step_sv"].values[:, 0, 0]).all()
    # the two steps push along one direction: their top directions overlap strongly
    assert (ds["step_direction_overlap"].values[:, 0, 1] > 0.7).all()
    np.testing.assert_allclose(np.diagonal(ds["step_direction_overlap"].values, axis1=1,
                                           axis2=2), 1.0, atol=1e-9)
    assert ds.attrs["n0"].tolist() == [400, 400]


def test_steps_are_lists_of_equal_length_and_have_no_theory_yet(capsys):
    assert OnestepSimulate(alpha0=[1, 2], eta=0.5).steps == [(1.0, 0.5), (2.0, 0.5)]
    assert OnestepSimulate(eta=[0.5]).eta == 0.5  # one entry: the one-step model
    with pytest.raises(ParameterError, match="equal length"):
        OnestepSimulate.of(alpha0=[1, 2, 3], eta=[1, 2])
    with pytest.raises(ParameterError, match="no theory yet"):
        OnestepTheory.of(eta=[1, 1])
    assert main(["onestep", "simulate", "--alpha0", "1,1", "--eta", "1,0.5", "--d", "80",
                 "--seeds", "2", "--alpha", "1", "--n-test", "200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"]["alpha0"] == [1.0, 1.0] and out["params"]["eta"] == [1.0, 0.5]
    assert main(["onestep", "theory", "--alpha0", "1,1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no theory yet" in err

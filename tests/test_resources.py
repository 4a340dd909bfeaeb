"""Size guards and the inputs that used to fail untyped (issue: trust under faults)."""

import json
import tracemalloc
import warnings

import numpy as np
import pytest

from twolayer.cli import main
from twolayer.errors import DivergenceWarning, ParameterError, ResourceError
from twolayer.params import OnestepSimulate, OnestepTheory, SgdSimulate
from twolayer.resources import available_bytes
from twolayer.sgd.init import Overlaps


@pytest.mark.parametrize("cls,kw", [
    (OnestepTheory, dict(d=1500, alpha=[1.0])),
    (OnestepSimulate, dict(d=600, seeds=1, alpha=[0.5, 2.0])),
    (SgdSimulate, dict(p=8, k=2, d=3000, seeds=8, t_max=0.05)),
    (SgdSimulate, dict(p=100, k=1, d=2000, seeds=4, t_max=0.02)),
])
def test_memory_estimate_tracks_the_measured_peak(cls, kw):
    """The estimate is within a factor [0.75, 2.5] of tracemalloc's peak (NumPy allocations)."""
    prm = cls(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DivergenceWarning)
        prm.compute()  # first call: caches and compiled kernels are not the computation's
        tracemalloc.start()
        try:
            prm.compute()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert 0.75 <= prm.memory_bytes() / peak <= 2.5, (prm.memory_bytes(), peak)


@pytest.mark.parametrize("cls,kw,hint", [
    (OnestepTheory, dict(d=100_000), "d = 'inf'"),
    (OnestepSimulate, dict(d=100_000), "lower d"),
    (OnestepSimulate, dict(alpha=[1e12]), "largest alpha"),
    (SgdSimulate, dict(seeds=10**9), "fewer seeds"),
    (SgdSimulate, dict(p=10**11), "smaller p"),
    (OnestepSimulate, dict(seeds=10**9), "seeds"),  # runs one at a time; their results add up
])
def test_what_cannot_fit_is_refused_before_allocating(cls, kw, hint):
    prm = cls(**kw)
    assert prm.memory_bytes() > available_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(ResourceError, match=hint) as e:
            prm.compute()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50e6 and "\n" not in str(e.value)


@pytest.mark.parametrize("args", [
    ["onestep", "theory", "--d", "100000"],
    ["onestep", "simulate", "--d", "100000"],
    ["onestep", "simulate", "--alpha", "1e12"],
    ["sgd", "simulate", "--seeds", "1000000000"],
])
def test_cli_refuses_oversized_problems_with_exit_2(capsys, args):
    assert main([*args, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "of memory" in err


def test_the_full_ode_refuses_before_drawing_its_start(capsys):
    """p = d = 10⁵: the start alone (p × d weights, p² overlaps) is ~150 GiB; refused in one
    line before anything is drawn."""
    tracemalloc.start()
    try:
        assert main(["sgd", "ode", "--p", "100000", "--d", "100000", "--reduction", "full"]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert peak < 50e6 and err.count("\n") == 1 and "full ODE at p = 100000" in err


def test_an_overflowing_step_is_a_diverged_result_not_a_traceback(capsys):
    with pytest.warns(DivergenceWarning, match="overflowed"):
        ds = OnestepSimulate(student="relu", eta=1e300, d=80, seeds=2, alpha=[1.0],
                             n_test=100).compute()
    assert ds.attrs["status"] == "diverged" and np.isnan(ds["test_error"].values).all()
    assert np.isnan(ds["spike_sv"].values).all()
    with pytest.raises(ParameterError, match="overflows the step map"):
        OnestepTheory(student="relu", eta=1e300).compute()
    assert main(["onestep", "simulate", "--student", "relu", "--eta", "1e300", "--d", "80",
                 "--seeds", "2", "--alpha", "1", "--json"]) == 3  # written, but not ok
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "diverged" and out["test_error"] == [None]


def test_overlaps_from_nested_lists_and_a_non_utf8_init_file(tmp_path, capsys):
    ov = Overlaps([[1.0, 0.1], [0.1, 1.0]], [[0.2], [0.0]], [[1.0]]).check()
    assert ov.Q.dtype == float and (ov.p, ov.k) == (2, 1)
    with pytest.raises(ParameterError, match="matrix"):
        Overlaps([1.0], [[0.0]], [[1.0]])
    bad = tmp_path / "start.json"
    bad.write_bytes(b'\xff\xfe{"Q": [[1]]}')
    assert main(["sgd", "ode", "--p", "1", "--k", "1", "--init", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not UTF-8" in err

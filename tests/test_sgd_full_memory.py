"""The full SGD ODE in O(p²) memory: the streamed erf variance term, the solver's work arrays,
the memory/time estimate before integrating and the rule of reduction="auto"."""

import importlib
import math
import tracemalloc
import warnings

import numpy as np
import pytest

from twolayer.cli import main
from twolayer.errors import ParameterError
from twolayer.params import SgdOde
from twolayer.sgd import _kernels, ode
from twolayer.sgd.init import initial_overlaps, omega_of
from twolayer.sgd.integrals import error_weights

ode_mod = importlib.import_module("twolayer.sgd.ode")  # the module, not the function


def dense_erf_flow(c, p, v, var_coef, noise):
    """Independent reference: the Saad–Solla closed forms over all (j, l, a, b) as dense arrays."""
    d = np.diag(c)
    cj = c[:p]
    a1 = 1 + d[:p, None]
    lam3 = a1 * (1 + d[None, :]) - cj**2
    num = c[None, :, :] * a1[:, :, None] - cj[:, :, None] * cj[:, None, :]
    t = 2 / np.pi * np.einsum("jbc,jc,c->jb", num, 1 / (a1 * np.sqrt(lam3)), v)
    dq = t[:, :p] + t[:, :p].T
    ajj, aqq = a1[:, None, :, None], a1[None, :, :, None]
    cjq = c[:p, :p][:, :, None, None]
    lam4 = ajj * aqq - cjq**2
    cja, cqa = cj[:, None, :, None], cj[None, :, :, None]
    cjb, cqb = cj[:, None, None, :], cj[None, :, None, :]
    lam1 = lam4 * (1 + d[None, None, :, None]) - cqa**2 * ajj - cja**2 * aqq + 2 * cjq * cja * cqa
    lam2 = lam4 * (1 + d[None, None, None, :]) - cqb**2 * ajj - cjb**2 * aqq + 2 * cjq * cjb * cqb
    lam0 = (lam4 * c[None, None] - cqa * cqb * ajj - cja * cjb * aqq
            + cjq * (cja * cqb + cjb * cqa))
    i4 = 4 / np.pi**2 * np.arcsin(lam0 / np.sqrt(lam1 * lam2)) / np.sqrt(lam4)
    j2 = 2 / np.pi / np.sqrt(lam4[..., 0, 0])
    return dq + var_coef * (np.einsum("jlab,a,b->jl", i4, v, v) + noise * j2), t[:, p:]


@pytest.mark.parametrize("p", [2, 4, 8, 16, 32])
def test_streamed_erf_flow_equals_dense_closed_forms(p):
    for seed, d in ((p, 3), (p + 1, 50)):
        init = initial_overlaps(p, 2, d, seed, 1.5, False)
        om, v = omega_of(init.Q, init.M, init.P), error_weights(p, 2)
        dq, dm = _kernels.erf_flow(om, p, v, 0.7, 0.3)
        rq, rm = dense_erf_flow(om, p, v, 0.7, 0.3)
        assert np.max(np.abs(dq - rq)) <= 1e-12 * np.max(np.abs(rq))
        assert np.max(np.abs(dm - rm)) <= 1e-12 * np.max(np.abs(rm))


def test_cephes_arcsin_within_one_ulp():
    x = np.concatenate([np.linspace(-1, 1, 200_001), 1 - np.geomspace(1e-17, 0.4, 2001),
                        -np.geomspace(1e-300, 0.7, 2001)])
    got = np.array([_kernels.asin(float(u)) for u in x])
    ref = np.arcsin(x)
    assert np.all(np.abs(got - ref) <= np.spacing(np.abs(ref)) + 1e-300)


def _peak_bytes(p):
    tracemalloc.start()
    try:
        res = ode("erf", "erf", p=p, k=2, d=3, gamma=1.0, t_max=0.3, per_decade=5,
                  reduction="full")
        return tracemalloc.get_traced_memory()[1], res
    finally:
        tracemalloc.stop()


def test_full_ode_memory_grows_like_p_squared(monkeypatch):
    # the layout used at large p (LSODA with a banded Jacobian of width 0) at small p
    monkeypatch.setattr(ode_mod, "DENSE_JACOBIAN_BYTES", 0, raising=False)
    ode("erf", "erf", p=2, k=2, d=3, t_max=0.1)  # load the kernels outside the measurement
    (small, r1), (big, r2) = _peak_bytes(30), _peak_bytes(60)
    # p² gives 4, the former dense n_state² work array 16 (n_state ≈ p²/2)
    assert big / small < 6, (small, big)
    for peak, res in ((small, r1), (big, r2)):
        assert peak <= res.attrs["memory_bytes_estimate"]
        assert res.attrs["status"] == "ok" and res.attrs["rhs_seconds"] > 0


def test_band_jacobian_gives_the_dense_trajectory(monkeypatch):
    ref = ode("erf", "erf", p=6, k=2, d=3, gamma=1.0, t_max=10, reduction="full")
    monkeypatch.setattr(ode_mod, "DENSE_JACOBIAN_BYTES", 0, raising=False)
    band = ode("erf", "erf", p=6, k=2, d=3, gamma=1.0, t_max=10, reduction="full")
    np.testing.assert_allclose(band["risk"], ref["risk"], rtol=1e-6)


def test_memory_estimate_refuses_before_integrating(monkeypatch, capsys):
    monkeypatch.setattr(ode_mod, "available_bytes", lambda: 2**30)
    need = ode_mod.memory_estimate(300, 2, 61, "Radau")
    assert need > 5 * 8 * (300 * 301 // 2) ** 2  # the dense LU of Radau
    with pytest.raises(ParameterError, match=r"p = 300 .*reduction='wide'"):
        ode("erf", "erf", p=300, k=2, d=3, t_max=10, solver="Radau", reduction="full")
    code = main(["sgd", "ode", "--p", "300", "--d", "3", "--reduction", "full", "--solver",
                 "Radau", "--t-max", "10"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "p = 300" in err and "Traceback" not in err and len(
        err.strip().splitlines()) == 1


def test_auto_rule(monkeypatch):
    def prm(p, d, **kw):
        return SgdOde(student="erf", teacher="erf", p=p, d=d, t_max=10, **kw)

    assert ode_mod.choose_reduction(prm(64, 3)) == "full"
    # the time estimate: kernel cost per term × terms × evaluations
    monkeypatch.setattr(ode_mod, "_erf_term_seconds", lambda: 1e-9)
    est = ode_mod.full_seconds_estimate(prm(100, 3))
    assert est == pytest.approx(1e-9 * 5050 * (102 * 103 // 2) * 180)
    assert ode_mod.choose_reduction(prm(100, 3)) == "full"
    assert ode_mod.choose_reduction(prm(2000, 1000)) == "wide"  # ~7e5 s
    with pytest.raises(ParameterError, match="p = 2000 at d = 3"):
        ode_mod.choose_reduction(prm(2000, 3))
    monkeypatch.setattr(ode_mod, "available_bytes", lambda: 10**6)
    with pytest.raises(ParameterError, match="needs about"):
        ode_mod.choose_reduction(prm(100, 3))
    assert ode_mod.choose_reduction(prm(100, 1000)) == "wide"


def test_estimate_attributes_on_the_result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ode("erf", "erf", p=5, k=2, d=3, t_max=1)
    a = res.attrs
    n_t = res.sizes["t"]
    assert a["memory_bytes_estimate"] == ode_mod.memory_estimate(5, 2, n_t, "LSODA")
    assert 0 < a["rhs_seconds"] < 1 and math.isclose(
        a["seconds_estimate"], a["rhs_seconds"] * (150 + 3 * 1.0))

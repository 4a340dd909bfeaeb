"""A learning rate growing with d (η̃ = eta·d^(ζ − ½)): the numbers of the one-step model page.

Run: python benchmarks/growing.py [equivalent|network|outliers|speed] [--out FILE.json]

  equivalent  the d = ∞ limit against its equivalent model simulated at d = 1000 (ridge on the
              random features σ(W0x)/√p plus 30·He_k(v̂·x)/√k!, v̂ at the limit's alignment),
              4 seeds, α = 0.5 and 2, λ = 0.01;
  network     the network (relu/relu, α0 = 1, eta = 4, Gaussian a, α = 2) at d = 500, 1000,
              2000, 4 seeds, against the limit, with the part of He_1, He_2 (κ) in the top-4
              feature span;
  outliers    two growing steps (α0 = 1, eta = 4 each, Gaussian a): the outliers of W2 at
              d = 400 and 800 against Moniri and Hassani's count (tanh and relu, 2 seeds);
  speed       a 20-point growing-step theory curve (the cold first call and a warm one).
"""

import argparse
import json
import sys
import time

import numpy as np

from twolayer.onestep import simulate, theory
from twolayer.onestep.growing import alignment, equivalent_model_error, second_step_outliers


def equivalent() -> list[dict]:
    rows = []
    for st, te, zeta in (("relu", "relu", 0.3), ("tanh", "tanh", 0.2), ("relu", "relu", 0.2),
                         ("erf", "sin", 0.36)):
        gamma = alignment(st, te, 1.0, 0.0, "gaussian").alignment
        th = theory(student=st, teacher=te, alpha0=1.0, eta=1.0, eta_exponent=zeta,
                    a_init="gaussian", alpha=[0.5, 2.0], lam=[0.01])
        for j, alpha in enumerate((0.5, 2.0)):
            mean, se = equivalent_model_error(st, te, 1000, alpha, 0.01,
                                              list(th.attrs["degrees"]), gamma, seeds=4)
            rows.append({"case": f"{st}/{te}", "zeta": zeta, "alpha": alpha,
                         "degrees": [int(k) for k in th.attrs["degrees"]],
                         "limit": float(th["test_error"][j, 0]), "equivalent": mean, "se": se})
    return rows


def network() -> list[dict]:
    rows = []
    kw = dict(student="relu", teacher="relu", alpha0=1.0, eta=4.0, a_init="gaussian",
              alpha=[2.0], lam=[0.01])
    for zeta in (0.2, 0.3):
        limit = float(theory(**kw, eta_exponent=zeta)["test_error"].squeeze())
        for d in (500, 1000, 2000):
            sim = simulate(**kw, eta_exponent=zeta, d=d, seeds=4, n_test=5000,
                           feature_spikes=4)
            te = sim["test_error"].values.ravel()
            cap = sim["feature_captured"].mean("seed").values
            rows.append({"zeta": zeta, "d": d, "limit": limit, "simulation": float(te.mean()),
                         "se": float(te.std(ddof=1) / 2), "captured_he1": float(cap[0]),
                         "captured_he2": float(cap[1])})
    return rows


def outliers() -> list[dict]:
    rows = []
    for st in ("tanh", "relu"):
        for d in (400, 800):
            for zeta in (0.2, 0.3, 0.35, 0.4, 0.45):
                sim = simulate(student=st, teacher=st, d=d, alpha0=[1.0, 1.0], eta=[4.0, 4.0],
                               eta_exponent=[zeta, zeta], a_init="gaussian", alpha=[0.5],
                               seeds=2, n_test=10)
                rows.append({"case": st, "d": d, "zeta": zeta,
                             "limit": 1 + len(second_step_outliers(st, zeta, zeta)),
                             "outliers": [int(v) for v in sim["step_outliers"].values[:, 1]],
                             "second_sv": float(sim["step_sv"].values[:, 1, 1].mean()),
                             "edge": float(sim["step_edge"].values[:, 1].mean())})
    return rows


def speed() -> dict:
    kw = dict(student="relu", teacher="relu", alpha0=1.0, eta=4.0, eta_exponent=0.3,
              a_init="gaussian", alpha=list(np.linspace(0.2, 3.0, 20)), lam=[0.01])
    t0 = time.perf_counter()
    theory(**kw)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    theory(**kw)
    return {"curve_20_points_cold_s": cold, "curve_20_points_warm_s": time.perf_counter() - t0}


CASES = {"equivalent": equivalent, "network": network, "outliers": outliers, "speed": speed}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="*", default=list(CASES), choices=list(CASES))
    ap.add_argument("--out")
    args = ap.parse_args()
    out = {}
    for name in args.cases:
        t0 = time.perf_counter()
        out[name] = CASES[name]()
        print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        print(json.dumps({name: out[name]}, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)

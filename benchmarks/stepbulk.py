"""The d = ∞ step bulk against the spiked surrogate and simulation.

Run: python benchmarks/stepbulk.py [--d 2000] [--seeds 8] [--cases 0,1,…] [--out FILE.json]
     python benchmarks/stepbulk.py speed

For each case, α = 0.5, 1, 2 and λ = 0.01: the simulation's test error (mean ± s.e. over the
seeds, d = p), the d = ∞ theory with the surrogate's Marchenko–Pastur bulk (``bulk="mp"``) and
with the step's own bulk (``bulk="step"``, :mod:`twolayer.onestep.stepbulk`), and both
theories' deviation in units of the simulation's s.e. ``speed`` times a 20-point curve with each
bulk after one, two and three steps (the first call and a second one in the same process).
"""

import argparse
import json
import sys
import time

import numpy as np

from twolayer.onestep import simulate, theory

CASES = {
    "tanh/tanh a0=0.5 eta=0.5": dict(student="tanh", teacher="tanh", alpha0=0.5, eta=0.5),
    "tanh/tanh a0=0.5 eta=1": dict(student="tanh", teacher="tanh", alpha0=0.5, eta=1.0),
    "tanh/tanh a0=0.5 eta=2": dict(student="tanh", teacher="tanh", alpha0=0.5, eta=2.0),
    "tanh/tanh a0=0.5 eta=3": dict(student="tanh", teacher="tanh", alpha0=0.5, eta=3.0),
    "erf/sin a0=1 eta=2": dict(student="erf", teacher="sin", alpha0=1.0, eta=2.0),
    "tanh/relu a0=1 eta=2 noise=0.1": dict(student="tanh", teacher="relu", alpha0=1.0, eta=2.0,
                                           noise=0.1),
    "relu/tanh a0=2 eta=1": dict(student="relu", teacher="tanh", alpha0=2.0, eta=1.0),
    "relu/tanh a0=2 eta=2": dict(student="relu", teacher="tanh", alpha0=2.0, eta=2.0),
    "softplus/sin a0=1 eta=2": dict(student="softplus", teacher="sin", alpha0=1.0, eta=2.0),
    "erf/tanh 3 steps a0=1 eta=3": dict(student="erf", teacher="tanh", alpha0=[1.0] * 3,
                                        eta=[3.0] * 3),
    "tanh/sin 3 steps a0=1 eta=2": dict(student="tanh", teacher="sin", alpha0=[1.0] * 3,
                                        eta=[2.0] * 3),
    "tanh/tanh 2 steps a0=0.5 eta=2": dict(student="tanh", teacher="tanh", alpha0=[0.5] * 2,
                                           eta=[2.0] * 2),
    "relu/tanh 2 steps a0=1 eta=2": dict(student="relu", teacher="tanh", alpha0=[1.0] * 2,
                                         eta=[2.0] * 2),
}
ALPHA, LAM = [0.5, 1.0, 2.0], [0.01]


def compare(d: int, seeds: int, names) -> dict:
    out = {}
    for name in names:
        kw = CASES[name]
        mp = theory(**kw, alpha=ALPHA, lam=LAM).test_error.values[:, 0]
        step = theory(**kw, alpha=ALPHA, lam=LAM, bulk="step").test_error.values[:, 0]
        sim = simulate(**kw, alpha=ALPHA, lam=LAM, d=d, seeds=seeds).test_error.values[:, :, 0]
        mean, se = sim.mean(0), sim.std(0, ddof=1) / np.sqrt(seeds)
        out[name] = [{"alpha": a, "sim": float(mean[j]), "se": float(se[j]),
                      "mp": float(mp[j]), "step": float(step[j]),
                      "mp_dev_se": float((mp[j] - mean[j]) / se[j]),
                      "step_dev_se": float((step[j] - mean[j]) / se[j])}
                     for j, a in enumerate(ALPHA)]
        print(name, json.dumps(out[name]), flush=True)
    return out


def speed() -> dict:
    res = {}
    for case in ("tanh/tanh a0=0.5 eta=2", "tanh/tanh 2 steps a0=0.5 eta=2",
                 "erf/tanh 3 steps a0=1 eta=3"):
        kw = dict(CASES[case], alpha=list(np.linspace(0.1, 4.0, 20)), lam=LAM)
        for bulk in ("mp", "step"):
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                theory(**kw, bulk=bulk)
                times.append(time.perf_counter() - t0)
            res[f"{case}, {bulk}"] = {"first_s": times[0], "second_s": times[1]}
    print(json.dumps(res))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="compare", choices=("compare", "speed"))
    ap.add_argument("--d", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--cases", default=",".join(str(i) for i in range(len(CASES))))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    names = [list(CASES)[int(i)] for i in a.cases.split(",")]
    res = speed() if a.mode == "speed" else {"d": a.d, "seeds": a.seeds, "lam": LAM[0],
                                             "cases": compare(a.d, a.seeds, names)}
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    json.dump(res, sys.stdout)


if __name__ == "__main__":
    main()

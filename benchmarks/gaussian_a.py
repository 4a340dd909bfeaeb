"""A Gaussian second layer during one giant step: the typed theory against simulation.

Run: python benchmarks/gaussian_a.py [--d 1000] [--seeds 12] [--cases 0,1,…] [--surrogate]
     python benchmarks/gaussian_a.py speed
     python benchmarks/gaussian_a.py spikes [--d 1000] [--seeds 6]
     python benchmarks/gaussian_a.py two [--d 2000] [--seeds 8] [--surrogate]

For each case, α = 0.5, 1, 2 and λ = 0.01: the network's test error (a_j ~ N(0, 1) during the
step, mean ± s.e. over the seeds, d = p), the d = ∞ theory with neuron types
(:mod:`twolayer.onestep.typed`), its deviation in units of the simulation's s.e., and the
constant-a theory of the same step for contrast. ``--surrogate`` also simulates the model the
theory solves (rows b(a_j) w̃_j + a_j r ĝ, :func:`~twolayer.onestep.typed.surrogate_error`),
which separates the fixed point's error from the surrogate bulk's. ``speed`` times a 20-point
curve (first call and a second one in the same process) against the constant-a theory.
``spikes`` compares the top singular values of W_t − W0 over √p and the top direction's overlap
with θ after each of two giant steps (:func:`~twolayer.onestep.typed.gaussian_a_spikes`) with
the simulation's ``step_sv`` and ``step_overlap`` (mean ± s.e.) and the bulk edge ``step_edge``.
``two`` makes the same comparison after two steps (κ ∈ R^r, :mod:`twolayer.onestep.span`).
"""

import argparse
import json
import sys
import time

import numpy as np

from twolayer.onestep import simulate, theory
from twolayer.onestep.typed import gaussian_a_spikes, surrogate_error

CASES = {
    "tanh/tanh a0=1 eta=1": dict(student="tanh", teacher="tanh", alpha0=1.0, eta=1.0),
    "tanh/tanh a0=0.5 eta=2": dict(student="tanh", teacher="tanh", alpha0=0.5, eta=2.0),
    "erf/sin a0=1 eta=2": dict(student="erf", teacher="sin", alpha0=1.0, eta=2.0),
    "relu/tanh a0=2 eta=1": dict(student="relu", teacher="tanh", alpha0=2.0, eta=1.0),
    "tanh/relu a0=1 eta=2": dict(student="tanh", teacher="relu", alpha0=1.0, eta=2.0),
    "relu/tanh a0=1 eta=2": dict(student="relu", teacher="tanh", alpha0=1.0, eta=2.0),
}
ALPHA, LAM = [0.5, 1.0, 2.0], [0.01]


def compare(cases: dict, d: int, seeds: int, surrogate: bool) -> dict:
    """Per case and α: the Gaussian-a theory, the network (mean, s.e.), the theory's deviation
    in s.e., the constant-a theory of the same steps, the spikes' directions (two steps) and,
    with ``surrogate``, the simulated model the theory solves."""
    out = {}
    for name, kw in cases.items():
        th = theory(**kw, a_init="gaussian", alpha=ALPHA, lam=LAM)
        typed = th.test_error.values[:, 0]
        const = theory(**kw, alpha=ALPHA, lam=LAM).test_error.values[:, 0]
        sim = simulate(**kw, a_init="gaussian", alpha=ALPHA, lam=LAM, d=d,
                       seeds=seeds).test_error.values[:, :, 0]
        mean, se = sim.mean(0), sim.std(0, ddof=1) / np.sqrt(seeds)
        rows = []
        for j, a in enumerate(ALPHA):
            row = {"alpha": a, "sim": float(mean[j]), "se": float(se[j]),
                   "theory": float(typed[j]), "dev_se": float((typed[j] - mean[j]) / se[j]),
                   "constant_a_theory": float(const[j])}
            if "spike_directions" in th.attrs:
                row["directions"] = int(th.attrs["spike_directions"])
            if surrogate:
                m, s = surrogate_error(kw["student"], kw["teacher"], kw["alpha0"], kw["eta"],
                                       d=d, alpha=a, lam=LAM[0], seeds=seeds, n_test=10000)
                row.update(surrogate=m, surrogate_se=s, surrogate_dev_se=(typed[j] - m) / s)
            rows.append(row)
        out[name] = rows
        print(name, json.dumps(rows), flush=True)
    return out


def speed() -> dict:
    kw = dict(student="relu", teacher="tanh", alpha0=1.0, eta=2.0,
              alpha=np.linspace(0.2, 3.0, 20).tolist(), lam=[0.01])
    out = {}
    for label, extra in (("gaussian a", {"a_init": "gaussian"}), ("constant a", {})):
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            theory(**kw, **extra)
            times.append(time.perf_counter() - t0)
        out[label] = times
        print(f"{label}: 20-point curve {times[0]:.2f} s (first), {times[1]:.2f} s (second)")
    return out


SPIKE_CASES = {
    "relu/tanh 2 x (1, 1)": dict(student="relu", teacher="tanh", alpha0=[1.0, 1.0], eta=[1.0, 1.0]),
    "relu/tanh 2 x (1, 2)": dict(student="relu", teacher="tanh", alpha0=[1.0, 1.0], eta=[2.0, 2.0]),
    "tanh/tanh 2 x (1, 1)": dict(student="tanh", teacher="tanh", alpha0=[1.0, 1.0], eta=[1.0, 1.0]),
    "tanh/tanh 2 x (1, 2)": dict(student="tanh", teacher="tanh", alpha0=[1.0, 1.0], eta=[2.0, 2.0]),
    "softplus/sin 2 x (1, 2)": dict(student="softplus", teacher="sin", alpha0=[1.0, 1.0],
                                    eta=[2.0, 2.0]),
}


def spikes(d: int, seeds: int) -> dict:
    out = {}
    for name, kw in SPIKE_CASES.items():
        th = gaussian_a_spikes(kw["student"], kw["teacher"], kw["alpha0"], kw["eta"])
        sim = simulate(**kw, a_init="gaussian", alpha=[1.0], lam=[0.01], d=d, seeds=seeds,
                       n_test=100)
        sv, ov = sim["step_sv"].values, sim["step_overlap"].values  # (seed, step, rank)
        edge = sim["step_edge"].values
        rows = []
        for t in range(2):
            rows.append({
                "step": t + 1, "theory_sv": th[t]["sv"][:2].tolist(),
                "sim_sv": sv[:, t, :2].mean(0).tolist(),
                "sim_sv_se": (sv[:, t, :2].std(0, ddof=1) / np.sqrt(seeds)).tolist(),
                "edge": float(edge[:, t].mean()), "theory_overlap": float(th[t]["overlap"]),
                "sim_overlap": float(ov[:, t, 0].mean()),
                "sim_overlap_se": float(ov[:, t, 0].std(ddof=1) / np.sqrt(seeds))})
        out[name] = rows
        print(name, json.dumps(rows), flush=True)
    return out


TWO_CASES = {f"{st}/tanh 2 x (1, {e:g})": dict(student=st, teacher="tanh", alpha0=[1.0, 1.0],
                                                eta=[e, e])
             for e in (1.0, 2.0) for st in ("relu", "tanh")}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="compare",
                    choices=["compare", "speed", "spikes", "two"])
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--cases", default="")
    ap.add_argument("--surrogate", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if args.mode == "speed":
        res = speed()
    elif args.mode == "spikes":
        res = spikes(args.d, min(args.seeds, 6))
    elif args.mode == "two":
        res = compare(TWO_CASES, args.d, args.seeds, args.surrogate)
    else:
        names = list(CASES)
        if args.cases:
            names = [names[int(i)] for i in args.cases.split(",")]
        res = compare({n: CASES[n] for n in names}, args.d, args.seeds, args.surrogate)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

"""ODE against SGD at d = 3 from the same overlaps, through the CLI; prints JSON.

Run: python benchmarks/sgd_d3.py [--quick]

For each case one draw (p, k, d = 3, seed 0) is written as an ``--init`` JSON file of its
overlaps (Q, M, P); ``twolayer sgd simulate --init`` (weights realised from the factored
overlaps) and ``twolayer sgd ode --init`` both start there (γ = 1, Δ = 0, to t = 10). Reported:
the worst |ODE − mean of the seeds| in standard errors of that mean (std/√seeds) and relative
to the mean, over the recorded times t > 0, and the wall time of each command. Cases: square
p = 200 and 1000, k = 1 (the quadratic closure, chosen by ``auto``), erf p = 100, k = 2 (the
full ODE). Also the closure's time for the paper's mean-field run (square, p = 5000, k = 1,
d = 3, γ = 1, to t = 1000).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from twolayer.sgd.init import initial_weights, overlaps_of

CASES = [  # (student/teacher, p, k, seeds, reduction)
    ("square", 200, 1, 32, "auto"),
    ("square", 1000, 1, 16, "auto"),
    ("erf", 100, 2, 8, "full"),
]


def _cli(args: list[str]) -> tuple[dict, float]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "twolayer", *args, "--json"], check=True,
                         capture_output=True, text=True, env={**os.environ,
                                                              "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout), time.perf_counter() - started


def compare(act: str, p: int, k: int, seeds: int, reduction: str, folder: str,
            t_max: float = 10.0) -> dict:
    ov = overlaps_of(*initial_weights(p, k, 3, seed=0))
    path = os.path.join(folder, f"init_{act}_{p}_{k}.json")
    with open(path, "w") as fh:
        json.dump({"Q": ov.Q.tolist(), "M": ov.M.tolist(), "P": ov.P.tolist()}, fh)
    common = ["--student", act, "--teacher", act, "--p", str(p), "--k", str(k), "--d", "3",
              "--gamma", "1", "--noise", "0", "--t-max", str(t_max), "--init", path]
    sim, sim_s = _cli(["sgd", "simulate", *common, "--seeds", str(seeds), "--no-ode"])
    th, ode_s = _cli(["sgd", "ode", *common, "--reduction", reduction])
    t, mean = np.array(sim["t"]), np.array(sim["risk"])
    se = np.array(sim["risk_std"]) / np.sqrt(seeds)
    r = np.interp(t, np.array(th["t"]), np.array(th["risk"]))
    late = t > 0
    z = np.abs(r - mean)[late] / se[late]
    rel = np.abs(r - mean)[late] / mean[late]
    return {"case": f"{act} p={p} k={k} d=3", "reduction": th["reduction"], "seeds": seeds,
            "risk_t0": float(mean[0]), "risk_ode_t0": float(th["risk"][0]),
            "risk_tmax_sim": float(mean[-1]), "risk_tmax_se": float(se[-1]),
            "risk_tmax_ode": float(r[-1]),
            "worst_se": float(z.max()), "worst_se_at_t": float(t[late][z.argmax()]),
            "worst_rel": float(rel.max()), "worst_rel_at_t": float(t[late][rel.argmax()]),
            "simulate_s": round(sim_s, 2), "ode_s": round(ode_s, 2)}


def main() -> None:
    quick = "--quick" in sys.argv
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for act, p, k, seeds, reduction in CASES[:1] if quick else CASES:
            out[f"{act}_p{p}_k{k}"] = compare(act, p, k, seeds, reduction, folder)
    started = time.perf_counter()
    from twolayer.sgd import ode

    res = ode("square", "square", p=5000, k=1, d=3, gamma=1.0, t_max=1000.0)
    out["meanfield_p5000_t1000"] = {"reduction": res.attrs["reduction"],
                                    "seconds_in_process": round(time.perf_counter() - started, 3),
                                    "solver_seconds": round(res.attrs["seconds"], 3),
                                    "nfev": res.attrs["nfev"],
                                    "risk_t1000": float(res.risk.values[-1])}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

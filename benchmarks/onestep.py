"""Benchmarks of the one-step model; prints JSON. Run: python benchmarks/onestep.py [--full]

Reference timings on this machine kind (shared/reference/onestep.md): the reference notebook's
finite-d theory takes 5-15 s per α point (100-300 s for a 20-point curve, d = 1000), and plain
NumPy simulations of d = p = 2000 take 74 s for 8 seeds (one α column, 6 α).
"""

import json
import subprocess
import sys
import time

import numpy as np

from twolayer.onestep import simulate, theory

REF_THEORY_CURVE_S = 100.0  # lower end of the reference's 20-point curve (onestep.md)
REF_SIM_PER_SEED_S = 74.0 / 8  # reference plain-NumPy simulation, d = p = 2000, per seed


def timed(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(full: bool) -> dict:
    kw = dict(alpha0=0.5, eta=1.0, lam=0.01)
    alphas20 = np.linspace(0.2, 3.0, 20)
    out = {}
    theory("tanh", "tanh", alpha=[1.0], **kw)  # warm caches
    out["theory_d_inf_20_alpha_s"] = timed(lambda: theory("tanh", "tanh", alpha=alphas20, **kw))
    out["theory_two_steps_d_inf_20_alpha_s"] = timed(  # α0 = η̃ = 1 twice (goal < 2 s)
        lambda: theory("tanh", "tanh", alpha=alphas20, alpha0=[1.0, 1.0], eta=[1.0, 1.0],
                       lam=0.01))
    out["theory_finite_d1000_20_alpha_s"] = timed(
        lambda: theory("tanh", "tanh", alpha=alphas20, d=1000, **kw), repeat=1)
    cli = [sys.executable, "-m", "twolayer", "onestep", "theory", "--alpha",
           ",".join(f"{a:.3f}" for a in alphas20), "--json"]
    out["cli_theory_20_alpha_s"] = timed(lambda: subprocess.run(cli, capture_output=True), 3)
    d = 2000 if full else 1000
    sim_alphas = [0.2, 0.6, 1.0, 1.6, 2.0, 3.0]
    out[f"simulate_d{d}_3seeds_6alpha_s"] = timed(
        lambda: simulate("tanh", "tanh", alpha=sim_alphas, d=d, seeds=3, **kw), repeat=1)
    out["speedup_theory_vs_reference"] = REF_THEORY_CURVE_S / out["theory_d_inf_20_alpha_s"]
    if full:
        out["speedup_simulation_vs_reference"] = (
            3 * REF_SIM_PER_SEED_S / out["simulate_d2000_3seeds_6alpha_s"])
    return out


if __name__ == "__main__":
    print(json.dumps(main("--full" in sys.argv), indent=1))

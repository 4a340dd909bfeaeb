"""Sweep throughput and per-point overhead of `twolayer run`; prints JSON.

Run: python benchmarks/experiments.py [--quick]

- machine: the speedup of two independent CPU-bound processes run at once over one after the
  other: what any 2-worker sweep can reach on this machine (2.0 on two free cores).
- throughput: 64 points of ~1 s (the one-step theory on a 400-point α grid; an SGD simulation),
  in-process one after the other (``workers=0``) vs a LocalCluster of 2 worker processes;
  ``speedup = serial wall / 2-worker wall`` (goal ≥ 1.7 on 2 cores), cluster start and stop
  included.
- overhead: 200 near-instant points (an SGD ODE to t = 0.01, ~3 ms each). Serial:
  (wall − Σ compute)/N — hashing, store writes, merge and save. Dask: the steady interval
  between completions (ms per point, compute included) and its excess over the serial
  compute time per worker; the cluster's fixed start/stop cost apart. Goal < 50 ms.

Each measurement starts from an empty store (a fresh temporary folder).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twolayer.experiments import parse_config, run_experiment

THEORY = """model = "onestep"
method = "theory"
[params]
alpha = {{linspace = [0.1, 5, 400]}}
lam = [0.01, 0.1]
[sweep]
eta = {{linspace = [0.1, 2.0, {n}]}}
"""
SGD = """model = "sgd"
method = "simulate"
[params]
d = 500
t_max = 80
seeds = 1
[sweep]
seed = {{range = [0, {n}, 1]}}
"""
INSTANT = """model = "sgd"
method = "ode"
[params]
d = 100
t_max = 0.01
[sweep]
seed = {{range = [0, {n}, 1]}}
"""


class Clock:
    """A Progress hook that records when each point arrives."""

    def start(self, total, cached):
        self.t0, self.done = time.perf_counter(), []

    def advance(self, record):
        self.done.append((time.perf_counter(), record.seconds))

    def stop(self):
        pass


def machine_parallelism() -> dict:
    """Two CPU-bound processes at once vs one after the other."""
    burn = [sys.executable, "-c", "x = 0\nfor i in range(20_000_000): x += i"]
    t0 = time.perf_counter()
    subprocess.run(burn, check=True)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    procs = [subprocess.Popen(burn) for _ in range(2)]
    for p in procs:
        p.wait()
    two = time.perf_counter() - t0
    return {"one_process_s": one, "two_at_once_s": two, "parallel_speedup": 2 * one / two}


def sweep(text: str, workers: int, serial_point_s: float | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        exp = parse_config(text, base_dir=tmp)
        clock = Clock()
        t0 = time.perf_counter()
        _, info = run_experiment(exp, workers=workers, progress=clock)
        wall = time.perf_counter() - t0
    assert info["ok"] == info["points"], info
    times = [t for t, _ in clock.done]
    compute = sum(s for _, s in clock.done)
    n = len(times)
    out = {"points": n, "wall_s": wall, "compute_s": compute, "mean_point_s": compute / n}
    if workers:
        skip = min(n // 4, 2 * workers)  # the first points pay the workers' imports
        steady = (times[-1] - times[skip]) / (n - 1 - skip)
        out["steady_ms_per_point"] = 1e3 * steady
        if serial_point_s is not None:
            out["overhead_per_point_ms"] = 1e3 * (steady - serial_point_s / workers)
        out["fixed_cost_s"] = wall - steady * n  # cluster start/stop, first imports
    else:
        out["overhead_per_point_ms"] = 1e3 * (wall - compute) / n
    return out


def main(quick: bool) -> dict:
    n = 16 if quick else 64
    res: dict = {"machine": machine_parallelism()}
    run_experiment(parse_config(INSTANT.format(n=1), base_dir=tempfile.mkdtemp()), workers=0)
    for name, text in (("theory", THEORY), ("sgd_simulate", SGD)):
        serial = sweep(text.format(n=n), 0)
        dask2 = sweep(text.format(n=n), 2)
        res[f"{name}_{n}pts"] = {"serial": serial, "workers2": dask2,
                                 "speedup": serial["wall_s"] / dask2["wall_s"]}
    m = 50 if quick else 200
    serial = sweep(INSTANT.format(n=m), 0)
    res[f"instant_{m}pts"] = {"serial": serial,
                              "workers2": sweep(INSTANT.format(n=m), 2, serial["mean_point_s"])}
    return res


if __name__ == "__main__":
    out = main("--quick" in sys.argv)
    print(json.dumps(out, indent=1))
    Path(".benchmarks").mkdir(exist_ok=True)
    Path(".benchmarks/experiments.json").write_text(json.dumps(out, indent=1))

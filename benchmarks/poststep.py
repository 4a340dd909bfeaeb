"""Where the spiked surrogate is off: the theory on the real post-step W1, ingredient by ingredient.

Run: python benchmarks/poststep.py [--d 500,1000,2000] [--seeds 8] [--out FILE.json]

For each case and d, over the same seeds as ``onestep simulate`` (paired runs):
  inf        the d = ∞ theory (step map + Marchenko–Pastur);
  surrogate  the finite-d surrogate (finite_rule: √c·W0 with the map's r_s, γ), one draw per seed;
  scalars    Marchenko–Pastur bulk at the r_s, c, γ measured on W1;
  spectrum   + W1's real bulk spectrum D, projections F', H' spread as in the surrogate
             (F' flat, H' ∝ D, totals as measured);
  spike_proj + W1's real spike projections F' (H' as in ``spectrum``);
  teacher_proj + W1's real teacher projections H' (F' as in ``spectrum``);
  post       + W1's real projections F', H' (the full post-step theory);
  gauss_equiv the post-step theory on a W1 whose step uses the Gaussian equivalent of σ'
             (see ``linearised_step``): is the W0-dependence beyond linear needed?
  sim        the simulation's test error.
Means over seeds with s.e.; ``post - sim`` also as a paired mean ± s.e.

``--split`` instead splits the step's σ'(W0 X0ᵀ) into its parts and, for each synthetic W1,
compares the post-step theory with a ridge readout simulated on that same W1 (paired):
  linear   W0 + η̃/n0 [(μ1 + μ2·W0X0ᵀ) ∘ ρ] X0   (the W0-dependent term only, no noise);
  indep    c₀W0 + η̃/n0 [(μ1 + √(v + μ2²)·Ξ) ∘ ρ] X0   (shrink + noise independent of W0);
  shrink   c₀W0 + η̃/n0 [μ1 ρ] X0   (the surrogate's structure: shrink and spike only).
"""

import argparse
import importlib
import json
import time

import numpy as np

from twolayer import activations
from twolayer.onestep import simulate, theory
from twolayer.onestep.poststep import post_step_rule, step_samples, stepped_weights
from twolayer.onestep.simulate import _features, _ridge
from twolayer.onestep.spectrum import SpectralRule, StepMap, finite_rule, mp_rule, step_map
from twolayer.params import OnestepSimulate

T = importlib.import_module("twolayer.onestep.theory")

CASES = {
    "tanh/tanh a0=0.5 eta=2": dict(student="tanh", teacher="tanh", alpha0=0.5, eta=2.0),
    "relu/tanh a0=2 eta=2": dict(student="relu", teacher="tanh", alpha0=2.0, eta=2.0),
    "tanh/tanh a0=0.5 eta=1": dict(student="tanh", teacher="tanh", alpha0=0.5, eta=1.0),
    "relu/tanh a0=2 eta=1": dict(student="relu", teacher="tanh", alpha0=2.0, eta=1.0),
}
ALPHA, LAM = [2.0], [0.01]


def err(student, teacher, sm, rule, beta=1.0):
    tab = T.channel_tables(student, teacher, sm)
    sol = T.solve(tab, rule, np.array(ALPHA), np.array(LAM), beta=beta)
    assert sol["converged"].all()
    return float(sol["test_error"][0, 0])


def linearised_step(student, w0, x0, y0, eta, rng):
    """The step with σ'(W0 X0ᵀ) replaced by its Gaussian equivalent μ1 + μ2·W0X0ᵀ + √v·Ξ
    (μ2 = E σ'', v = E σ'² − μ1² − μ2², Ξ i.i.d. N(0, 1) independent of W0): the real residual
    and samples, the noise part's dependence on W0 kept only through its linear term."""
    a = activations.get(student)
    pre = x0 @ w0.T
    resid = y0 - a.fn(pre).mean(axis=1)
    mu1, mu2 = a.mu(1), a.mu(2)
    v = a.deriv_second_moment - mu1**2 - mu2**2
    sp = mu1 + mu2 * pre + np.sqrt(max(v, 0.0)) * rng.standard_normal(pre.shape)
    return w0 + (eta / len(x0)) * ((sp * resid[:, None]).T @ x0)


def mean_se(x):
    x = np.asarray(x, float)
    return [float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))]


def one_case(kw, d, seeds):
    s, t = kw["student"], kw["teacher"]
    sm = step_map(s, t, kw["alpha0"], kw["eta"])
    prm = OnestepSimulate(**kw, d=d, seeds=seeds, alpha=ALPHA, lam=LAM)
    p = prm.width
    rows = {k: [] for k in ("surrogate", "scalars", "spectrum", "spike_proj", "teacher_proj",
                            "post", "gauss_equiv")}
    meas = {k: [] for k in ("spike", "bulk_scale", "alignment", "spike_spread", "row_spread")}
    for i in range(seeds):
        theta, w0, w1 = stepped_weights(prm, i)
        ps = post_step_rule(w1, theta, (w1 - w0).mean(0))
        m = ps.step
        for k in ("spike", "bulk_scale", "alignment"):
            meas[k].append(getattr(m, k))
        meas["spike_spread"].append(ps.spike_spread)
        meas["row_spread"].append(ps.row_spread)
        rng = np.random.default_rng([7, d, i])
        rows["surrogate"].append(err(s, t, sm, finite_rule(d, p, sm.bulk_scale**2, rng)))
        c = m.bulk_scale**2
        rows["scalars"].append(err(s, t, m, mp_rule(p / d, c)))
        r = ps.rule
        n = len(r.nodes)
        wf = np.full(n, r.w_spike.sum() / n)
        wh = r.nodes * r.w_teacher.sum() / r.nodes.sum()
        rows["spectrum"].append(err(s, t, m, SpectralRule(r.nodes, r.w, wf, wh, "iso")))
        rows["spike_proj"].append(err(s, t, m, SpectralRule(r.nodes, r.w, r.w_spike, wh, "F'")))
        rows["teacher_proj"].append(err(s, t, m, SpectralRule(r.nodes, r.w, wf, r.w_teacher, "H'")))
        rows["post"].append(err(s, t, m, r))
        _, _, x0, y0 = step_samples(prm, i)
        wg = linearised_step(s, w0, x0, y0, kw["eta"], np.random.default_rng([11, d, i]))
        pg = post_step_rule(wg, theta, (wg - w0).mean(0))
        rows["gauss_equiv"].append(err(s, t, pg.step, pg.rule))
    sim = simulate(prm).test_error.values[:, 0, 0]
    out = {k: mean_se(v) for k, v in rows.items()}
    out["sim"] = mean_se(sim)
    out["post-sim paired"] = mean_se(np.array(rows["post"]) - sim)
    out["surrogate-sim paired"] = mean_se(np.array(rows["surrogate"]) - sim)
    out["measured"] = {k: mean_se(v) for k, v in meas.items()}
    out["map"] = StepMap.as_dict(sm)
    return out


def readout_error(student, teacher, w, theta, n, rng, n_test=10000):
    """Test MSE of the ridge readout (λ = LAM) on n fresh samples, first layer w frozen."""
    s, t = activations.get(student), activations.get(teacher)
    x = rng.standard_normal((n, w.shape[1]))
    z = _features(s, x, w, np.float64)
    a = _ridge(z, t.fn(x @ theta), z.T @ z, np.array(LAM))[:, 0]
    xt = rng.standard_normal((n_test, w.shape[1]))
    return float(np.mean((t.fn(xt @ theta) - _features(s, xt, w, np.float64) @ a) ** 2))


def split_case(kw, d, seeds):
    s, t, eta = kw["student"], kw["teacher"], kw["eta"]
    a = activations.get(s)
    mu1, mu2 = a.mu(1), a.mu(2)
    v = a.deriv_second_moment - mu1**2 - mu2**2
    c0 = step_map(s, t, kw["alpha0"], eta).bulk_shrink
    prm = OnestepSimulate(**kw, d=d, seeds=seeds, alpha=ALPHA, lam=LAM)
    out = {k: [] for k in ("linear", "indep", "shrink")}
    for i in range(seeds):
        theta, w0, x0, y0 = step_samples(prm, i)
        pre = x0 @ w0.T
        resid = (y0 - a.fn(pre).mean(axis=1))[:, None]
        xi = np.random.default_rng([5, d, i]).standard_normal(pre.shape)
        k = eta / len(x0)
        ws = {"linear": w0 + k * (((mu1 + mu2 * pre) * resid).T @ x0),
              "indep": c0 * w0 + k * (((mu1 + np.sqrt(v + mu2**2) * xi) * resid).T @ x0),
              "shrink": c0 * w0 + k * ((mu1 * resid).T @ x0)}
        for name, w in ws.items():
            ps = post_step_rule(w, theta, (w - w0).mean(0))
            sim = readout_error(s, t, w, theta, round(ALPHA[0] * d), np.random.default_rng([9, i]))
            out[name].append((err(s, t, ps.step, ps.rule), sim))
    res = {}
    for name, vals in out.items():
        vals = np.array(vals)
        res[name] = {"theory": mean_se(vals[:, 0]), "sim": mean_se(vals[:, 1]),
                     "paired": mean_se(vals[:, 0] - vals[:, 1])}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", default="500,1000,2000")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--cases", default=",".join(str(i) for i in range(len(CASES))))
    ap.add_argument("--out", default=None)
    ap.add_argument("--split", action="store_true")
    a = ap.parse_args()
    names = [list(CASES)[int(i)] for i in a.cases.split(",")]
    res = {"alpha": ALPHA[0], "lam": LAM[0], "seeds": a.seeds, "cases": {}}
    for name in names:
        kw = CASES[name]
        if a.split:
            for d in (int(x) for x in a.d.split(",")):
                res["cases"][f"{name} d={d}"] = split_case(kw, d, a.seeds)
                print(name, d, json.dumps(res["cases"][f"{name} d={d}"]), flush=True)
            continue
        inf = float(theory(**kw, alpha=ALPHA, lam=LAM).test_error[0, 0])
        res["cases"][name] = {"inf": inf}
        for d in (int(x) for x in a.d.split(",")):
            t0 = time.perf_counter()
            res["cases"][name][str(d)] = one_case(kw, d, a.seeds)
            res["cases"][name][str(d)]["seconds"] = time.perf_counter() - t0
            print(name, d, json.dumps(res["cases"][name][str(d)]), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()

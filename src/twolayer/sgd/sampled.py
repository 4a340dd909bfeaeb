"""The full ODE's SGD-variance term by sampling: an approximation with a stated error.

The exact term Σ_ab v_a v_b E[σ'_j σ'_l h_a h_b] (:meth:`~twolayer.sgd.integrals.Engine.variance`)
costs O(p⁴) four-point integrals per right-hand side: erf p = 200 to t = 10 needs ~4.6·10¹¹
arcsines (6 min on 2 cores). Here the term is the average over n fixed Gaussian samples of the
fields, x = z Ω^{1/2} (z the same n × (p + k) standard normal draws at every right-hand side:
common random numbers, so the right-hand side stays a continuous function of Ω and the solver
sees no noise; Ω^{1/2} the symmetric square root, unique and continuous for any PSD Ω, rank
deficient at d < p + k included):

    E[σ'_j σ'_l e²] ≈ (1/n) Σ_s σ'(x_sj) σ'(x_sl) e_s²,   e_s = Σ_a v_a h_a(x_sa),

plus the label-noise part Δ E[σ'_j σ'_l], exact. Cost O(n (p + k)²) per right-hand side, as
BLAS products; memory n (p + k) for the draws. The estimate's relative standard error at the
start, ‖SE‖_F/‖V‖_F over the p × p entries, is computed once (``rel_se``) and goes into the
result; the bias along the trajectory is of that order on the variance term alone (the drift
stays exact). Any activation with a derivative works, kinked ones included (the exact term
exists only for relu/relu, relu/linear and the smooth ones).
"""

from __future__ import annotations

import numpy as np

from twolayer.sgd.integrals import Engine, error_weights

__all__ = ["SampledEngine", "memory_bytes"]

_CHUNK = 8192


def memory_bytes(n: int, width: int) -> float:
    """Bytes the sampled term holds: the n × width draws and a chunk's fields, σ'e and its
    square."""
    return 8.0 * (n + 3 * _CHUNK) * width


class SampledEngine:
    """An :class:`~twolayer.sgd.integrals.Engine` whose variance term is sampled (module
    docstring); the drift, the risk and the readout are the wrapped engine's (exact)."""

    def __init__(self, base: Engine, n: int, width: int, seed: int = 0):
        self.base, self.n = base, int(n)
        self.student, self.teacher = base.student, base.teacher
        self.z = np.random.default_rng([seed, 7919]).standard_normal((self.n, width))
        self.rel_se = float("nan")

    def risk(self, omega, p, a=None):
        return self.base.risk(omega, p, a)

    def readout(self, omega, p, a):
        return self.base.readout(omega, p, a)

    def flow(self, omega, p, noise, var_coef, a=None):
        dq, dm = self.base.flow(omega, p, noise, 0.0, a)
        if var_coef:
            var = self.variance(omega, p, noise, a)
            dq = dq + var_coef * (var if a is None else np.outer(a, a) * var)
        return dq, dm

    def variance(self, omega, p, noise, a=None, *, with_se: bool = False):
        """Σ_ab v_a v_b E[σ'_j σ'_l h_a h_b] (sampled) + Δ E[σ'_j σ'_l] (exact), p × p; with
        ``with_se`` also the sampled part's relative standard error ‖SE‖_F/‖V‖_F."""
        k = omega.shape[0] - p
        v = error_weights(p, k, a)
        lam, vec = np.linalg.eigh(omega)
        root = (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.T  # Ω^{1/2}
        s, t = self.student, self.teacher
        acc = np.zeros((p, p))
        sq = np.zeros((p, p)) if with_se else None
        for lo in range(0, self.n, _CHUNK):
            x = self.z[lo:lo + _CHUNK, : len(root)] @ root
            e = s.fn(x[:, :p]) @ v[:p] + t.fn(x[:, p:]) @ v[p:]
            g = s.deriv(x[:, :p]) * e[:, None]
            acc += g.T @ g
            if with_se:
                g2 = g * g
                sq += g2.T @ g2
        mean = acc / self.n
        if with_se:
            se = np.sqrt(np.maximum(sq / self.n - mean**2, 0.0) / self.n)
            self.rel_se = float(np.linalg.norm(se) / max(np.linalg.norm(mean), 1e-300))
        if noise:
            from twolayer.sgd.integrals import _pairs

            mean = mean + noise * _pairs("d1d1", s, s, omega, slice(0, p), slice(0, p))
        return mean

"""Learning-rate schedules of committee-machine SGD: γ(ν) = γ·g(t_ν), t_ν = ν·γ/(p·d).

The time keeps counting steps at the base rate γ (t = ν·γ/(p·d) whatever the schedule), so in
the ODEs every drift term (the gradient terms, weight decay, the second layer's flow) carries
the factor g(t) and the SGD-variance term (γ/(p·b))·E[e²σ'σ'] carries g(t)². The second layer's
rate γ_a follows the same schedule.

- constant: g = 1;
- power: g = (1 + t/t0)^(−β) (t0 = ν0·γ/(p·d) for a decay time of ν0 steps);
- steps: g = 1 before t_1, f_i on [t_i, t_{i+1}) (piecewise constant; the ODE solver restarts at
  each t_i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Schedule"]


@dataclass(frozen=True)
class Schedule:
    """g(t) of one of the schedules above."""

    kind: str = "constant"
    t0: float = 1.0
    beta: float = 0.5
    times: tuple[float, ...] = ()
    factors: tuple[float, ...] = ()

    @classmethod
    def of(cls, prm) -> Schedule:
        """The schedule of SGD parameters (``schedule``, ``schedule_t0`` …)."""
        return cls(prm.schedule, prm.schedule_t0, prm.schedule_beta,
                   tuple(prm.schedule_times), tuple(prm.schedule_factors))

    @property
    def constant(self) -> bool:
        return self.kind == "constant"

    @property
    def breaks(self) -> tuple[float, ...]:
        """The times where g jumps (steps), where an ODE solver must restart."""
        return self.times if self.kind == "steps" else ()

    def factor(self, t):
        """g(t) (scalar or array of times t ≥ 0)."""
        t = np.asarray(t, dtype=float)
        if self.kind == "power":
            g = (1.0 + t / self.t0) ** (-self.beta)
        elif self.kind == "steps":
            idx = np.searchsorted(np.asarray(self.times), t, side="right")
            g = np.concatenate([[1.0], self.factors])[idx]
        else:
            g = np.ones_like(t)
        return float(g) if g.ndim == 0 else g

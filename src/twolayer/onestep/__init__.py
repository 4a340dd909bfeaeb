"""One giant gradient step on the first layer, then a ridge readout (Cui et al. 2024).

- :func:`theory` — spiked random-features asymptotics (d = ∞ or a finite-d spectrum);
- :func:`simulate` — the network itself, batched over seeds and the α grid;
- :func:`rf_theory` — the random-features baseline (η̃ = 0);
- :func:`step_map` — the sRF parameters (bulk scale, spike strength, alignment) of the step;
  :func:`step_maps` — the same after each of several steps.
- :func:`post_step_theory` — the same fixed point on the real W1 of simulated steps (finite d),
  where the spiked surrogate is off (large η̃²/α0); :mod:`twolayer.onestep.stepbulk` — its
  d = ∞ limit (``theory(..., bulk="step")``).
- :mod:`twolayer.onestep.growing` — a learning rate growing with d (``eta_exponent``): the
  d = ∞ limit, where the emerging Hermite degrees of the step direction are free features.
- :mod:`twolayer.onestep.typed` — a Gaussian second layer during one or two giant steps
  (``a_init="gaussian"``): every neuron its own spike, the fixed point over neuron types;
  :mod:`twolayer.onestep.span` — the same with spikes on r directions (κ ∈ R^r, two steps).
"""

from twolayer.onestep.poststep import post_step_theory
from twolayer.onestep.rf import linear_rf_error, rf_theory
from twolayer.onestep.simulate import simulate
from twolayer.onestep.spectrum import StepMap, step_map, step_maps
from twolayer.onestep.theory import theory

__all__ = ["StepMap", "linear_rf_error", "post_step_theory", "rf_theory", "simulate", "step_map",
           "step_maps", "theory"]

"""twolayer: exact high-dimensional theory and simulations of two-layer neural networks.

Models
------
- ``twolayer.onestep``: one giant gradient step on the first layer followed by a ridge readout
  (Cui et al. 2024, arXiv 2402.04980), with its spiked random-features theory.
"""

__version__ = "0.1.0"

from twolayer.errors import ConvergenceWarning, ParameterError, TwolayerError

__all__ = ["ConvergenceWarning", "ParameterError", "TwolayerError", "__version__"]

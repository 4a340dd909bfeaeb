"""Shared tolerances (one place) and helpers."""

import warnings

import pytest

from twolayer.errors import ConvergenceWarning

# Relative finite-size margin allowed between d = inf theory and simulations at d ~ 500-2000,
# on top of two standard errors of the seed mean (the reference's own draws move by ~3-8%).
FINITE_SIZE_MARGIN = 0.04


@pytest.fixture(autouse=True)
def _convergence_warnings_are_errors():
    """A ConvergenceWarning not expected by a test fails it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        yield

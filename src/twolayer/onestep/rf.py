"""Random features: the η̃ = 0 baseline, and an exact formula for linear random features.

``rf_theory`` is the sRF theory without the step (bulk scale 1, no spike).

``linear_rf_error`` is an independent check for σ = σ⋆ = linear: features z = W x (Gaussian),
readout f = aᵀz/√p fitted by Σ(y − f)² + λ‖a‖² on n samples. With b = a/√p this is ridge on z
with penalty λ' = λ·p/n, covariance Σ = WWᵀ and target b* = Σ⁺Wθ; the part of θ·x that z
cannot explain acts as extra Gaussian noise σ_u² = 1 − θᵀWᵀΣ⁺Wθ. The deterministic equivalent
of ridge (Hastie et al. 2022; Bach 2024) then gives the test error with κ solving
κ − λ' = (κ/n) tr Σ(Σ + κ)⁻¹:

    ε = σ² + [κ² b*ᵀΣ(Σ+κ)⁻²b* + σ² df₂/n] / (1 − df₂/n),   σ² = Δ + σ_u²,
    df₂ = tr Σ²(Σ+κ)⁻².
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.optimize import brentq

from twolayer.errors import ParameterError
from twolayer.onestep.theory import theory

__all__ = ["linear_rf_error", "rf_theory"]


def rf_theory(*args, **kwargs) -> xr.Dataset:
    """Random-features theory: :func:`twolayer.onestep.theory` at η̃ = 0 (α0 is then irrelevant).

    Takes the parameters of :func:`~twolayer.onestep.theory`; given an
    :class:`~twolayer.params.OnestepTheory`, the baseline of those parameters. An explicit
    ``eta`` other than 0 is refused (it would be ignored).
    """
    eta = kwargs.pop("eta", 0.0)
    if eta != 0:
        raise ParameterError(f"rf_theory is the eta = 0 baseline; got eta={eta!r} (use theory)")
    return theory(*args, **kwargs, eta=0.0)


def linear_rf_error(
    w: np.ndarray, theta: np.ndarray, alpha: float, lam: float, noise: float = 0.0
) -> float:
    """Deterministic-equivalent test MSE of linear random features (see module docstring).

    ``w`` is the p × d first layer, ``theta`` the unit teacher vector; n = round(α·d).
    """
    p, d = w.shape
    n = max(1, round(alpha * d))
    ev, u = np.linalg.eigh(w @ w.T)
    ev = np.clip(ev, 0.0, None)
    keep = ev > ev.max() * 1e-10
    proj = u.T @ (w @ theta)  # Σ-eigenbasis coordinates of Wθ
    bstar2 = np.where(keep, proj**2 / np.where(keep, ev, 1.0) ** 2, 0.0)  # (u_iᵀ b*)²
    explained = float(np.sum(np.where(keep, proj**2 / np.where(keep, ev, 1.0), 0.0)))
    sigma2 = noise + max(float(theta @ theta) - explained, 0.0)
    lam_eff = lam * p / n

    def fixed(k):
        return k - lam_eff - k / n * np.sum(ev / (ev + k))

    hi = lam_eff + ev.sum() / n + 1.0
    kap = brentq(fixed, 1e-14, hi, xtol=1e-15, rtol=1e-13)
    df2 = float(np.sum(ev**2 / (ev + kap) ** 2))
    bias = kap**2 * float(np.sum(ev * bstar2 / (ev + kap) ** 2))
    return sigma2 + (bias + sigma2 * df2 / n) / (1.0 - df2 / n)

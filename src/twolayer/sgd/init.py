"""Initial conditions shared by the simulation and the ODEs.

The teacher W* (k × d) and the student W0 (p × d) are drawn from ``default_rng([seed])``:
W* has i.i.d. N(0, 1) entries (so P = W*W*ᵀ/d ≈ I_k) and W0 i.i.d. N(0, init_scale²) entries
(Q ≈ init_scale²·I_p, M ~ init_scale/√d). With ``spherical`` every student row is rescaled to
norm √d (Q_jj = 1). The simulation's runs all start from these weights and differ only in the
data they see (run i draws its inputs from ``default_rng([seed, i])``), so the ODE started from
:func:`initial_overlaps` with the same (seed, d, init_scale) is directly comparable.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from twolayer.errors import ParameterError

__all__ = ["Overlaps", "factor_overlaps", "initial_overlaps", "initial_weights", "load_overlaps",
           "weights_with"]


def omega_of(Q: np.ndarray, M: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Covariance [[Q, M], [Mᵀ, P]] of (λ, ν); Q and M may carry leading batch axes."""
    P = np.broadcast_to(P, (*M.shape[:-2], *P.shape))
    top = np.concatenate([Q, M], axis=-1)
    return np.concatenate([top, np.concatenate([np.swapaxes(M, -1, -2), P], axis=-1)], axis=-2)


@dataclass(frozen=True)
class Overlaps:
    """Q = WWᵀ/d (p × p), M = WW*ᵀ/d (p × k), P = W*W*ᵀ/d (k × k)."""

    Q: np.ndarray
    M: np.ndarray
    P: np.ndarray

    def __post_init__(self) -> None:  # nested lists or integer arrays become float matrices
        for name in ("Q", "M", "P"):
            try:
                a = np.array(getattr(self, name), dtype=float)
            except (TypeError, ValueError):
                raise ParameterError(f"the overlap {name} must be a matrix of numbers") from None
            if a.ndim != 2:
                raise ParameterError(f"the overlap {name} must be a matrix; got shape {a.shape}")
            object.__setattr__(self, name, a)

    @property
    def p(self) -> int:
        return self.Q.shape[0]

    @property
    def k(self) -> int:
        return self.P.shape[0]

    def omega(self) -> np.ndarray:
        """Covariance of (λ, ν): [[Q, M], [Mᵀ, P]]."""
        return omega_of(self.Q, self.M, self.P)

    def check(self) -> Overlaps:
        """Raise ParameterError unless shapes agree, values are finite and Ω is PSD."""
        p, k = self.Q.shape[0], self.P.shape[0]
        if self.Q.shape != (p, p) or self.P.shape != (k, k) or self.M.shape != (p, k):
            raise ParameterError(
                f"overlap shapes do not match: Q {self.Q.shape}, M {self.M.shape}, "
                f"P {self.P.shape}; need Q (p, p), M (p, k), P (k, k)"
            )
        for name, a in (("Q", self.Q), ("M", self.M), ("P", self.P)):
            if not np.all(np.isfinite(a)):
                raise ParameterError(f"the overlap {name} has non-finite entries")
        for name, a in (("Q", self.Q), ("P", self.P)):
            if not np.allclose(a, a.T, rtol=1e-10, atol=1e-12):
                raise ParameterError(f"the overlap {name} must be symmetric")
        om = self.omega()
        lam = np.linalg.eigvalsh(om)
        if lam[0] < -1e-9 * max(1.0, lam[-1]):
            raise ParameterError(
                "[[Q, M], [Mᵀ, P]] must be positive semi-definite (it is a covariance); "
                f"its smallest eigenvalue is {lam[0]:.3g}"
            )
        if np.any(np.diag(self.Q) <= 0) or np.any(np.diag(self.P) <= 0):
            raise ParameterError("the diagonals of Q and P must be > 0")
        return self


def initial_weights(p: int, k: int, d: int, seed: int = 0, init_scale: float = 1.0,
                    spherical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(W0, W*) of shapes (p, d) and (k, d), float64, from ``default_rng([seed])``."""
    rng = np.random.default_rng([seed])
    teacher = rng.standard_normal((k, d))
    student = init_scale * rng.standard_normal((p, d))
    if spherical:
        student *= np.sqrt(d) / np.linalg.norm(student, axis=1, keepdims=True)
    return student, teacher


#: eigenvalues of Ω below this fraction of its largest count as zero when d < p + k
RANK_TOL = 1e-9


def factor_overlaps(overlaps: Overlaps, d: int, seed: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(W0, W*) in R^d with exactly these overlaps when Ω = [[Q, M], [Mᵀ, P]] has rank ≤ d.

    [W0; W*] = √d · V_d Λ_d^½ · O from the d largest eigenpairs of Ω (unique up to the rotation
    O: the identity, or Haar-random from ``default_rng([seed])``). ParameterError when an
    eigenvalue beyond the d-th exceeds RANK_TOL × the largest (the overlaps need more than d
    dimensions).
    """
    p, k = overlaps.p, overlaps.k
    lam, vec = np.linalg.eigh(overlaps.omega())
    top = max(float(lam[-1]), 1e-300)
    if lam.size > d and lam[-d - 1] > RANK_TOL * top:
        raise ParameterError(
            f"the overlaps have rank {int(np.sum(lam > RANK_TOL * top))} > d = {d}: they "
            f"cannot be realised in R^{d} (Ω's eigenvalue {d + 1} from the top is "
            f"{lam[-d - 1]:.3g}, the largest {top:.3g})")
    lam, vec = lam[-d:], vec[:, -d:]
    w = math.sqrt(d) * vec * np.sqrt(np.maximum(lam, 0.0))
    if w.shape[1] < d:
        w = np.hstack([w, np.zeros((p + k, d - w.shape[1]))])
    if seed is not None:
        q, r = np.linalg.qr(np.random.default_rng([seed]).standard_normal((d, d)))
        w = w @ (q * np.sign(np.diag(r)))
    return w[:p], w[p:]


def weights_with(overlaps: Overlaps, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(W0, W*) in R^d whose overlaps are exactly ``overlaps``.

    For d ≥ p + k: [W0; W*] = √d · R · U with R Rᵀ = Ω (symmetric square root) and U a random
    (p+k) × d matrix with orthonormal rows drawn from ``default_rng([seed])``. For d < p + k
    (e.g. d = 3): :func:`factor_overlaps`, which needs Ω of rank ≤ d.
    """
    p, k = overlaps.p, overlaps.k
    if d < p + k:
        return factor_overlaps(overlaps, d, seed)
    lam, vec = np.linalg.eigh(overlaps.omega())
    root = vec * np.sqrt(np.maximum(lam, 0.0))
    rng = np.random.default_rng([seed])
    frame, _ = np.linalg.qr(rng.standard_normal((d, p + k)))
    w = math.sqrt(d) * root @ frame.T
    return w[:p], w[p:]


def overlaps_of(student: np.ndarray, teacher: np.ndarray) -> Overlaps:
    """The overlaps of weight matrices (p, d) and (k, d)."""
    d = student.shape[-1]
    return Overlaps(student @ student.T / d, student @ teacher.T / d, teacher @ teacher.T / d)


def initial_overlaps(p: int, k: int, d: int, seed: int = 0, init_scale: float = 1.0,
                     spherical: bool = False) -> Overlaps:
    """The exact initial overlaps of :func:`initial_weights` (what the simulation starts from)."""
    return overlaps_of(*initial_weights(p, k, d, seed, init_scale, spherical))


def load_overlaps(path: str | os.PathLike) -> Overlaps:
    """Overlaps from a JSON file with keys ``Q``, ``M``, ``P`` (nested lists); checked."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except OSError as exc:
        raise ParameterError(f"cannot read the --init file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ParameterError(f"the --init file {str(path)!r} is not UTF-8 text (JSON)") from None
    except json.JSONDecodeError as exc:
        raise ParameterError(f"the --init file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict) or not {"Q", "M", "P"} <= raw.keys():
        raise ParameterError(f"the --init file {str(path)!r} needs the keys 'Q', 'M' and 'P'")
    mats = {}
    for key in ("Q", "M", "P"):
        try:
            a = np.array(raw[key], dtype=float)
        except (TypeError, ValueError):
            raise ParameterError(
                f"the {key!r} entry of the --init file must be a nested list of numbers"
            ) from None
        if a.ndim != 2:
            raise ParameterError(
                f"the {key!r} entry of the --init file must be a matrix (nested lists); "
                f"got shape {a.shape}"
            )
        mats[key] = a
    return Overlaps(mats["Q"], mats["M"], mats["P"]).check()

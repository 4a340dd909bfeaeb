"""The parameters of every model and method: one frozen object each.

Each class below is the single source of its parameters' names, defaults, bounds and one-line
docs. The library functions take their signatures from it (:func:`takes`), the command line
builds its options from it (``twolayer.cli``), experiment files are validated by it
(``twolayer.experiments.config``), the store key and every result's ``params`` attribute are its
JSON (:meth:`Params.to_json`).

>>> from twolayer.params import OnestepTheory
>>> prm = OnestepTheory(alpha0=1.0, alpha=[0.5, 1, 2])
>>> prm.eta, prm.replace(eta=0.0).eta
(1.0, 0.0)

Library calls and the command line validate leniently (``numpy`` scalars are numbers);
experiment files strictly (the TOML string ``"1"`` is not a number). Every mistake raises
:class:`~twolayer.errors.ParameterError` with one line naming the parameter.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import json
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from twolayer.errors import ParameterError

__all__ = ["METHODS", "ODE_SOLVERS", "REDUCTIONS", "SCHEDULES", "OnestepSimulate",
           "OnestepTheory", "Params", "SgdOde", "SgdSimulate", "spec", "takes"]

ODE_SOLVERS = ("auto", "BDF", "LSODA", "RK45", "DOP853", "Radau", "euler")
REDUCTIONS = ("auto", "full", "wide", "quadratic")
SCHEDULES = ("constant", "power", "steps")
MAX_GRID = 100_000  # values in one list parameter (alpha, lam)
FINITE_D_BELOW = 1000  # the wide reduction's finite-d term by default below this d


def _doc(text: str, **bounds) -> Any:
    """A field's default and bounds are given by the caller; this only adds the doc."""
    return Field(description=text, **bounds)


SPECS = ("linspace", "logspace", "range")


# --------------------------------------------------------------------------- value checks
def expand_spec(spec: dict) -> list:
    """``{linspace = [a, b, n]}``, ``{logspace = [a, b, n]}`` (10^a … 10^b) or
    ``{range = [start, stop, step]}`` (stop excluded) → the list of values."""
    import numpy as np

    if len(spec) != 1 or next(iter(spec)) not in SPECS:
        raise ValueError(f"a spec table needs exactly one of {', '.join(SPECS)}; got "
                         f"{{{', '.join(spec)}}}")
    kind, args = next(iter(spec.items()))
    ok = isinstance(args, list) and len(args) == 3 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a)
        for a in args)
    if not ok:
        raise ValueError(f"{kind} needs a list of three finite numbers; got {args!r}")
    a, b, n = args
    if kind in ("linspace", "logspace"):
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"the third entry of {kind} (the count) must be an integer >= 1; "
                             f"got {n!r}")
        if n > MAX_GRID:
            raise ValueError(f"{kind} asks for {n} values (at most {MAX_GRID})")
        vals = np.linspace(a, b, n) if kind == "linspace" else np.logspace(a, b, n)
        return [float(v) for v in vals]
    step = n
    if step == 0:
        raise ValueError("the step of range must not be 0")
    count = math.ceil((b - a) / step - 1e-9)
    if count < 1:
        raise ValueError(f"range {args!r} is empty")
    if count > MAX_GRID:
        raise ValueError(f"range {args!r} has {count} values (at most {MAX_GRID})")
    if all(isinstance(x, int) for x in args):
        return list(range(a, b, step))
    return [a + i * step for i in range(count)]


def _activation(v: Any) -> str:
    from twolayer import activations

    if not isinstance(v, str):
        raise ValueError(f"must be an activation name (a string); got {v!r}")
    return activations.get(v).name  # UnknownActivationError lists the known names


def grid(v: Any, *, positive: bool) -> list[float]:
    """A number, a non-empty sequence of numbers or a {linspace|logspace|range} table → floats."""
    if isinstance(v, Mapping):
        v = expand_spec(dict(v))
    if hasattr(v, "tolist"):  # numpy arrays and scalars
        v = v.tolist()
    vals = list(v) if isinstance(v, (list, tuple)) else [v]
    if not vals:
        raise ValueError("must hold at least one value")
    if len(vals) > MAX_GRID:
        raise ValueError(f"holds {len(vals)} values (at most {MAX_GRID})")
    out = []
    for x in vals:
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise ValueError(f"must be a number or a list of numbers; got {x!r}")
        if not math.isfinite(x):
            raise ValueError(f"values must be finite; got {x!r}")
        if (x <= 0) if positive else (x < 0):
            raise ValueError(f"values must be {'> 0' if positive else '>= 0'}; got {x!r}")
        out.append(float(x))
    return out


# --------------------------------------------------------------------------- the base class
class Params(BaseModel):
    """Base of the parameter objects: frozen, unknown names refused, finite numbers only."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              arbitrary_types_allowed=True)

    model: ClassVar[str]
    method: ClassVar[str]
    #: the library function that computes a result from these parameters ("module:function")
    function: ClassVar[str]
    #: parameters holding a list (an inner grid of one result): alpha, lam
    lists: ClassVar[tuple[str, ...]] = ()
    #: parameters taking one value or one value per giant step: alpha0, eta
    per_step: ClassVar[tuple[str, ...]] = ()
    #: variables every result of this method carries
    outputs: ClassVar[tuple[str, ...]] = ()

    @field_validator("student", "teacher", mode="before", check_fields=False)
    @classmethod
    def _known_activation(cls, v):
        return _activation(v)

    # ---- construction with one-line errors
    @classmethod
    def of(cls, values: Mapping[str, Any] | None = None, /, *, strict: bool = False,
           **kwargs: Any):
        """Validated parameters from a mapping and/or keywords; ParameterError on a mistake."""
        data = {**(values or {}), **kwargs}
        try:
            return cls.model_validate(data, strict=strict)
        except ValidationError as e:
            raise ParameterError(describe(e, cls)) from None

    def replace(self, **changes: Any):
        """A validated copy with some parameters changed (objects such as overlaps kept)."""
        return type(self).of({k: getattr(self, k) for k in type(self).model_fields}, **changes)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (lists, numbers, strings, None)."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): a result's ``params`` attribute, part of a store key."""
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every parameter's default, as plain values."""
        return cls().as_dict()

    @classmethod
    def doc(cls, name: str) -> str:
        """The one-line doc of a parameter."""
        return cls.model_fields[name].description or ""

    def memory_bytes(self) -> float:
        """Peak memory of the computation (its large arrays), estimated before it starts."""
        return 0.0

    def check_memory(self) -> None:
        """ResourceError (one line, what to lower) if :meth:`memory_bytes` cannot fit now."""
        from twolayer.resources import require

        require(self.memory_bytes(), f"{self.model} {self.method} with these parameters",
                self.memory_hint)

    #: what to lower when a computation does not fit in memory
    memory_hint: ClassVar[str] = ""

    def compute(self, **runtime: Any):
        """Run the library function of this model and method on these parameters."""
        import importlib

        module, name = self.function.split(":")
        return getattr(importlib.import_module(module), name)(self, **runtime)


_PHRASES = {  # pydantic error type → the package's phrase (as scikit-learn's validation)
    "greater_than": "must be > {gt:g}",
    "greater_than_equal": "must be >= {ge:g}",
    "finite_number": "must be finite",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a real number",
    "float_parsing": "must be a real number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "literal_error": "must be one of {expected}",
}


def describe(err: ValidationError, cls: type[Params]) -> str:
    """One line from pydantic's first error: "the 'alpha0' parameter must be >= 0; got -1"."""
    e = err.errors(include_url=False)[0]
    loc = [p for p in e["loc"] if isinstance(p, str) and p in cls.model_fields]
    if not e["loc"]:  # a check of several parameters together
        return e["msg"].removeprefix("Value error, ")
    name = loc[0] if loc else e["loc"][0]
    got = e.get("input")
    if e["type"] == "extra_forbidden":
        return (f"unknown parameter {name!r} for {cls.model} {cls.method}; known: "
                f"{', '.join(cls.model_fields)}")
    if e["type"] in _PHRASES:
        msg = _PHRASES[e["type"]].format(**e.get("ctx", {}))
    else:  # our validators' own words
        msg = e["msg"].removeprefix("Value error, ").removeprefix("values ")
    tail = "" if "got" in msg or isinstance(got, Mapping) else f"; got {got!r}"
    return f"the {name!r} parameter {msg}{tail}"


# --------------------------------------------------------------------------- one giant step
def width(beta: float, d: int) -> int:
    """The hidden width p = max(1, round(β·d)) of a width ratio β at dimension d."""
    return max(1, round(beta * d))


class _Onestep(Params):
    model: ClassVar[str] = "onestep"
    lists: ClassVar[tuple[str, ...]] = ("alpha", "lam")
    per_step: ClassVar[tuple[str, ...]] = ("alpha0", "eta", "eta_exponent")

    student: str = _doc("student activation σ (a registry name)", default="tanh")
    teacher: str = _doc("teacher activation σ⋆ (a registry name)", default="tanh")
    alpha0: Annotated[float, Field(ge=0)] | list[float] = _doc(
        "samples per dimension of the giant step, α0 = n0/d (a list: one per step, fresh "
        "samples each)", default=0.5)
    eta: Annotated[float, Field(ge=0)] | list[float] = _doc(
        "learning rate η̃ of the giant step (0: random features; a list: one per step)",
        default=1.0)
    lam: list[float] = _doc("ridge penalty λ of the readout (a list: one result per value)",
                            default=[0.01])
    alpha: list[float] = _doc("readout samples per dimension, α = n/d (a list)",
                              default=[0.2, 0.6, 1.0, 1.6, 2.0, 3.0])
    noise: float = _doc("label noise variance Δ", default=0.0, ge=0)
    beta: float = _doc("width ratio β = p/d", default=1.0, gt=0)
    seed: int = _doc("base random seed", default=0, ge=0)
    a_init: Literal["constant", "gaussian"] = _doc(
        "second layer during the step(s), f = (1/p) Σ_j a_j σ(w_j·x): constant a_j = 1 (Cui et "
        "al.) or a_j ~ N(0, 1) drawn per run (Ba et al., Moniri et al.); the readout is refit "
        "either way", default="constant")
    eta_exponent: Annotated[float, Field(ge=0, le=0.5)] | list[float] | None = _doc(
        "a learning rate growing with d (Moniri et al. 2023): η̃ = eta·d^(ζ − ½) with ζ this "
        "exponent in [0, ½] (their η ∝ n^ζ; a list: one per step); unset or ½: the giant "
        "step η̃ = eta", default=None)

    @field_validator("alpha", mode="before")
    @classmethod
    def _alpha(cls, v):
        return grid(v, positive=True)

    @field_validator("alpha0", "eta", "eta_exponent", mode="before")
    @classmethod
    def _per_step(cls, v, info):
        """A number (checked by its type), or one number per step (a one-element list is that
        number)."""
        if hasattr(v, "tolist"):
            v = v.tolist()
        if not isinstance(v, (list, tuple)):
            return v
        vals = grid(v, positive=False)
        if info.field_name == "eta_exponent" and any(x > 0.5 for x in vals):
            raise ValueError(f"values must be in [0, 0.5]; got {vals}")
        return vals[0] if len(vals) == 1 else vals

    @model_validator(mode="after")
    def _same_number_of_steps(self):
        named = {k: v for k, v in (("alpha0", self.alpha0), ("eta", self.eta),
                                   ("eta_exponent", self.eta_exponent)) if isinstance(v, list)}
        if len({len(v) for v in named.values()}) > 1:
            given = " and ".join(f"{k} {len(v)}" for k, v in named.items())
            raise ValueError(f"the per-step lists give different numbers of steps ({given}); "
                             "give lists of equal length (one entry per step) or a single value")
        return self

    @property
    def steps(self) -> list[tuple[float, float]]:
        """[(α0_t, η̃_t)] for each giant step t (a single value is repeated)."""
        as_list = [v if isinstance(v, list) else [v] * self.n_steps
                   for v in (self.alpha0, self.eta)]
        return list(zip(*as_list, strict=True))

    @property
    def n_steps(self) -> int:
        return max(len(v) if isinstance(v, list) else 1
                   for v in (self.alpha0, self.eta, self.eta_exponent))

    @property
    def exponents(self) -> list[float]:
        """ζ_t for each step (0.5 where unset: the giant step)."""
        z = self.eta_exponent
        return z if isinstance(z, list) else [0.5 if z is None else z] * self.n_steps

    @property
    def growing(self) -> bool:
        """Whether a step's learning rate grows slower than the giant step (ζ < ½)."""
        return any(z < 0.5 for z in self.exponents)

    def steps_at(self, d: int) -> list[tuple[float, float]]:
        """[(α0_t, η̃_t)] at dimension d: η̃_t = eta_t·d^(ζ_t − ½) (the giant step: eta_t)."""
        return [(a0, eta * d ** (z - 0.5) if z < 0.5 else eta)
                for (a0, eta), z in zip(self.steps, self.exponents, strict=True)]

    @field_validator("lam", mode="before")
    @classmethod
    def _lam(cls, v):
        return grid(v, positive=False)


class OnestepTheory(_Onestep):
    """Spiked random-features theory of the network after one or several giant steps
    (``twolayer onestep theory``); ``alpha0``/``eta`` lists follow the sRF parameters through
    the steps (:func:`twolayer.onestep.spectrum.step_maps`)."""

    method: ClassVar[str] = "theory"
    function: ClassVar[str] = "twolayer.onestep.theory:theory"
    outputs: ClassVar[tuple[str, ...]] = ("test_error", "train_error", "converged", "residual")

    d: int | Literal["inf"] = _doc("'inf' (Marchenko–Pastur bulk) or a finite dimension d",
                                   default="inf")
    draws: int = _doc("finite d: independent bulks averaged", default=1, ge=1)
    bulk: Literal["mp", "step"] = _doc(
        "d = inf bulk of W1: 'mp' the spiked surrogate's Marchenko–Pastur law (Cui et al.), "
        "'step' the deterministic equivalent of the steps' own bulk (constant a; closes the "
        "surrogate's gap at large eta²/alpha0)", default="mp")
    n_kappa: int = _doc("Gauss–Hermite nodes of the conditional channel", default=96, ge=4)
    n_spectrum: int = _doc("quadrature nodes of the Marchenko–Pastur bulk", default=200, ge=8)
    tol: float = _doc("tolerance of the fixed-point iteration", default=1e-10, gt=0)
    max_iter: int = _doc("iterations of the fixed point before it is reported unconverged",
                         default=5000, ge=1)

    @field_validator("d", mode="before")
    @classmethod
    def _d(cls, v):
        if v == math.inf or (isinstance(v, str) and v.strip().lower() in ("inf", "infinity")):
            return "inf"
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ValueError(f"must be an integer >= 1 or 'inf'; got {v!r}")
        if v < 1:
            raise ValueError(f"must be >= 1 (or 'inf'); got {v!r}")
        return int(v)

    memory_hint: ClassVar[str] = "use d = 'inf' (the Marchenko–Pastur bulk), a smaller d, or " \
        "fewer alpha and lam values"

    @property
    def d_inf(self) -> bool:
        return self.d == "inf"

    def memory_bytes(self) -> float:
        """The fixed point's (alpha, lam, node) arrays (~16 alive), and for a finite d one draw
        of W0 and W (p × d) with the p × p eigendecomposition of W Π Wᵀ."""
        nodes = self.n_spectrum if self.d_inf else self.width
        grid = len(self.alpha) * len(self.lam) * (nodes + self.n_kappa) * 16
        draw = 0 if self.d_inf else 2 * self.width * self.d + 5 * self.width**2
        return 8.0 * (grid + draw)

    @property
    def width(self) -> int:
        """p = max(1, round(β·d)) for a finite d."""
        return width(self.beta, self.d)


class OnestepSimulate(_Onestep):
    """The one-step network itself, over seeds (``twolayer onestep simulate``)."""

    method: ClassVar[str] = "simulate"
    function: ClassVar[str] = "twolayer.onestep.simulate:simulate"
    outputs: ClassVar[tuple[str, ...]] = ("test_error", "test_error_mean", "test_error_std")

    d: int = _doc("input dimension d", default=1000, ge=1)
    p: int | None = _doc("hidden width p (default: round(β·d))", default=None, ge=1)
    seeds: int = _doc("independent runs (run i draws from default_rng([seed, i]))", default=3,
                      ge=1)
    n_test: int = _doc("test samples per run", default=10000, ge=1)
    float32: bool = _doc("features in float32 (the ridge solves stay float64)", default=False)
    feature_spikes: int = _doc("analyse this many top singular pairs of the post-step feature "
                               "matrix (values, Hermite content in the step direction); 0: off",
                               default=0, ge=0)

    memory_hint: ClassVar[str] = ("lower d (or p), the largest alpha, alpha0, or the seeds (run "
                                  "them as a seed sweep)")

    @property
    def width(self) -> int:
        """p, or max(1, round(β·d)) when p is not given."""
        return self.p if self.p is not None else width(self.beta, self.d)

    def memory_bytes(self) -> float:
        """One run at a time: W0, W1, the gradient and two temporaries (p × d); the step's n0
        inputs and their preactivations; the n_max readout inputs and features; Gram and its
        eigenvectors, readouts, and 4096-sample test chunks; and every run's results (test and
        train error per (α, λ), the stacked copies and the per-step diagnostics)."""
        p, d = self.width, self.d
        n0 = max(round(a0 * d) for a0, _ in self.steps)
        n_max = max(1, round(max(self.alpha) * d))
        grid = len(self.alpha) * len(self.lam)
        per_run = 4 * grid + 8 + 4 * len(self.steps) ** 2 + 8 * self.feature_spikes
        spikes = n_max * (p + 8) if self.feature_spikes else 0  # F0, the Hermite vectors
        return 8.0 * (5 * p * d + n0 * (d + 4 * p) + n_max * (d + 2 * p + 1) + 2 * p * p + spikes
                      + 2 * grid * p + 4096 * (d + 2 * p + 2 * grid) + self.seeds * per_run)


# --------------------------------------------------------------------------- committee SGD
class _Sgd(Params):
    model: ClassVar[str] = "sgd"
    lists: ClassVar[tuple[str, ...]] = ("schedule_times", "schedule_factors")

    student: str = _doc("student activation σ (a registry name)", default="erf")
    teacher: str = _doc("teacher activation σ⋆ (a registry name)", default="erf")
    p: int = _doc("student width p", default=2, ge=1)
    k: int = _doc("teacher width k", default=2, ge=1)
    d: int = _doc("input dimension d (draws the initial weights)", default=1000, ge=1)
    gamma: float = _doc("SGD learning rate γ (the step is (γ/p)·gradient)", default=0.5, gt=0)
    noise: float = _doc("label noise variance Δ", default=0.0, ge=0)
    seed: int = _doc("seed of the initial weights (and base seed of the runs)", default=0,
                     ge=0)
    init_scale: float = _doc("std of the student's initial weights", default=1.0, gt=0)
    spherical: bool = _doc("keep every ‖w_j‖² = d (Q_jj = 1)", default=False)
    init: Any = _doc("start exactly at these overlaps: a JSON file with keys Q, M, P "
                     "(in Python also an Overlaps)", default=None)
    per_decade: int = _doc("recorded times per decade of t", default=20, ge=1)
    batch: int = _doc("mini-batch size b: fresh samples per step (the variance term is "
                      "(γ/(p·b))·E[e²σ'σ'])", default=1, ge=1)
    gamma_a: float = _doc("learning rate γ_a of the second layer a (a_j ← a_j − (γ_a/d)·"
                          "gradient, a_j(0) = 1); 0: a fixed", default=0.0, ge=0)
    weight_decay: float = _doc("weight decay ω of the first layer: w_j ← (1 − γω/(p·d)) w_j − "
                               "…", default=0.0, ge=0)
    schedule: Literal[SCHEDULES] = _doc(
        "learning-rate schedule γ(t) = γ·g(t) (γ_a follows it): constant g = 1, power "
        "g = (1 + t/t0)^(−β), steps g = f_i from t_i on", default="constant")
    schedule_t0: float = _doc("power schedule: time scale t0 (t counts steps: t = ν·γ/(p·d))",
                              default=1.0, gt=0)
    schedule_beta: float = _doc("power schedule: exponent β", default=0.5, ge=0)
    schedule_times: list[float] = _doc("steps schedule: increasing times t_i > 0 where g "
                                       "changes", default=[])
    schedule_factors: list[float] = _doc("steps schedule: the factors f_i > 0 of γ from t_i "
                                         "on", default=[])

    @field_validator("schedule_times", "schedule_factors", mode="before")
    @classmethod
    def _schedule_lists(cls, v):
        if isinstance(v, (list, tuple)) and not v:
            return []
        return grid(v, positive=True)

    @model_validator(mode="after")
    def _schedule_consistent(self):
        times, factors = self.schedule_times, self.schedule_factors
        if self.schedule != "steps" and (times or factors):
            raise ValueError("schedule_times and schedule_factors need schedule='steps'")
        if self.schedule != "power" and (self.schedule_t0, self.schedule_beta) != (1.0, 0.5):
            raise ValueError("schedule_t0 and schedule_beta need schedule='power'")
        if self.schedule == "steps":
            if not times or len(times) != len(factors):
                raise ValueError("schedule='steps' needs as many schedule_factors as "
                                 f"schedule_times (at least one); got {len(times)} times and "
                                 f"{len(factors)} factors")
            if any(b <= a for a, b in itertools.pairwise(times)):
                raise ValueError(f"schedule_times must increase strictly; got {times}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _sizes_from_init(cls, data):
        """Given overlaps (not a file), p and k default to theirs."""
        if isinstance(data, Mapping) and data.get("init") is not None:
            init = data["init"]
            M = init.get("M") if isinstance(init, Mapping) else getattr(init, "M", None)
            P = init.get("P") if isinstance(init, Mapping) else getattr(init, "P", None)
            if M is not None and P is not None:
                import numpy as np

                shape = np.shape(M)
                data = {"p": shape[0], "k": np.shape(P)[0], **data}
        return data

    @field_validator("init", mode="before")
    @classmethod
    def _init(cls, v):
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, Mapping):
            import numpy as np

            if {"Q", "M", "P"} <= set(v):
                from twolayer.sgd.init import Overlaps

                v = Overlaps(*(np.array(v[k], dtype=float) for k in ("Q", "M", "P")))
            elif {"M", "q", "P"} <= set(v):
                from twolayer.sgd.wide import Reduced

                v = Reduced(*(np.array(v[k], dtype=float) for k in ("M", "q", "P")))
        if all(hasattr(v, a) for a in ("Q", "M", "P", "check")):
            return v.check()
        if all(hasattr(v, a) for a in ("M", "q", "P")):
            return v
        raise ValueError("must be a path to a JSON file of Q, M, P, or overlaps (Overlaps, "
                         f"or Reduced for the wide reduction); got {type(v).__name__}")

    @model_validator(mode="after")
    def _init_matches(self):
        if self.init is not None and not isinstance(self.init, str):
            p, k = self.init.M.shape[0], self.init.P.shape[0]
            if (self.p, self.k) != (p, k):
                raise ValueError(f"the init overlaps are for p={p}, k={k}, not p={self.p}, "
                                 f"k={self.k}")
        return self

    @property
    def extended(self) -> bool:
        """Mini-batches, a trained second layer, weight decay or a schedule (not Model 2)."""
        return (self.batch > 1 or self.gamma_a > 0 or self.weight_decay > 0
                or self.schedule != "constant")

    def model_dump(self, **kw):  # overlaps as nested lists (a digest when large)
        out = super().model_dump(**{**kw, "exclude": {"init"}})
        out["init"] = _init_json(self.init)
        return out

    def overlaps(self, base_dir: str | None = None):
        """The ``init`` overlaps (loaded from the file when a path, sizes checked), or None."""
        if self.init is None or not isinstance(self.init, str):
            return self.init
        import os

        from twolayer.sgd.init import load_overlaps

        path = self.init if base_dir is None else os.path.join(base_dir, self.init)
        ov = load_overlaps(path)
        if (ov.p, ov.k) != (self.p, self.k):
            raise ParameterError(f"the init overlaps in {self.init!r} are for p={ov.p}, "
                                 f"k={ov.k}; the parameters say p={self.p}, k={self.k}")
        return ov


def _init_json(v) -> Any:
    """``init`` as JSON: a path, the matrices as nested lists, or a digest when they are large."""
    if v is None or isinstance(v, str):
        return v
    import hashlib

    names = [n for n in ("Q", "M", "q", "P") if hasattr(v, n)]
    arrays = {n: getattr(v, n) for n in names}
    if sum(a.size for a in arrays.values()) <= 20_000:
        return {n: a.tolist() for n, a in arrays.items()}
    h = hashlib.sha256(b"".join(a.astype(float).tobytes() for a in arrays.values()))
    return {"sha256": h.hexdigest(), **{f"{n}_shape": list(a.shape) for n, a in arrays.items()}}


class SgdOde(_Sgd):
    """The overlap ODEs of one-pass SGD (``twolayer sgd ode``)."""

    method: ClassVar[str] = "ode"
    function: ClassVar[str] = "twolayer.sgd.ode:ode"
    outputs: ClassVar[tuple[str, ...]] = ("risk",)

    t_max: float = _doc("final time t = ν·γ/(p·d)", default=100.0, gt=0)
    variance: bool = _doc("keep the (γ/p) SGD-variance term (off: gradient flow)",
                          default=True)
    reduction: Literal[REDUCTIONS] = _doc(
        "full ODE in (Q, M); wide: the large-width reduction in (M, q), cost ∝ p (d ≥ 100); "
        "quadratic: the exact closure in (m, S) for degree ≤ 2 activations, any d, cost "
        "independent of p (∝ d³); auto: full up to p = 64, quadratic above for degree ≤ 2 at "
        "d < 100, else wide for d ≥ 100", default="auto")
    solver: Literal[ODE_SOLVERS] = _doc(
        "auto, a scipy solve_ivp method, or euler (fixed step dt)", default="auto")
    dt: float = _doc("step of the euler solver", default=1e-3, gt=0)
    rtol: float | None = _doc("relative tolerance (default: 1e-8 for erf, 1e-6 otherwise; "
                              "1e-7 for the wide reduction)", default=None, gt=0)
    atol: float = _doc("absolute tolerance", default=1e-10, gt=0)
    n_nu: int | None = _doc("wide reduction: Gauss–Hermite nodes per ν-axis (default: a "
                            "trapezoid rule)", default=None, ge=2)
    n_z: int | None = _doc("wide reduction: Gauss–Hermite nodes of the z-moments where they "
                           "are not closed (closed: linear, square, relu, erf; default: a "
                           "trapezoid rule)", default=None, ge=2)
    finite_d: bool | None = _doc(
        "wide reduction: average over the off-diagonal orthogonal overlaps Q⊥_jl, random "
        "with variance q_j q_l/(d − k) as for weights drawn in d dimensions (to second order, "
        "O(1/(d − k)) in the risk and the flow); off: the d = ∞ form Q = M P⁻¹ Mᵀ + diag(q); "
        f"unset: on below d = {FINITE_D_BELOW}", default=None)
    variance_samples: int | None = _doc(
        "full ODE: the SGD-variance term E[e²σ'σ'] as a mean over this many fixed Gaussian "
        "samples of the fields (O(n p²) instead of O(p⁴); its relative standard error is "
        "reported); unset: exact", default=None, ge=100)

    @property
    def finite_d_on(self) -> bool:
        """Whether the wide reduction takes the finite-d term: ``finite_d``, or where unset
        d < FINITE_D_BELOW (above, the term is under 1e-3 of the risk, inside the reduction's
        own O(1/√d + 1/p) error, and it doubles the cost of an erf right-hand side)."""
        return self.d < FINITE_D_BELOW if self.finite_d is None else self.finite_d


class SgdSimulate(_Sgd):
    """One-pass SGD itself, all seeds stepped together (``twolayer sgd simulate``)."""

    method: ClassVar[str] = "simulate"
    function: ClassVar[str] = "twolayer.sgd.simulate:simulate"
    outputs: ClassVar[tuple[str, ...]] = ("risk", "risk_mean", "risk_std")

    t_max: float = _doc("final time t = ν·γ/(p·d)", default=10.0, gt=0)
    seeds: int = _doc("runs (same start, independent data)", default=4, ge=1)
    float32: bool = _doc("weights and inputs in float32", default=False)

    memory_hint: ClassVar[str] = "fewer seeds (run them as a seed sweep), or a smaller p or d"

    def memory_bytes(self) -> float:
        """All runs' weights (student, teacher and a float64 copy; with the extensions a
        gradient too), two 32 MiB blocks of inputs (the next is drawn while the last is alive),
        and the recorded M, Q (whole Q up to p = 64, its diagonal above) and a."""
        s, p, k, d = self.seeds, self.p, self.k, self.d
        n_t = self.per_decade * max(1.0, math.log10(self.t_max / min(0.01, self.t_max / 100)))
        q = p * p if p <= 64 else p
        grad = s * p * d if self.extended else 0  # the mini-batch gradient of every run
        return 8.0 * (s * d * (2 * p + k) + grad + 2 * (1 << 22)
                      + (n_t + 2) * s * (q + p * k + 2 * p + 1))


METHODS: dict[tuple[str, str], type[Params]] = {
    (c.model, c.method): c for c in (OnestepTheory, OnestepSimulate, SgdOde, SgdSimulate)}


def spec(model: str, method: str) -> type[Params]:
    """The parameter class of a model and method (ParameterError lists the known ones)."""
    try:
        return METHODS[(model, method)]
    except KeyError:
        known = ", ".join(f"{a} {b}" for a, b in METHODS)
        raise ParameterError(f"unknown model and method {model!r} {method!r}; known: {known}"
                             ) from None


# --------------------------------------------------------------------------- library signatures
def takes(cls: type[Params]) -> Callable[[Callable], Callable]:
    """Give ``impl(prm, **runtime)`` the public signature of ``cls``'s parameters.

    The decorated function accepts the parameters as keywords (student and teacher also
    positionally), or a ``cls`` instance as its first argument with keywords overriding it; the
    keyword-only arguments of ``impl`` after ``prm`` (callbacks, …) pass through unchanged.
    """

    def wrap(impl: Callable) -> Callable:
        own = list(inspect.signature(impl).parameters.values())[1:]
        runtime = {p.name for p in own}
        fields = []
        for i, (name, f) in enumerate(cls.model_fields.items()):
            kind = (inspect.Parameter.POSITIONAL_OR_KEYWORD if i < 2
                    else inspect.Parameter.KEYWORD_ONLY)
            fields.append(inspect.Parameter(name, kind, default=f.get_default(
                call_default_factory=True), annotation=f.annotation))

        @functools.wraps(impl)
        def api(*args, **kwargs):
            extra = {k: kwargs.pop(k) for k in list(kwargs) if k in runtime}
            if args and isinstance(args[0], cls):
                prm = args[0].replace(**kwargs) if kwargs else args[0]
                args = args[1:]
                if args:
                    raise TypeError(f"{impl.__name__}() takes one {cls.__name__} positionally")
            else:
                if len(args) > 2:
                    raise TypeError(f"{impl.__name__}() takes at most 2 positional arguments "
                                    "(student, teacher)")
                kwargs.update(zip(("student", "teacher"), args, strict=False))
                prm = cls.of(kwargs)
            prm.check_memory()
            return impl(prm, **extra)

        api.__signature__ = inspect.Signature(fields + own)
        lines = [f"    {n}: {cls.doc(n)} (default {f.default!r})"
                 for n, f in cls.model_fields.items()]
        api.__doc__ = (impl.__doc__ or "") + (
            f"\n\n    Parameters (:class:`twolayer.params.{cls.__name__}`)\n    ----------\n"
            + "\n".join(lines) + "\n")
        api.params = cls
        return api

    return wrap

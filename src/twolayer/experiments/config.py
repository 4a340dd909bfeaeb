"""Experiment files: a TOML document validated by pydantic models.

An experiment names a model and a method, the base parameters (the names of the command-line
options: ``alpha0``, ``t_max`` or ``t-max`` …), optional sweep axes and where to put the result::

    model = "onestep"                 # "onestep" or "sgd"
    method = "theory"                 # onestep: "theory" | "simulate"; sgd: "ode" | "simulate"
    output = "curves.nc"              # default: <file stem>.nc next to the file
    store = "twolayer-store"          # per-point cache folder, default next to the file
    activations = ["mypkg.acts"]      # modules that register activations (imported, by name)

    [params]                          # anything left out takes the command line's default
    alpha0 = 0.5
    alpha = {linspace = [0.2, 3, 15]} # list-valued parameters (alpha, lam) take a list or a spec

    [sweep]                           # one result per combination of these values
    mode = "product"                  # or "zip" (axes of equal length, taken together)
    eta = [0, 0.5, 1]
    lam = {logspace = [-3, -1, 3]}    # 10^-3 … 10^-1; also {linspace = [a, b, n]}
    seed = {range = [0, 4, 1]}        # 0, 1, 2, 3 (stop excluded, as Python's range)

Relative paths (``output``, ``store``, the ``init`` file of sgd) are taken from the folder of
the file. Every mistake raises :class:`~twolayer.errors.ConfigError` with one line naming the
file and the field (``params.alpha0``, ``sweep.eta[2]``) or the line of a TOML syntax error.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from twolayer.errors import ConfigError, ParameterError
from twolayer.params import METHODS, Params, expand_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["METHODS", "Experiment", "load_config", "parse_config"]

MAX_POINTS = 100_000
LIST_PARAMS = ("alpha", "lam")  # parameters that take a list (an inner grid of one point)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: Literal["onestep", "sgd"]
    method: str
    description: str = ""
    output: str | None = None
    store: str | None = None
    activations: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    sweep: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: base parameters, sweep axes (validated values), paths.

    ``points()`` gives every combination as (position in the sweep grid, parameters).
    """

    model: str
    method: str
    params: dict[str, Any]  # base parameters, every default filled in (validated)
    axes: dict[str, tuple]  # axis name → validated values, in file order
    mode: str  # "product" or "zip"
    output: Path
    store: Path
    base_dir: Path
    text: str = ""
    source: str = "<config>"
    description: str = ""
    raw_params: dict[str, Any] = field(default_factory=dict)
    activations: tuple[str, ...] = ()  # plugin modules imported before validation

    @property
    def param_model(self) -> type[Params]:
        return METHODS[(self.model, self.method)]

    @property
    def shape(self) -> tuple[int, ...]:
        if not self.axes:
            return ()
        if self.mode == "zip":
            return (len(next(iter(self.axes.values()))),)
        return tuple(len(v) for v in self.axes.values())

    def points(self) -> list[tuple[tuple[int, ...], dict[str, Any]]]:
        """[(index in the sweep grid, full validated parameters)] in C order."""
        names = list(self.axes)
        out = []
        if self.mode == "zip" and names:
            n = self.shape[0]
            combos = [((i,), [self.axes[a][i] for a in names]) for i in range(n)]
        else:
            ranges = [range(len(self.axes[a])) for a in names]
            combos = [(idx, [self.axes[a][i] for a, i in zip(names, idx, strict=True)])
                      for idx in itertools.product(*ranges)]
        for idx, vals in combos:
            prm = dict(self.params)
            for a, v in zip(names, vals, strict=True):
                prm[a] = [v] if a in LIST_PARAMS else v
            out.append((idx, prm))
        return out


# --------------------------------------------------------------------------- loading
def _loc(loc: tuple) -> str:
    s = ""
    for part in loc:
        s += f"[{part}]" if isinstance(part, int) else (f".{part}" if s else str(part))
    return s


def _message(err: ValidationError, prefix: str, known: list[str] | None = None,
             field: str | None = None) -> str:
    """One line from pydantic's first error: 'params.alpha0: input should be … (got …)'.

    ``field`` (a sweep axis) is left out of the location: ``sweep.eta[1]``, not ``….eta``.
    """
    e = err.errors(include_url=False)[0]
    loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and (  # not a union's branch
        "[" in p or "-" in p or p in ("int", "float", "str", "bool", "list"))))
    if field is not None and loc[:1] == (field,):
        loc = loc[1:]
    where = ".".join(filter(None, [prefix, _loc(loc)]))
    if e["type"] == "extra_forbidden":
        hint = f"; known: {', '.join(known)}" if known else ""
        return f"{where}: unknown name{hint}"
    if e["type"] == "missing":
        return f"{where}: required"
    msg = e["msg"].removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    got = e.get("input")
    show = "got" not in msg and not isinstance(got, dict) and repr(got) not in msg
    return f"{where}: {msg}" + (f" (got {got!r})" if show else "")


def _normalise_keys(table: dict, where: str, src: str) -> dict:
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for k, v in table.items():
        name = k.replace("-", "_")
        if name in out:
            raise ConfigError(f"{src}: {where}.{name}: given twice (as {spelled[name]!r} and "
                              f"{k!r})")
        out[name], spelled[name] = v, k
    return out


def _validate(cls: type[Params], values: dict, prefix: str, src: str,
              field: str | None = None) -> dict:
    try:
        return cls.model_validate(values, strict=True).model_dump(mode="json")
    except ValidationError as e:
        msg = _message(e, prefix, sorted(cls.model_fields), field)
        raise ConfigError(f"{src}: {msg}") from None


def _int_field(cls: type[Params], name: str) -> bool:
    ann = cls.model_fields[name].annotation
    return ann is int or ann == (int | None)


def _axis_values(cls, name: str, spec: Any, src: str) -> list:
    where = f"{src}: sweep.{name}"
    if isinstance(spec, dict):
        try:
            vals = expand_spec(spec)
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from None
    elif isinstance(spec, list):
        vals = spec
    else:
        raise ConfigError(f"{where}: expected a list of values or a table "
                          f"{{linspace|logspace|range = [a, b, n]}}; got {spec!r}")
    if not vals:
        raise ConfigError(f"{where}: the axis has no values")
    for i, v in enumerate(vals):
        if not isinstance(v, (int, float, str, bool)):
            raise ConfigError(f"{where}[{i}]: sweep values must be single numbers, strings or "
                              f"booleans; got {v!r}")
    if _int_field(cls, name):  # 400.0 from a linspace is the integer 400
        vals = [int(v) if isinstance(v, float) and v.is_integer() else v for v in vals]
    return vals


def parse_config(text: str, *, base_dir: str | os.PathLike = ".", source: str = "<config>",
                 default_stem: str = "experiment") -> Experiment:
    """Validate the TOML ``text`` of an experiment; raise ConfigError with one line."""
    src = source
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{src}: invalid TOML: {e}") from None
    try:
        top = _File.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{src}: {_message(e, '', sorted(_File.model_fields))}") from None
    methods = [m for (mod, m) in METHODS if mod == top.model]
    if top.method not in methods:
        raise ConfigError(f"{src}: method: {top.method!r} is not a method of model "
                          f"{top.model!r}; choose {' or '.join(repr(m) for m in methods)}")
    cls = METHODS[(top.model, top.method)]
    if top.activations:  # modules that register activations: imported before the parameters
        from twolayer.activations import load_modules

        try:
            load_modules(top.activations)
        except ParameterError as e:
            raise ConfigError(f"{src}: activations: {e}") from None
    base_dir = Path(base_dir).resolve()
    raw_params = _normalise_keys(top.params, "params", src)
    params = _validate(cls, raw_params, "params", src)

    sweep = _normalise_keys(top.sweep, "sweep", src)
    mode = sweep.pop("mode", "product")
    if mode not in ("product", "zip"):
        raise ConfigError(f"{src}: sweep.mode: must be 'product' or 'zip'; got {mode!r}")
    axes: dict[str, tuple] = {}
    for name, spec in sweep.items():
        if name not in cls.model_fields:
            raise ConfigError(f"{src}: sweep.{name}: unknown parameter for {top.model} "
                              f"{top.method}; known: {', '.join(sorted(cls.model_fields))}")
        vals = _axis_values(cls, name, spec, src)
        checked = []
        for i, v in enumerate(vals):
            one = _validate(cls, {**raw_params, name: v}, f"sweep.{name}[{i}]", src, name)
            checked.append(one[name][0] if name in LIST_PARAMS else one[name])
        if mode == "product" and len(set(checked)) != len(checked):
            raise ConfigError(f"{src}: sweep.{name}: repeated values {vals!r}")
        axes[name] = tuple(checked)
    if mode == "zip" and len({len(v) for v in axes.values()}) > 1:
        lens = ", ".join(f"{a}: {len(v)}" for a, v in axes.items())
        raise ConfigError(f"{src}: sweep: mode 'zip' needs axes of equal length; got {lens}")
    exp = Experiment(
        model=top.model, method=top.method, params=params, axes=axes, mode=mode,
        output=_path(top.output or f"{default_stem}.nc", base_dir),
        store=_path(top.store or "twolayer-store", base_dir), base_dir=base_dir,
        text=text, source=src, description=top.description, raw_params=raw_params,
        activations=tuple(top.activations),
    )
    n = math.prod(exp.shape)
    if n > MAX_POINTS:
        raise ConfigError(f"{src}: sweep: {n} points (at most {MAX_POINTS})")
    if exp.output.suffix != ".nc":
        raise ConfigError(f"{src}: output: must be a NetCDF file name ending in .nc; "
                          f"got {top.output!r}")
    _check_points(exp, src)
    return exp


def _path(p: str, base: Path) -> Path:
    q = Path(os.path.expanduser(p))
    return q if q.is_absolute() else base / q


def _check_points(exp: Experiment, src: str) -> None:
    """Checks that need a whole point: the seed axis vs runs, the sgd ``init`` file."""
    if "seed" in exp.axes and "seeds" in exp.param_model.model_fields:
        for _, prm in exp.points():
            if prm["seeds"] > 1:
                raise ConfigError(
                    f"{src}: sweep.seed: the result already has a 'seed' dimension with one "
                    f"entry per run (seeds = {prm['seeds']}); sweep seed with seeds = 1, or "
                    "raise seeds instead")
    if exp.model == "sgd":
        inits = {prm["init"] for _, prm in exp.points()} - {None}
        for path in inits:
            where = "sweep.init" if "init" in exp.axes else "params.init"
            try:
                ov = load_init(path, exp.base_dir)
            except ParameterError as e:
                raise ConfigError(f"{src}: {where}: {e}") from None
            for _, prm in exp.points():
                if prm["init"] == path and (prm["p"], prm["k"]) != (ov.p, ov.k):
                    raise ConfigError(
                        f"{src}: {where}: the overlaps in {path!r} are for p={ov.p}, k={ov.k}; "
                        f"the experiment asks p={prm['p']}, k={prm['k']}")


def load_init(path: str, base_dir: Path):
    """The sgd ``init`` overlaps (a JSON file of Q, M, P) relative to the config folder."""
    from twolayer.sgd.init import load_overlaps

    return load_overlaps(_path(path, base_dir)).check()


def load_config(path: str | os.PathLike) -> Experiment:
    """Read and validate an experiment file (ConfigError with one line on any mistake)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no such experiment file: {str(p)!r}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {str(p)!r}: {e}") from None
    return parse_config(text, base_dir=p.parent, source=str(p), default_stem=p.stem)

"""Registry of activation functions and their Gaussian facts.

Each :class:`Activation` carries the function, its first two derivatives, the points where it is
not smooth (for quadrature), and closed forms of the Gaussian quantities where they exist:

- Hermite coefficients ``mu(k) = E[σ(z) He_k(z)]`` (probabilists' Hermite polynomials, so that
  σ = Σ_k mu(k) He_k / k!); ``mu(1) = E σ'(z)`` and ``mu(2) = E σ''(z)`` by Stein's lemma;
- ``second_moment = E[σ(z)²]`` and ``deriv_second_moment = E[σ'(z)²]``,

with z ~ N(0, 1). Anything without a closed form falls back to quadrature
(:mod:`twolayer.gaussian`). ``erf`` is erf(x/√2), the normalisation of Saad & Solla.

A built-in entry also says which closed forms the rest of the package has for it, so that no
consumer looks an activation up by its name:

- ``closed_form``: the family of closed-form Gaussian integrals ("erf", "relu", "linear",
  "square"): the pair integrals and the erf ODE kernel of :mod:`twolayer.sgd.integrals`, the
  one-unit moments of :mod:`twolayer.sgd.wide`;
- ``degree``: the degree of a polynomial activation (linear, square, he1–he4), for which
  Gauss–Hermite rules are exact;
- ``kernel_id``: its code in the compiled SGD step (:mod:`twolayer.sgd._kernels`).

These are set only on the registry's own built-in objects (:attr:`Activation.builtin`): they
are not constructor arguments, and a ``dataclasses.replace`` copy or an activation registered
under a built-in's name (``register("tanh", f, overwrite=True)``) has none of them, so it gets
quadrature, not the built-in's closed forms.

Use :func:`get` to look an activation up by name (an unknown name raises
:class:`~twolayer.errors.UnknownActivationError` listing the known ones) and :func:`register` to
add a Python callable.

Plugins (no code is ever evaluated from text, only modules are imported by name):

- :func:`load_modules` imports modules that call :func:`register` when imported (the command
  line's ``--activations pkg.acts`` and an experiment file's ``activations = ["pkg.acts"]``);
- the entry-point group ``twolayer.activations`` (``importlib.metadata``): each entry point is
  a module, or a callable that registers activations when called with no arguments. The group is
  loaded once, lazily, the first time :func:`get` is asked for a name that is not registered.

Either way the registering module is remembered (:func:`source`): the experiment store keys a
point on it, a Dask worker imports it before computing, and results record it. A module that
cannot be imported, or a plugin that raises, is a :class:`~twolayer.errors.PluginError` of one
line naming it.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from twolayer import gaussian
from twolayer.errors import ParameterError, PluginError, UnknownActivationError

__all__ = ["ENTRY_POINT_GROUP", "Activation", "available", "get", "load_entry_points",
           "load_modules", "loaded_modules", "register", "source"]

Array = np.ndarray
Fn = Callable[[Array], Array]

_QUAD_NODES = 96


@cache
def _special():
    """scipy.special, imported on first use (~0.1 s; closed forms and NumPy σ need none of it)."""
    from scipy import special

    return special


@dataclass(frozen=True)
class Activation:
    """An activation σ with its derivatives and Gaussian facts (closed forms where known)."""

    name: str
    fn: Fn
    deriv: Fn
    deriv2: Fn | None = None
    kinks: tuple[float, ...] = ()
    hermite_closed: Mapping[int, float] = field(default_factory=dict)
    second_moment_closed: float | None = None
    deriv_second_moment_closed: float | None = None
    odd: bool = False
    even: bool = False
    # Closed-form facts of the built-ins (see the module docstring); never set on user entries.
    closed_form: str | None = field(default=None, init=False)
    degree: int | None = field(default=None, init=False)
    kernel_id: int | None = field(default=None, init=False)

    def __call__(self, x: Array) -> Array:
        return self.fn(x)

    def expect(self, g: Callable[[Array], Array], loc=0.0, scale=1.0, n: int = _QUAD_NODES):
        """E[g(z)] where g may involve σ(loc + scale·z); breaks at σ's kinks are handled.

        ``loc`` and ``scale`` (broadcastable arrays, scale > 0) locate the kinks in z-space;
        ``g`` receives z with a trailing quadrature axis (see :func:`twolayer.gaussian.expect`).
        """
        if not self.kinks:
            return gaussian.expect(g, n=n)
        loc, scale = np.broadcast_arrays(np.asarray(loc, float), np.asarray(scale, float))
        breaks = (np.asarray(self.kinks)[(None,) * loc.ndim] - loc[..., None]) / scale[..., None]
        return gaussian.expect(g, breaks=breaks, n=max(n // 2, 24))

    def mu_quad(self, k: int, n: int = _QUAD_NODES) -> float:
        """Hermite coefficient E[σ(z) He_k(z)] by quadrature."""
        he = _special().hermitenorm(k)
        return float(self.expect(lambda z: self.fn(z) * he(z), n=n))

    def mu(self, k: int) -> float:
        """Hermite coefficient μ_k = E[σ(z) He_k(z)] (closed form where known)."""
        if k < 0:
            raise ParameterError(f"Hermite index must be >= 0; got {k}")
        if k in self.hermite_closed:
            return float(self.hermite_closed[k])
        if (self.odd and k % 2 == 0) or (self.even and k % 2 == 1):
            return 0.0
        return self.mu_quad(k)

    @property
    def builtin(self) -> bool:
        """Whether this is the registry's own built-in entry (not a user's under its name)."""
        return _BUILTINS.get(self.name) is self

    @property
    def polynomial(self) -> bool:
        """A built-in polynomial activation (Gauss–Hermite rules are exact for it)."""
        return self.degree is not None

    @property
    def second_moment(self) -> float:
        """E[σ(z)²]."""
        if self.second_moment_closed is not None:
            return float(self.second_moment_closed)
        return float(self.expect(lambda z: self.fn(z) ** 2))

    @property
    def deriv_second_moment(self) -> float:
        """E[σ'(z)²]."""
        if self.deriv_second_moment_closed is not None:
            return float(self.deriv_second_moment_closed)
        return float(self.expect(lambda z: self.deriv(z) ** 2))


_REGISTRY: dict[str, Activation] = {}
_BUILTINS: dict[str, Activation] = {}  # the built-in objects, whatever the registry holds now
_SOURCES: dict[str, str] = {}  # name → the plugin (module, or entry point value) that registered it
_LOADING: list[str] = []  # the plugins being imported now (innermost last)
_LOADED: dict[str, None] = {}  # plugins imported so far, in order
_ENTRY_POINTS_LOADED = False
ENTRY_POINT_GROUP = "twolayer.activations"
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_TARGET = re.compile(_DOTTED.pattern + r"(:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?")


def register(
    name: str,
    fn: Fn | Activation,
    deriv: Fn | None = None,
    deriv2: Fn | None = None,
    *,
    kinks: tuple[float, ...] = (),
    overwrite: bool = False,
) -> Activation:
    """Register an activation under ``name`` (Python only; the CLI takes names).

    ``fn`` and ``deriv`` must be vectorised NumPy callables. Without ``deriv`` the derivative is
    taken by central differences (step 1e-5); without ``deriv2``, for a smooth function (no
    ``kinks``), σ'' too: the central difference of ``deriv`` (step 1e-4, ~1e-8 relative), or the
    second difference of ``fn`` when neither derivative is given. Gaussian facts are computed
    by quadrature: a function registered under a built-in's name (with ``overwrite=True``) gets
    none of the built-in's closed forms. Passing an :class:`Activation` registers that object
    as it is.
    """
    if not isinstance(name, str) or not name:
        raise ParameterError("activation name must be a non-empty string")
    if name in _REGISTRY and not overwrite:
        raise ParameterError(f"activation {name!r} is already registered; pass overwrite=True")
    if isinstance(fn, Activation):
        act = fn
    else:
        if not callable(fn):
            raise ParameterError(f"activation {name!r}: fn must be callable")
        if deriv2 is None and not kinks:
            deriv2 = _second_derivative(fn, deriv)
        if deriv is None:
            h = 1e-5

            def deriv(x, _f=fn):
                return (_f(x + h) - _f(x - h)) / (2 * h)

        act = Activation(name=name, fn=fn, deriv=deriv, deriv2=deriv2, kinks=tuple(kinks))
    _REGISTRY[name] = act
    if _LOADING:
        _SOURCES[name] = _LOADING[-1]
    else:
        _SOURCES.pop(name, None)
    return act


def _second_derivative(fn: Fn, deriv: Fn | None) -> Fn:
    """σ'' by central differences: of σ' when given (step 1e-4), else of σ (step 1e-4)."""
    h = 1e-4
    if deriv is not None:
        def deriv2(x, _d=deriv):
            return (_d(x + h) - _d(x - h)) / (2 * h)
    else:
        def deriv2(x, _f=fn):
            return (_f(x + h) - 2 * _f(x) + _f(x - h)) / (h * h)
    return deriv2


def available() -> list[str]:
    """Names of the registered activations, sorted."""
    return sorted(_REGISTRY)


def get(name: str | Activation) -> Activation:
    """The activation registered as ``name``; an Activation passes through.

    A name that is not registered loads the ``twolayer.activations`` entry points (once) and is
    looked up again; a plugin that fails to load raises PluginError.
    """
    if isinstance(name, Activation):
        return name
    if isinstance(name, str) and name not in _REGISTRY and not _ENTRY_POINTS_LOADED:
        load_entry_points()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownActivationError(
            f"unknown activation {name!r}; known: {', '.join(available())}"
        ) from None


def source(name: str) -> str | None:
    """The plugin that registered ``name`` (a module name, or an entry point's ``module:attr``
    value); None for a built-in or a function registered by the user's own code."""
    return _SOURCES.get(name)


def loaded_modules() -> list[str]:
    """The plugins imported so far (:func:`load_modules` and entry points), in order."""
    return list(_LOADED)


@contextlib.contextmanager
def _loading(target: str) -> Iterator[None]:
    _LOADING.append(target)
    try:
        yield
    finally:
        _LOADING.pop()


def _one_line(e: BaseException) -> str:
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _load(target: str, label: str) -> None:
    """Import ``target`` ("pkg.mod" or "pkg.mod:attr"); call ``attr`` when it is callable."""
    import importlib

    if target in _LOADED:
        return
    mod_name, _, attr = target.partition(":")
    with _loading(target):
        try:
            obj = importlib.import_module(mod_name)
            for part in filter(None, attr.split(".")):
                obj = getattr(obj, part)
            if attr and callable(obj):
                obj()
        except PluginError:
            raise
        except Exception as e:  # a broken plugin: its name and the first line of the error
            raise PluginError(f"{label} failed to load: {_one_line(e)}") from None
    _LOADED[target] = None


def load_modules(modules: Iterable[str]) -> list[str]:
    """Import activation modules by name (each registers activations when imported).

    Each entry is a dotted module name (``pkg.acts``), or ``pkg.acts:setup`` to call
    ``setup()`` after the import (the form of an entry point's value; how workers reload the
    plugins recorded by :func:`source`). A plugin already loaded is not imported again.
    Returns the names. Raises ParameterError for anything that is not such a name (nothing is
    evaluated) and PluginError (one line, naming the module) when the import fails.
    """
    names = list(modules)
    for m in names:
        if not isinstance(m, str) or not _TARGET.fullmatch(m):
            raise ParameterError(f"activation module {m!r} is not a dotted module name "
                                 "(e.g. mypkg.activations)")
    for m in names:
        _load(m, f"activation module {m!r}")
    return names


def load_entry_points() -> list[str]:
    """Load every entry point of the group ``twolayer.activations`` (once per process).

    Returns their values (``module`` or ``module:attr``); PluginError names a broken one.
    """
    global _ENTRY_POINTS_LOADED
    from importlib.metadata import entry_points

    _ENTRY_POINTS_LOADED = True
    done = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if not _TARGET.fullmatch(ep.value.replace(" ", "")):  # "module" or "module:attr"
            raise PluginError(f"activation plugin {ep.name!r} has an invalid entry point "
                              f"value {ep.value!r}")
        value = ep.value.replace(" ", "")
        _load(value, f"activation plugin {ep.name!r} ({value})")
        done.append(ep.value)
    return done


# --------------------------------------------------------------------------- built-ins
_SQ2 = math.sqrt(2.0)
_SQ2PI = math.sqrt(2.0 * math.pi)
_E_HALF = math.exp(-0.5)


def _sigmoid(x):
    return _special().expit(x)


def _builtin(act: Activation, *, closed_form: str | None = None, degree: int | None = None,
             kernel_id: int | None = None) -> Activation:
    """Register ``act`` as a built-in carrying these closed-form facts (see the module doc)."""
    for attr, value in (("closed_form", closed_form), ("degree", degree),
                        ("kernel_id", kernel_id)):
        object.__setattr__(act, attr, value)
    _BUILTINS[act.name] = act
    return register(act.name, act)


def _add_builtins() -> None:
    # kernel_id: the activation's branch in twolayer.sgd._kernels._act/_dact
    _builtin(Activation(
        "linear", lambda x: np.asarray(x, float), lambda x: np.ones_like(x, dtype=float),
        lambda x: np.zeros_like(x, dtype=float),
        hermite_closed={0: 0.0, 1: 1.0, 2: 0.0, 3: 0.0, 4: 0.0},
        second_moment_closed=1.0, deriv_second_moment_closed=1.0, odd=True,
    ), closed_form="linear", degree=1, kernel_id=2)
    _builtin(Activation(
        "tanh", np.tanh, lambda x: 1.0 - np.tanh(x) ** 2,
        lambda x: -2.0 * np.tanh(x) * (1.0 - np.tanh(x) ** 2), odd=True,
    ), kernel_id=4)
    _builtin(Activation(
        "erf", lambda x: _special().erf(x / _SQ2),
        lambda x: math.sqrt(2.0 / math.pi) * np.exp(-0.5 * x * x),
        lambda x: -x * math.sqrt(2.0 / math.pi) * np.exp(-0.5 * x * x),
        hermite_closed={0: 0.0, 1: 1 / math.sqrt(math.pi), 2: 0.0,
                        3: -0.5 / math.sqrt(math.pi), 4: 0.0},
        second_moment_closed=1.0 / 3.0,
        deriv_second_moment_closed=2.0 / (math.pi * math.sqrt(3.0)), odd=True,
    ), closed_form="erf", kernel_id=0)
    _builtin(Activation(
        "relu", lambda x: np.maximum(x, 0.0), lambda x: (np.asarray(x) > 0).astype(float),
        lambda x: np.zeros_like(x, dtype=float), kinks=(0.0,),
        hermite_closed={0: 1 / _SQ2PI, 1: 0.5, 2: 1 / _SQ2PI, 3: 0.0, 4: -1 / _SQ2PI},
        second_moment_closed=0.5, deriv_second_moment_closed=0.5,
    ), closed_form="relu", kernel_id=1)
    _builtin(Activation(
        "square", lambda x: np.asarray(x, float) ** 2, lambda x: 2.0 * np.asarray(x, float),
        lambda x: np.full_like(x, 2.0, dtype=float),
        hermite_closed={0: 1.0, 1: 0.0, 2: 2.0, 3: 0.0, 4: 0.0},
        second_moment_closed=3.0, deriv_second_moment_closed=4.0, even=True,
    ), closed_form="square", degree=2, kernel_id=3)
    _builtin(Activation(
        "sin", np.sin, np.cos, lambda x: -np.sin(x),
        hermite_closed={0: 0.0, 1: _E_HALF, 2: 0.0, 3: -_E_HALF, 4: 0.0},
        second_moment_closed=(1 - math.exp(-2.0)) / 2,
        deriv_second_moment_closed=(1 + math.exp(-2.0)) / 2, odd=True,
    ))
    _builtin(Activation(
        "sigmoid", _sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
        lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x)),
        hermite_closed={0: 0.5},
    ))
    _builtin(Activation(
        "softplus", lambda x: np.logaddexp(0.0, x), _sigmoid,
        lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
    ))
    # Hermite polynomials He_1..He_4: μ_j = k! δ_jk, E He_k² = k!, He_k' = k He_{k-1}.
    polys = {
        1: (lambda x: np.asarray(x, float), lambda x: np.ones_like(x, dtype=float),
            lambda x: np.zeros_like(x, dtype=float)),
        2: (lambda x: x**2 - 1.0, lambda x: 2.0 * x, lambda x: np.full_like(x, 2.0, dtype=float)),
        3: (lambda x: x**3 - 3.0 * x, lambda x: 3.0 * x**2 - 3.0, lambda x: 6.0 * x),
        4: (lambda x: x**4 - 6.0 * x**2 + 3.0, lambda x: 4.0 * x**3 - 12.0 * x,
            lambda x: 12.0 * x**2 - 12.0),
    }
    for k, (f, df, d2f) in polys.items():
        _builtin(Activation(
            f"he{k}", f, df, d2f,
            hermite_closed={j: (math.factorial(k) if j == k else 0.0) for j in range(5)},
            second_moment_closed=float(math.factorial(k)),
            deriv_second_moment_closed=float(k * k * math.factorial(k - 1)),
            odd=k % 2 == 1, even=k % 2 == 0,
        ), degree=k)


_add_builtins()

"""Keep xarray from importing dask for results that hold NumPy arrays only.

When dask is installed, xarray imports ``dask.array`` and ``dask.base`` the first time it builds
a variable from a NumPy array, only to ask whether the data is a dask array or collection:
0.15–0.3 s, more than the whole integration of a small ODE. :func:`install` answers those two
questions exactly without the imports:

- no object can be a dask array before ``dask.array`` has been imported, so xarray's registry
  of duck-array modules gets a record for dask whose array type is ``()`` while ``dask.array``
  is not in ``sys.modules``; once it is (the user works with dask), or once anything else is
  asked of the record (its version, its module), xarray's own record is made and replaces it;
- dask's ``is_dask_collection(x)`` is False for an ``x`` without ``__dask_graph__``, so
  xarray's ``is_dask_collection`` says so before importing ``dask.base``.

If xarray's internals are not what this expects, nothing is changed.
"""

from __future__ import annotations

import functools
import sys

__all__ = ["install"]


class _LazyDaskRecord:
    """Stands for ``xarray.namedarray.pycompat.DuckArrayModule("dask")`` until it is needed."""

    def __init__(self, registry: dict, make) -> None:
        self._registry, self._make = registry, make

    def _real(self):
        real = self._make("dask")  # imports dask and dask.array
        if self._registry.get("dask") is self:
            self._registry["dask"] = real
        return real

    @property
    def type(self) -> tuple[type, ...]:
        if "dask.array" not in sys.modules:
            return ()  # exact: no dask array can exist yet
        return self._real().type

    def __getattr__(self, name: str):  # module, version, available, …
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._real(), name)


def _without_dask_graph(original):
    @functools.wraps(original)
    def is_dask_collection(x) -> bool:
        if not hasattr(x, "__dask_graph__"):  # dask's own answer, without importing dask
            return False
        return original(x)

    is_dask_collection.twolayer_lazy = True
    return is_dask_collection


def install() -> None:
    """Install both shortcuts in xarray (idempotent; a no-op on unexpected xarray)."""
    try:
        from xarray.namedarray import pycompat, utils
    except ImportError:
        return
    registry = getattr(pycompat, "_cached_duck_array_modules", None)
    make = getattr(pycompat, "DuckArrayModule", None)
    if isinstance(registry, dict) and make is not None and "dask" not in registry:
        registry["dask"] = _LazyDaskRecord(registry, make)
    original = getattr(utils, "is_dask_collection", None)
    if callable(original) and not getattr(original, "twolayer_lazy", False):
        utils.is_dask_collection = _without_dask_graph(original)

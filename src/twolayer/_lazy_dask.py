"""Keep xarray from importing ``dask.array`` for results that hold NumPy arrays only.

When dask is installed, xarray imports ``dask.array`` the first time it builds a variable from
a NumPy array, only to ask whether the data is a dask array: 0.1–0.2 s, more than the whole
integration of a small ODE. No object can be a dask array before ``dask.array`` has been
imported, so :func:`install` puts in xarray's registry of duck-array modules a record for dask
whose array type is ``()`` while ``dask.array`` is not in ``sys.modules``; once it is (the user
works with dask), or once anything else is asked of the record (its version, its module), the
record is xarray's own, made then, and replaces this one. If xarray's registry is not what
this expects, or dask was already looked up, nothing is changed.
"""

from __future__ import annotations

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


def install() -> None:
    """Register the lazy dask record with xarray (idempotent; a no-op on unexpected xarray)."""
    try:
        from xarray.namedarray import pycompat
    except ImportError:
        return
    registry = getattr(pycompat, "_cached_duck_array_modules", None)
    make = getattr(pycompat, "DuckArrayModule", None)
    if isinstance(registry, dict) and make is not None and "dask" not in registry:
        registry["dask"] = _LazyDaskRecord(registry, make)

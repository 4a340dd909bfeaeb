"""A command imports only what it uses (fresh interpreters: sys.modules after the import)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import twolayer

SRC = str(Path(twolayer.__file__).resolve().parents[1])
HEAVY = ["scipy", "xarray", "pandas", "numba", "dask"]
SGD_REST = ["twolayer.sgd.smooth", "twolayer.sgd.orthant", "twolayer.sgd.wide",
            "twolayer.sgd.simulate"]


def _loaded_after(code: str, names: list[str]) -> list[str]:
    """The modules among ``names`` that a fresh interpreter has loaded after running ``code``."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([n for n in {names!r} if n in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_sgd_loads_no_scipy_xarray_numba_or_submodules():
    modules = [*HEAVY, "twolayer.sgd.ode", "twolayer.sgd.integrals", "twolayer.sgd._kernels",
               "twolayer.activations", *SGD_REST]
    assert _loaded_after("import twolayer.sgd", modules) == []


def test_import_activations_loads_no_scipy():
    assert _loaded_after("import twolayer.activations", HEAVY) == []


def test_erf_ode_loads_only_its_own_modules():
    code = ("from twolayer.sgd import ode\n"
            "ode('erf', 'erf', p=3, k=2, d=10, gamma=0.05, noise=0.001, t_max=1.0)")
    assert _loaded_after(code, ["twolayer.sgd._kernels", *SGD_REST]) == ["twolayer.sgd._kernels"]


@pytest.mark.parametrize("first", ["ode_wide", "simulate", "ode"])
def test_public_names_are_the_functions_whatever_is_imported_first(first):
    """Importing the submodule twolayer.sgd.ode (as wide.py does) must not replace the function
    twolayer.sgd.ode by its module."""
    code = (f"from twolayer.sgd import {first}\n"
            "import types, twolayer.sgd as sgd\n"
            "from twolayer.sgd import ode, simulate, ode_wide, engine, time_grid\n"
            "from twolayer.sgd import Overlaps, initial_overlaps, load_overlaps\n"
            "names = ['ode', 'simulate', 'ode_wide', 'engine', 'time_grid', 'initial_overlaps',\n"
            "         'load_overlaps']\n"
            "assert all(callable(getattr(sgd, n)) and not isinstance(getattr(sgd, n),\n"
            "           types.ModuleType) for n in names), names\n"
            "assert sgd.ode is ode and sgd.simulate is simulate and isinstance(Overlaps, type)\n"
            "assert sys.modules['twolayer.sgd.ode'].ode is ode\n")
    assert _loaded_after("import sys\n" + code, []) == []


def test_a_numpy_result_does_not_import_dask():
    pytest.importorskip("dask.array")
    code = ("from twolayer.sgd import ode\n"
            "ode('erf', 'erf', p=3, k=2, d=10, gamma=0.05, noise=0.001, t_max=1.0)")
    assert _loaded_after(code, ["dask", "dask.base", "dask.array"]) == []


def test_xarray_still_knows_dask_arrays_after_twolayer_io():
    pytest.importorskip("dask.array")
    code = ("import twolayer.io, xarray as xr, numpy as np\n"
            "xr.Dataset({'b': ('y', np.ones(3))})\n"  # the lazy record answers: no dask yet
            "import dask.array as da\n"
            "ds = xr.Dataset({'a': ('x', da.ones(4, chunks=2))})\n"
            "assert isinstance(ds.a.data, da.Array) and dict(ds.chunks) == {'x': (2, 2)}\n"
            "assert float(ds.a.sum().compute()) == 4.0 and ds.a.chunks == ((2, 2),)\n"
            "from xarray.namedarray.utils import is_dask_collection, is_duck_dask_array\n"
            "assert is_dask_collection(ds.a.data) and is_duck_dask_array(ds.a.data)\n"
            "assert is_dask_collection(ds.chunk()) and not is_dask_collection(np.ones(2))\n"
            "import dask\n"
            "from xarray.namedarray.pycompat import mod_version\n"
            "assert str(mod_version('dask')) == dask.__version__")
    assert _loaded_after(code, []) == []

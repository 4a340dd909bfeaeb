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
SGD_REST = ["twolayer.sgd.smooth", "twolayer.sgd.orthant", "twolayer.sgd.wide"]


def _loaded_after(code: str, names: list[str]) -> list[str]:
    """The modules among ``names`` that a fresh interpreter has loaded after running ``code``."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([n for n in {names!r} if n in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_command_line_loads_no_numerics_until_a_command_runs():
    assert _loaded_after("import twolayer.cli", [*HEAVY, "twolayer.sgd", "twolayer.onestep",
                                                 "matplotlib"]) == []


def test_import_activations_loads_no_scipy():
    assert _loaded_after("import twolayer.activations", HEAVY) == []


def test_erf_ode_loads_only_its_own_modules():
    code = ("from twolayer.sgd import ode\n"
            "ode('erf', 'erf', p=3, k=2, d=10, gamma=0.05, noise=0.001, t_max=1.0)")
    assert _loaded_after(code, ["twolayer.sgd._kernels", *SGD_REST]) == ["twolayer.sgd._kernels"]


@pytest.mark.parametrize("first", ["twolayer.sgd.wide", "twolayer.sgd.simulate",
                                   "twolayer.sgd.ode"])
def test_public_names_are_the_functions_whatever_is_imported_first(first):
    """Importing a submodule (twolayer.sgd.ode, as wide.py does) must not replace the function
    twolayer.sgd.ode by its module."""
    code = (f"import {first}\n"
            "import types, twolayer.sgd as sgd\n"
            "from twolayer.sgd import ode, simulate, engine, time_grid\n"
            "names = ['ode', 'simulate', 'engine', 'time_grid', 'initial_overlaps',\n"
            "         'load_overlaps']\n"
            "assert all(callable(getattr(sgd, n)) and not isinstance(getattr(sgd, n),\n"
            "           types.ModuleType) for n in names), names\n"
            "assert sgd.ode is ode and sgd.simulate is simulate\n")
    assert _loaded_after(code, []) == []

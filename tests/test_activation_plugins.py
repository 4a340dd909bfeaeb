"""Activations from plugin modules: `--activations`, an experiment's `activations`, entry points.

The reference is the built-in: a plugin registers tanh under a new name, and every number must
equal the built-in `tanh` computed the same way (both go through quadrature: no closed form).
"""

import json
import textwrap

import numpy as np
import pytest

from tests.helpers import run, write
from twolayer import activations
from twolayer.errors import PluginError
from twolayer.experiments import Store, expand, load_config, run_experiment
from twolayer.io import load_netcdf

TANH_MODULE = """
import numpy as np
from twolayer import activations

activations.register("{name}", np.tanh, lambda x: 1 - np.tanh(x) ** 2,
                     lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2))
"""
THEORY = ["onestep", "theory", "--teacher", "tanh", "--alpha0", "0.5", "--eta", "1",
          "--alpha", "0.5,1.5", "--json"]


def plugin(folder, monkeypatch, module: str, name: str) -> str:
    """A module ``module`` in ``folder`` (put on sys.path) that registers tanh as ``name``."""
    (folder / f"{module}.py").write_text(TANH_MODULE.format(name=name))
    monkeypatch.syspath_prepend(str(folder))
    return module


def test_cli_activation_module_gives_the_builtin_numbers(tmp_path, capsys, monkeypatch):
    mod = plugin(tmp_path, monkeypatch, "plug_cli_acts", "plugtanh_cli")
    out = tmp_path / "r.nc"
    code, stdout, err = run(capsys, ["--activations", mod, *THEORY, "--student", "plugtanh_cli",
                                     "--out", str(out)])
    assert code == 0, err
    got = json.loads(stdout)
    code, stdout, _ = run(capsys, [*THEORY, "--student", "tanh"])
    ref = json.loads(stdout)
    assert code == 0
    assert got["params"]["student"] == "plugtanh_cli"
    np.testing.assert_allclose(got["test_error"], ref["test_error"], rtol=1e-12)
    assert 0.1 < ref["test_error"][1] < ref["test_error"][0] < 1  # a real learning curve
    # the result says which module defined the student
    assert json.loads(load_netcdf(out).attrs["activation_modules"]) == {"student": mod}
    assert activations.source("plugtanh_cli") == mod
    assert activations.source("tanh") is None


@pytest.mark.parametrize(("value", "says"), [
    ("os;print(1)", "is not a dotted module name"),
    ("__import__('os')", "is not a dotted module name"),
    ("a,,b", "expected MODULE[,MODULE]"),
    ("no_such_module_xyz", "'no_such_module_xyz' failed to load: ModuleNotFoundError"),
])
def test_bad_activation_modules_are_one_line_and_exit_2(value, says, capsys):
    code, stdout, err = run(capsys, ["--activations", value, "onestep", "theory"])
    assert code == 2 and stdout == ""
    assert says in err and err.count("\n") == 1 and err.startswith("twolayer: error: ")


def test_a_module_that_raises_is_named(tmp_path, capsys, monkeypatch):
    (tmp_path / "plug_broken_acts.py").write_text("raise RuntimeError('half written\\nline 2')")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run(capsys, ["--activations", "plug_broken_acts", "onestep", "theory"])
    assert code == 2
    assert err == ("twolayer: error: --activations: activation module 'plug_broken_acts' "
                   "failed to load: RuntimeError: half written\n")


EXPERIMENT = """
model = "onestep"
method = "theory"
{acts}
[params]
student = "{student}"
alpha0 = 0.5
eta = 1.0
alpha = [0.5, 1.5]
[sweep]
lam = [0.01, 0.1]
"""


@pytest.mark.parametrize("workers", [0, 1])
def test_experiment_file_imports_its_activation_modules(tmp_path, monkeypatch, workers):
    name = f"plugtanh_toml{workers}"
    mod = plugin(tmp_path, monkeypatch, f"plug_toml_acts{workers}", name)
    cfg = write(tmp_path, EXPERIMENT.format(acts=f'activations = ["{mod}"]', student=name))
    ref_cfg = write(tmp_path, EXPERIMENT.format(acts="", student="tanh"), "ref.toml")
    exp = load_config(cfg)
    assert exp.activations == (mod,)
    # workers=1: a Dask worker process, which has to import the module itself
    ds, info = run_experiment(exp, workers=workers)
    ref, _ = run_experiment(load_config(ref_cfg), workers=0)
    assert info["computed"] == 2 and ds.attrs["status"] == "ok"
    np.testing.assert_allclose(ds["test_error"].values, ref["test_error"].values, rtol=1e-10)
    assert json.loads(ds.attrs["activation_modules"]) == [mod]
    # the store key records the module that defined the activation
    pt = expand(exp)[0]
    assert pt.payload["activations"]["student"]["plugin"] == mod
    assert expand(load_config(ref_cfg))[0].payload["activations"]["student"]["plugin"] is None
    assert Store(exp.store).has(pt.key, pt.payload)


def test_experiment_file_with_a_bad_module_is_a_config_error(tmp_path, capsys):
    cfg = write(tmp_path, EXPERIMENT.format(acts='activations = ["no_such_mod_q"]',
                                            student="tanh"))
    code, _, err = run(capsys, ["run", str(cfg), "--workers", "0"])
    assert code == 2
    assert "activations: activation module 'no_such_mod_q' failed to load" in err
    cfg = write(tmp_path, EXPERIMENT.format(acts='activations = ["x y"]', student="tanh"))
    code, _, err = run(capsys, ["run", str(cfg), "--workers", "0"])
    assert code == 2 and "is not a dotted module name" in err


def dist(folder, name: str, entry_points: str) -> None:
    """An installed distribution ``name`` in ``folder``: a dist-info with entry_points.txt."""
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_entry_point_plugins_load_lazily_on_an_unknown_name(tmp_path, monkeypatch, capsys):
    (tmp_path / "plug_ep_mod.py").write_text(
        "def setup():\n" + textwrap.indent(TANH_MODULE.format(name="eptanh"), "    "))
    dist(tmp_path, "twolayer_plug_ep", """
        [twolayer.activations]
        tanh-copy = plug_ep_mod:setup
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(activations, "_ENTRY_POINTS_LOADED", False)
    activations.get("tanh")  # a known name does not load plugins
    assert "plug_ep_mod:setup" not in activations.loaded_modules()
    code, stdout, err = run(capsys, [*THEORY, "--student", "eptanh"])
    assert code == 0, err
    code, ref, _ = run(capsys, [*THEORY, "--student", "tanh"])
    np.testing.assert_allclose(json.loads(stdout)["test_error"], json.loads(ref)["test_error"],
                               rtol=1e-12)
    assert activations.source("eptanh") == "plug_ep_mod:setup"


def test_a_broken_entry_point_plugin_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "plug_ep_bad.py").write_text("import numpy\nnumpy.this_does_not_exist\n")
    dist(tmp_path, "twolayer_plug_bad", """
        [twolayer.activations]
        broken = plug_ep_bad
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(activations, "_ENTRY_POINTS_LOADED", False)
    with pytest.raises(PluginError, match=r"activation plugin 'broken' \(plug_ep_bad\) failed "
                       "to load: AttributeError"):
        activations.get("not_registered_anywhere")
    monkeypatch.setattr(activations, "_ENTRY_POINTS_LOADED", False)
    code, stdout, err = run(capsys, [*THEORY, "--student", "not_registered_anywhere"])
    assert code == 2 and stdout == ""
    assert "activation plugin 'broken' (plug_ep_bad) failed to load" in err
    assert err.count("\n") == 1

"""Experiment files: validation errors (exit 2, one line, nothing written), sweep specs, names."""

import subprocess
import sys

import numpy as np
import pytest

from twolayer.cli import main
from twolayer.experiments import parse_config

BASE = """\
model = "onestep"
method = "theory"
output = "out.nc"

[params]
alpha = [0.5, 1.0]

[sweep]
eta = [0.0, 1.0]
"""


def _sub(old: str, new: str):
    return lambda text: text.replace(old, new)


@pytest.mark.parametrize("edit,msg", [
    (_sub("[params]\n", "[params]\nalpah0 = 1\n"),
     "params.alpah0: unknown name; known: a_init, alpha,"),
    (_sub("[params]\n", '[params]\nalpha0 = "0.5"\n'),
     "params.alpha0: input should be a valid number (got '0.5')"),
    (_sub("[params]\n", "[params]\nseed = true\n"), "params.seed: input should be a valid integer"),
    (_sub("[params]\n", "[params]\nd = 2.5\n"), "params.d: must be an integer >= 1 or 'inf'"),
    (_sub("[params]\n", '[params]\nstudent = "nosuch"\n'),
     "params.student: unknown activation 'nosuch'; known: "),
    (_sub("alpha = [0.5, 1.0]", "alpha = [0.5, 0]"), "params.alpha: values must be > 0; got 0"),
    (_sub("eta = [0.0, 1.0]", "eta = {linspace = [0, 1]}"),
     "sweep.eta: linspace needs a list of three finite numbers"),
    (_sub("eta = [0.0, 1.0]", "eta = {geomspace = [1, 2, 3]}"),
     "sweep.eta: a spec table needs exactly one of linspace, logspace, range"),
    (_sub("eta = [0.0, 1.0]", "eta = {range = [1, 0, 1]}"), "sweep.eta: range [1, 0, 1] is empty"),
    (_sub("eta = [0.0, 1.0]", "eta = 1.0"), "sweep.eta: expected a list of values"),
    (_sub("eta = [0.0, 1.0]", "eta = [0.0, -1.0]"),
     "sweep.eta[1]: input should be greater than or equal to 0 (got -1.0)"),
    (_sub("eta = [0.0, 1.0]", "eta = [1.0, 1.0]"), "sweep.eta: repeated values"),
    (_sub("eta = [0.0, 1.0]", "etta = [1.0]"), "sweep.etta: unknown parameter for onestep theory"),
    (_sub("eta = [0.0, 1.0]", 'mode = "zip"\neta = [0.0, 1.0]\nalpha0 = [0.5, 1, 2]'),
     "sweep: mode 'zip' needs axes of equal length; got eta: 2, alpha0: 3"),
    (_sub("eta = [0.0, 1.0]", 'mode = "grid"\neta = [0.0, 1.0]'),
     "sweep.mode: must be 'product' or 'zip'"),
    (_sub('method = "theory"', 'method = "ode"'),
     "method: 'ode' is not a method of model 'onestep'; choose 'theory' or 'simulate'"),
    (_sub('model = "onestep"', 'model = "sdg"'), "model: input should be 'onestep' or 'sgd'"),
    (_sub('output = "out.nc"', 'ouput = "out.nc"'),
     "ouput: unknown name; known: activations, description,"),
    (_sub('output = "out.nc"', 'output = "out.zarr"'), "output: must be a NetCDF file name"),
    (_sub("[sweep]", "[params]\n[sweep]"), "invalid TOML: Cannot declare ('params',) twice"),
    (lambda t: t.replace('method = "theory"', 'method = "simulate"').replace(
        "[params]\n", "[params]\nseeds = 3\n").replace("eta = [0.0, 1.0]", "seed = [1, 2]"),
     "sweep.seed: the result already has a 'seed' dimension"),
])
def test_bad_file_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, edit, msg):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(edit(BASE))
    code = main(["run", str(cfg), "--workers", "0"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"twolayer: error: {cfg}: ") and msg in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.toml"]  # no result, no store


def test_toml_syntax_error_names_the_line_in_a_real_process(tmp_path):
    lines = BASE.splitlines()
    bad_line = lines.index("alpha = [0.5, 1.0]")
    lines[bad_line] = "alpha = = [0.5, 1.0]"
    cfg = tmp_path / "cfg.toml"
    cfg.write_text("\n".join(lines) + "\n")
    r = subprocess.run([sys.executable, "-m", "twolayer", "run", str(cfg)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert f"invalid TOML: Invalid value (at line {bad_line + 1}, column 9)" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "out.nc").exists()


def test_missing_file_and_unwritable_output(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "no such experiment file" in capsys.readouterr().err
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(BASE.replace('output = "out.nc"', 'output = "no/such/dir/out.nc"'))
    assert main(["run", str(cfg), "--workers", "0"]) == 2
    out, err = capsys.readouterr()
    assert "does not exist" in err and err.count("\n") == 1 and out == ""


def test_sweep_specs_expand_like_numpy():
    exp = parse_config(
        'model = "onestep"\nmethod = "theory"\n[params]\nalpha = {linspace = [0.2, 3, 8]}\n'
        "[sweep]\neta = {linspace = [0, 2, 5]}\nlam = {logspace = [-3, -1, 3]}\n"
        "alpha0 = {range = [0.1, 0.5, 0.1]}\ndraws = {range = [1, 7, 2]}\n")
    np.testing.assert_allclose(exp.params["alpha"], np.linspace(0.2, 3, 8), rtol=0, atol=0)
    np.testing.assert_allclose(exp.axes["eta"], [0, 0.5, 1, 1.5, 2], rtol=0, atol=0)
    np.testing.assert_allclose(exp.axes["lam"], [1e-3, 1e-2, 1e-1], rtol=1e-15)
    np.testing.assert_allclose(exp.axes["alpha0"], [0.1, 0.2, 0.3, 0.4], rtol=1e-15)  # stop out
    assert exp.axes["draws"] == (1, 3, 5)
    assert exp.shape == (5, 3, 4, 3) and len(exp.points()) == 180
    idx, prm = exp.points()[-1]
    assert idx == (4, 2, 3, 2)
    assert (prm["eta"], prm["lam"], prm["draws"]) == (2.0, [0.1], 5)  # a swept list → [value]


def test_zip_takes_axes_together_and_integral_floats_become_integers():
    exp = parse_config('model = "sgd"\nmethod = "ode"\n[sweep]\nmode = "zip"\n'
                       "d = {linspace = [100, 400, 4]}\ngamma = [0.1, 0.2, 0.3, 0.4]\n")
    assert exp.shape == (4,)
    assert [(p["d"], p["gamma"]) for _, p in exp.points()] == [
        (100, 0.1), (200, 0.2), (300, 0.3), (400, 0.4)]
    assert all(isinstance(p["d"], int) for _, p in exp.points())


def test_hyphenated_names_paths_and_defaults(tmp_path):
    init = tmp_path / "sub" / "start.json"
    init.parent.mkdir()
    init.write_text('{"Q": [[1.0]], "M": [[0.1]], "P": [[1.0]]}')
    exp = parse_config('model = "sgd"\nmethod = "simulate"\noutput = "res/x.nc"\n[params]\n'
                       't-max = 3\ninit-scale = 0.5\np = 1\nk = 1\ninit = "sub/start.json"\n',
                       base_dir=tmp_path)
    assert exp.params["t_max"] == 3.0 and exp.params["init_scale"] == 0.5
    assert exp.output == tmp_path / "res" / "x.nc" and exp.store == tmp_path / "twolayer-store"
    assert exp.params["seeds"] == 4 and exp.params["gamma"] == 0.5  # the CLI's defaults
    with pytest.raises(ValueError, match=r"params.init: the overlaps in 'sub/start.json' are "
                                         r"for p=1, k=1; the experiment asks p=2, k=2"):
        parse_config('model = "sgd"\nmethod = "ode"\n[params]\ninit = "sub/start.json"\n',
                     base_dir=tmp_path)

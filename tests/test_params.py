"""The parameter objects are the one source: library, command line and TOML agree with them."""

import importlib
import inspect
import json
import math

import numpy as np
import pytest
import typer

from twolayer.cli import app, main
from twolayer.errors import ParameterError
from twolayer.experiments import parse_config
from twolayer.params import METHODS, OnestepSimulate, OnestepTheory, SgdOde, SgdSimulate

CASES = [(key, cls) for key, cls in METHODS.items()]
IDS = [" ".join(k) for k, _ in CASES]


def _library(cls):
    module, name = cls.function.split(":")
    return getattr(importlib.import_module(module), name)


def _cli_options(model: str, method: str) -> dict:
    """{parameter name: default} of `twolayer MODEL METHOD`, read from the click command."""
    group = typer.main.get_command(app).commands[model]
    return {p.name: p.default for p in group.commands[method].params}


def _from_cli(cls, name, value):
    """The CLI gives lists as comma-separated text (empty: no values) and d = 'inf' as text."""
    if name in cls.lists:
        return [float(x) for x in value.split(",")] if value else []
    if name in cls.per_step and value is not None:  # one value, or one per giant step
        vals = [float(x) for x in value.split(",")]
        return vals[0] if len(vals) == 1 else vals
    if name == "d" and isinstance(value, str) and value != "inf":
        return int(value)
    return value


@pytest.mark.parametrize("key,cls", CASES, ids=IDS)
def test_cli_library_and_toml_defaults_are_one_value(key, cls, tmp_path):
    lib = inspect.signature(_library(cls)).parameters
    cli = _cli_options(*key)
    toml = parse_config(f'model = "{key[0]}"\nmethod = "{key[1]}"\n', base_dir=tmp_path).params
    assert set(cls.model_fields) <= set(lib) and set(cls.model_fields) <= set(cli)
    assert set(toml) == set(cls.model_fields)
    for name, field in cls.model_fields.items():
        want = field.get_default(call_default_factory=True)
        assert lib[name].default == want, f"library default of {name}"
        assert _from_cli(cls, name, cli[name]) == want, f"CLI default of {name}"
        assert toml[name] == want, f"TOML default of {name}"
        assert cls.doc(name), f"{name} has no doc"


@pytest.mark.parametrize("key,cls", CASES, ids=IDS)
def test_result_params_are_the_parameter_object(key, cls):
    small = {("onestep", "theory"): dict(alpha=[1.0], eta=0.5),
             ("onestep", "simulate"): dict(alpha=[1.0], d=60, seeds=2, n_test=200),
             ("sgd", "ode"): dict(t_max=0.5, d=50),
             ("sgd", "simulate"): dict(t_max=0.2, d=50, seeds=2)}[key]
    prm = cls(**small)
    ds = prm.compute()
    assert (ds.attrs["model"], ds.attrs["method"]) == key
    assert json.loads(ds.attrs["params"]) == json.loads(prm.to_json())
    assert cls.of(json.loads(ds.attrs["params"])).to_json() == prm.to_json()  # round trip


def test_parameter_object_calls_equal_keyword_calls():
    from twolayer.onestep import theory

    prm = OnestepTheory(alpha=[0.5, 2.0], eta=0.7)
    a = theory(prm)["test_error"].values
    b = theory("tanh", "tanh", alpha=[0.5, 2.0], eta=0.7)["test_error"].values
    c = theory(prm.replace(eta=0.0), eta=0.7)["test_error"].values
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("cls,bad,word", [
    (OnestepTheory, {"alpha0": -1.0}, "alpha0"),
    (OnestepTheory, {"tol": math.nan}, "tol"),
    (OnestepTheory, {"n_kappa": 0}, "n_kappa"),
    (OnestepTheory, {"alpha": []}, "alpha"),
    (OnestepTheory, {"d": 0}, "'d'"),
    (OnestepSimulate, {"seed": "x"}, "seed"),
    (OnestepSimulate, {"p": 0}, "'p'"),
    (SgdOde, {"solver": "magic"}, "solver"),
    (SgdOde, {"reduction": "narrow"}, "reduction"),
    (SgdOde, {"rtol": math.nan}, "rtol"),
    (SgdSimulate, {"gamma": 0.0}, "gamma"),
    (SgdSimulate, {"nosuch": 1}, "nosuch"),
])
def test_bad_values_are_one_line_parameter_errors(cls, bad, word):
    with pytest.raises(ParameterError) as e:
        cls.of(bad)
    assert word in str(e.value) and "\n" not in str(e.value)


def test_init_overlaps_give_p_and_k_and_refuse_a_mismatch():
    from twolayer.sgd import initial_overlaps

    ov = initial_overlaps(3, 1, 50)
    assert (SgdOde(init=ov).p, SgdOde(init=ov).k) == (3, 1)
    with pytest.raises(ParameterError, match="p=3, k=1"):
        SgdOde.of(init=ov, p=4)


def test_toml_is_strict_and_library_is_lenient(tmp_path):
    from twolayer.errors import ConfigError

    with pytest.raises(ConfigError, match=r"params\.alpha0"):
        parse_config('model = "onestep"\nmethod = "theory"\n[params]\nalpha0 = "1"\n',
                     base_dir=tmp_path)
    assert OnestepSimulate.of(d=np.int64(40)).d == 40


def test_cli_maps_a_parameter_error_to_exit_2(capsys):
    assert main(["sgd", "ode", "--solver", "magic"]) == 2
    assert main(["onestep", "theory", "--n-kappa", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "solver" in err[0] and "n_kappa" in err[1]

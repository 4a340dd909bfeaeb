"""examples/quickstart.ipynb runs top to bottom, and what it prints is what the library computes."""

import os
import re
from pathlib import Path

import pytest

import twolayer

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"
SRC = str(Path(twolayer.__file__).resolve().parents[1])


@pytest.fixture(scope="module")
def printed():
    """Execute the notebook (kernel python3, importing this twolayer); its printed `name = value`
    lines of the last code cell, and every cell's text output."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, old) if p)
    try:
        nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                                resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    code = [c for c in nb.cells if c.cell_type == "code"]
    texts = ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
             for c in code]
    values = dict(re.findall(r"^(\w+) = ([-+0-9.eE]+)$", texts[-1], flags=re.M))
    return {k: float(v) for k, v in values.items()}, texts, code


def test_notebook_runs_and_draws(printed):
    _, texts, code = printed
    assert f"twolayer {twolayer.__version__}" in texts[0]  # the kernel imported this package
    assert texts[1].count("status: ok ok") == 1 and texts[2].count("status: ok ok") == 1
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1


def test_onestep_numbers_match_the_library(printed):
    from twolayer.onestep import theory

    values, _, _ = printed
    direct = float(theory("tanh", "tanh", alpha0=0.5, eta=1.0, lam=0.01, alpha=[2.0])
                   ["test_error"].squeeze())
    assert values["theory_test_error_alpha2"] == pytest.approx(direct, rel=1e-10)
    # the d = 200 simulation is near the d = inf theory (3 seeds; measured gap 1.3%)
    assert values["simulation_test_error_alpha2"] == pytest.approx(direct, rel=0.1)


def test_sgd_numbers_match_the_library(printed):
    from twolayer.sgd import ode

    values, _, _ = printed
    res = ode("erf", "erf", p=2, k=2, d=500, gamma=0.5, noise=0.0, t_max=10.0)
    direct = float(res["risk"][-1])
    assert values["ode_final_risk"] == pytest.approx(direct, rel=1e-9)
    assert values["sgd_final_risk"] == pytest.approx(direct, rel=0.1)

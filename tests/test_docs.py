"""The documentation site builds with --strict, with its API pages, gallery and generated pages."""

import html as htmllib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings")

def text(path: Path) -> str:
    """The page's text: tags removed (code is split into highlighted spans), entities decoded."""
    return htmllib.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


API = ["params", "results", "onestep", "sgd", "experiments", "plotting", "activations", "errors"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"),
                                                     os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_api_pages_document_the_modules(site):
    for name in API:
        html = (site / "api" / name / "index.html").read_text()
        assert f'id="twolayer.{name}"' in html, name
    params = (site / "api" / "params" / "index.html").read_text()
    for cls in ("OnestepTheory", "OnestepSimulate", "SgdOde", "SgdSimulate"):
        assert f'id="twolayer.params.{cls}"' in params
    # the generated field table: every field of OnestepTheory with its doc
    from twolayer.params import OnestepTheory

    page = text(site / "api" / "params" / "index.html")
    for field, info in OnestepTheory.model_fields.items():
        assert f"<code>{field}</code>" in params
        assert info.description in page
    onestep = (site / "api" / "onestep" / "index.html").read_text()
    assert 'id="twolayer.onestep.theory.theory"' in onestep
    assert 'id="twolayer.onestep.simulate.simulate"' in onestep
    assert ":func:" not in onestep and ":mod:" not in onestep  # Sphinx roles are dropped


def test_gallery_has_every_recipe_and_its_image(site):
    from twolayer.reproduce import RECIPES

    html = (site / "gallery" / "index.html").read_text()
    images = re.findall(r'<img[^>]*src="([^"]+\.png)"', html)
    assert sorted(Path(i).stem for i in images) == sorted(RECIPES)
    for src in images:
        assert (site / "gallery" / src).is_file(), src
        assert (site / "gallery" / src).stat().st_size > 10_000
    page = text(site / "gallery" / "index.html")
    for name, recipe in RECIPES.items():
        assert f"twolayer reproduce {name}" in page
        assert recipe.what[1:] in page  # what it shows, and where it departs from the paper


def test_cli_page_is_the_live_help(site):
    from typer.testing import CliRunner

    from twolayer.cli import app

    page = text(site / "cli" / "index.html")
    for args in (["onestep", "theory"], ["sgd", "ode"], ["run"], ["reproduce"]):
        assert f"Usage: twolayer {' '.join(args)} [OPTIONS]" in page
        result = CliRunner().invoke(app, [*args, "--help"], prog_name="twolayer")
        assert result.exit_code == 0
        # every option of the live --help appears on the page
        options = set(re.findall(r"^\s+(--[a-z0-9-]+)", result.output, flags=re.M))
        assert options, args
        for opt in options:
            assert opt in page, (args, opt)

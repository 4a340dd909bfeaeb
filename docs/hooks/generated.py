"""MkDocs hook: pages generated from the code at build time, so they cannot drift from it.

- ``<!-- twolayer-cli-help -->`` becomes the live ``--help`` of every command, walked from the
  Typer app and rendered by click at a fixed width (88 columns);
- ``<!-- twolayer-gallery -->`` becomes one section per recipe of ``twolayer reproduce``
  (title, paper, what it shows, the command that rebuilds it, its figure
  ``docs/gallery/NAME.png``); a recipe without its PNG stops the build;
- ``<!-- twolayer-params: CLASS -->`` becomes the table of a parameter object's fields (name,
  type, default, doc) from ``twolayer.params.CLASS``.

The docstrings use Sphinx roles (``:func:`x```); mkdocstrings renders them as ":func:" before
the code span, so :func:`on_page_content` drops the role (and a leading ``~``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = "<!-- twolayer-cli-help -->"
GALLERY = "<!-- twolayer-gallery -->"
WIDTH = 88


def commands():
    """(path, help text) for the root and every command and sub-command, in help order."""
    import typer

    from twolayer.cli import app

    root = typer.main.get_command(app)
    out = []

    def walk(cmd, path):
        ctx = cmd.context_class(cmd, info_name=" ".join(["twolayer", *path]),
                            terminal_width=WIDTH, max_content_width=WIDTH)
        out.append((path, cmd.get_help(ctx)))
        if hasattr(cmd, "list_commands"):  # a group (Typer vendors its own click)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])

    walk(root, [])
    return out


def render() -> str:
    parts = []
    for path, text in commands():
        title = " ".join(["twolayer", *path])
        level = "#" * min(2 + len(path), 4)
        parts.append(f"{level} `{title}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def gallery(docs_dir: str) -> str:
    """One section per recipe, in the order of ``twolayer reproduce --list``."""
    from twolayer.reproduce import RECIPES

    parts = []
    for name, r in RECIPES.items():
        png = Path(docs_dir) / "gallery" / f"{name}.png"
        full = r.gallery == "full"
        if not png.is_file():
            raise FileNotFoundError(
                f"{png} is missing: run `twolayer reproduce {name} {'--full ' if full else ''}"
                f"--dir /tmp/gal` and copy /tmp/gal/{name}/{r.gallery}/{name}.png there")
        shown = ("# the small size", "# the papers' sizes, shown here") if full else (
            "# the small size shown here", "# the papers' sizes")
        parts.append(
            f"## `{name}`\n\n**{r.title}** ({r.paper})\n\n"
            f"![{r.title}]({name}.png){{ width=\"640\" loading=lazy }}\n\n"
            f"{r.what[0].upper()}{r.what[1:]}.\n\n"
            f"```bash\ntwolayer reproduce {name}            {shown[0]}\n"
            f"twolayer reproduce {name} --full     {shown[1]}\n```\n")
    return "\n".join(parts)


def on_config(config):
    """Import twolayer from this checkout's src/ (as mkdocstrings reads it), not another install."""
    src = str(Path(config.config_file_path).resolve().parent / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return config


PARAMS = re.compile(r"<!-- twolayer-params: (\w+) -->")
ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|exc):(<code>)~?")


def params_table(name: str) -> str:
    """Markdown table of the fields of ``twolayer.params.<name>``."""
    from twolayer import params

    cls = getattr(params, name)
    rows = ["| parameter | type | default | meaning |", "|---|---|---|---|"]
    for field, info in cls.model_fields.items():
        a = info.annotation
        ann = a.__name__ if type(a) is type else str(a).replace("typing.", "")
        ann = ann.replace("|", "or")
        default = info.get_default(call_default_factory=True)
        doc = (info.description or "").replace("|", "\\|")
        rows.append(f"| `{field}` | {ann} | `{default!r}` | {doc} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = PARAMS.sub(lambda m: params_table(m.group(1)), markdown)
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, render())
    if GALLERY in markdown:
        markdown = markdown.replace(GALLERY, gallery(config["docs_dir"]))
    return markdown


def on_page_content(html: str, page, config, files) -> str:
    return ROLE.sub(r"\1", html)

"""Helpers shared by the command-line tests."""

from pathlib import Path

from twolayer.cli import main


def run(capsys, args: list[str]) -> tuple[int, str, str]:
    """Run ``twolayer ARGS`` in this process: (exit status, stdout, stderr)."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def write(folder: Path, text: str, name: str = "cfg.toml") -> Path:
    """An experiment file ``name`` with ``text`` in ``folder``."""
    path = folder / name
    path.write_text(text)
    return path

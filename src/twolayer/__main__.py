"""``python -m twolayer`` runs the command-line interface."""

from twolayer.cli import run

run()

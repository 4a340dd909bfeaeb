"""``python -m twolayer`` runs the command-line interface."""

from twolayer.cli import run

if __name__ == "__main__":  # not when multiprocessing's spawn re-imports this for a Dask worker
    run()

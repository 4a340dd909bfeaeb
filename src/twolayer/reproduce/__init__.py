"""``twolayer reproduce``: the key figures of both papers, rebuilt from shipped recipes.

- :data:`RECIPES` — name → :class:`Recipe` (experiments as TOML text, and a drawing function);
- :func:`reproduce` — run a recipe's experiments (resumable, content-addressed store) and draw
  its figure to PNG and PDF.
"""

from twolayer.reproduce.recipes import RECIPES, Recipe
from twolayer.reproduce.run import Reproduction, reproduce

__all__ = ["RECIPES", "Recipe", "Reproduction", "reproduce"]

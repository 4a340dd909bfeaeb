"""Which figure a result gets: :class:`FigurePlan` and the rule that makes it (:func:`make`).

The rule is written out in :mod:`twolayer.plotting.results`. Nothing here draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from twolayer.errors import ParameterError
from twolayer.plotting.style import QUANTITY, SYMBOL
from twolayer.plotting.table import ResultTable

KINDS = ("auto", "curves", "panels", "heatmap")
MAX_PANELS = 6
MAX_PANEL_CURVES = 8


@dataclass(frozen=True)
class FigurePlan:
    """What :func:`~twolayer.plotting.results.plot_result` draws (the rule: its module).

    ``kind``: "curves", "panels" or "heatmap"; ``x``: the horizontal axis; ``families``: the
    groups of axes whose values tell curves apart (a zip sweep's axes form one group);
    ``panel_axes``: the group with one panel per value (panels); ``heat_axes``: (horizontal,
    vertical) (heatmap); ``reduced``: each run is taken at the end of its ``curve_axis``, whose
    value there is ``at`` (None when it differs between runs).
    """

    model: str
    method: str
    kind: str
    x: str
    quantity: str
    curve_axis: str
    reduced: bool
    families: tuple[tuple[str, ...], ...] = ()
    panel_axes: tuple[str, ...] | None = None
    heat_axes: tuple[str, str] | None = None
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": self.x, "model": self.model, "method": self.method,
                "quantity": self.quantity, "curve_axis": self.curve_axis,
                "reduced": self.reduced, "families": [list(f) for f in self.families],
                "panel_axes": list(self.panel_axes) if self.panel_axes else None,
                "heat_axes": list(self.heat_axes) if self.heat_axes else None, "at": self.at}


def _nunique(rows: pd.DataFrame, cols) -> int:
    cols = list(cols)
    return len(rows[cols].drop_duplicates()) if cols else 1


def make(data: ResultTable, x: str | None, kind: str) -> FigurePlan:
    """The :class:`FigurePlan` of ``data`` (``x``, ``kind``: as for :func:`plot_result`)."""
    if kind not in KINDS:
        raise ParameterError(f"unknown figure kind {kind!r}; choose one of {', '.join(KINDS)}")
    rows, c = data.rows, data.curve_axis
    if x is not None and x not in data.axes:
        raise ParameterError(f"unknown axis {x!r} for x; the axes of this result are "
                             f"{', '.join(data.axes)}")
    params = [a for a in data.axes if a != c and _nunique(rows, [a]) > 1]

    def groups(names):
        zipped = tuple(a for a in names if a in data.zip_axes)
        return ([zipped] if zipped else []) + [(a,) for a in names if a not in data.zip_axes]

    product = [f[0] for f in groups(params) if len(f) == 1]
    x_given = x
    if x is None:
        x = c
        if _nunique(rows, [c]) <= 1 and params:
            if kind in ("auto", "heatmap") and len(params) == 2 and len(product) == 2:
                kind = "heatmap"
            else:
                x = params[0]
    quantity = QUANTITY[data.model]
    if kind == "heatmap":
        if len(params) != 2 or len(product) != 2:
            raise ParameterError(
                "a heatmap needs exactly two parameters varying on a product grid besides "
                f"{SYMBOL[c]}; this result varies over "
                f"{', '.join(params) if params else 'none'}")
        h = x_given if x_given in params else params[0]
        v = params[1] if h == params[0] else params[0]
        return FigurePlan(data.model, data.method, "heatmap", h, quantity, c, True,
                          ((h,), (v,)), None, (h, v), _at(data, c))
    families = groups([a for a in params if a != x])
    panel = None
    if kind in ("auto", "panels") and len(families) >= 2:
        # panels: the parameter with the fewest values (the later one on a tie), never η̃
        # (the RF baseline stays in every panel)
        panel_f = min((f for f in families if "eta" not in f),
                      key=lambda f: (len(f) > 1, _nunique(rows, f), -families.index(f)))
        curve_fs = [f for f in families if f != panel_f]
        small = (_nunique(rows, panel_f) <= MAX_PANELS
                 and _nunique(rows, [a for f in curve_fs for a in f]) <= MAX_PANEL_CURVES)
        if kind == "panels" or small:
            kind, panel, families = "panels", panel_f, [*curve_fs, panel_f]
        elif len(families) == 2 and x == c and all(len(f) == 1 for f in families):
            h, v = families[0][0], families[1][0]
            return FigurePlan(data.model, data.method, "heatmap", h, quantity, c, True,
                              tuple(families), None, (h, v), _at(data, c))
    elif kind == "panels":
        raise ParameterError(f"panels need two parameters besides x = {x}; this result has "
                             f"{len(families)} ({', '.join('/'.join(f) for f in families)})")
    if kind != "panels":
        kind = "curves"
    reduced = x != c
    return FigurePlan(data.model, data.method, kind, x, quantity, c, reduced, tuple(families),
                      panel, None, _at(data, c) if reduced else None)


def _at(data: ResultTable, c: str) -> float | None:
    ends = at_end(data, c)[c].unique()
    return float(ends[0]) if len(ends) == 1 else None


def at_end(data: ResultTable, c: str) -> pd.DataFrame:
    """One row per run: the sample at the largest value of the curve axis ``c``."""
    rows = data.rows[data.rows[c].notna()]
    keys = [a for a in data.axes if a != c]
    if c not in data.sweep_axes:
        keys.append("point")
    if not keys:
        return rows.loc[[rows[c].idxmax()]]
    return rows.loc[rows.groupby(keys, sort=False, dropna=False)[c].idxmax().values]

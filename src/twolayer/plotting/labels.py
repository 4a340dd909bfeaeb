"""The words of a result's figure: parameter values, curve names, the title, the y label."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd

from twolayer.plotting.plan import FigurePlan
from twolayer.plotting.style import METHOD_NAME, SYMBOL, spread, y_label
from twolayer.plotting.table import ResultTable


def fmt(v) -> str:
    """A parameter value for a label: 4 significant digits, ∞ for inf (also d = "inf")."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.4g}"
    if v is None:
        return "–"
    return "∞" if v == "inf" else str(v)


def sym(a: str) -> str:
    """A parameter's symbol (α, η̃ …), or its name."""
    return SYMBOL.get(a, a)


def label(key: dict) -> str:
    """``{"eta": 1.0, "lam": 0.1}`` → ``"η̃ = 1, λ = 0.1"``."""
    return ", ".join(f"{sym(a)} = {fmt(v)}" for a, v in key.items())


def title(data: ResultTable, plan: FigurePlan, width: int = 90) -> str:
    """What the figure is and the parameters it does not show as axes, wrapped at ``width``."""
    shown = {plan.x, *(a for f in plan.families for a in f)}
    if plan.heat_axes:
        shown |= set(plan.heat_axes)

    def value(name):
        if name in data.rows.columns:
            vals = data.rows[name].unique()
            return vals[0] if len(vals) == 1 else None
        return data.params.get(name)

    if data.model == "onestep":
        names = ["alpha0", "eta", "lam", "noise", "beta", "d"]
        if data.method == "simulate":
            names.append("p")
    else:
        names = ["p", "k", "gamma", "noise", "d", "init_scale"]
    parts = []
    for who in ("student", "teacher"):
        if who not in shown and value(who) is not None:
            parts.append(f"{sym(who)} = {value(who)}")
    for n in names:
        v = value(n)
        if n in shown or v is None or isinstance(v, list):
            continue
        if (n, v) in (("noise", 0.0), ("beta", 1.0), ("init_scale", 1.0)):
            continue
        parts.append(f"{sym(n)} = {fmt(v)}")
    if data.model == "sgd" and data.params.get("spherical"):
        parts.append("spherical")
    if data.model == "sgd" and data.method == "ode" and data.params.get("variance") is False:
        parts.append("no SGD variance term")
    if data.seeds is not None:
        parts.append(spread(data.seeds, data.errors))
    head = METHOD_NAME[(data.model, data.method)]
    lines = [f"{head} —"]
    for i, part in enumerate(parts):  # wrap between parts, never inside "d = 200"
        part += "," if i < len(parts) - 1 else ""
        if len(lines[-1]) + 1 + len(part) > width:
            lines.append(part)
        else:
            lines[-1] += " " + part
    if data.description:
        lines = textwrap.wrap(data.description, width) + lines
    return "\n".join(lines)


def quantity_label(data: ResultTable, plan: FigurePlan) -> str:
    """The y label: the model's quantity, and where each run is taken if reduced."""
    text = y_label(data.model)
    if plan.reduced:
        text += "\n" + at_text(data, plan)
    return text


def at_text(data: ResultTable, plan: FigurePlan) -> str:
    c = plan.curve_axis
    if plan.at is not None:
        return f"at {sym(c)} = {fmt(plan.at)}"
    return "at the end of each run" if c == "t" else "at the largest α of each point"


def failure(data: ResultTable, plan: FigurePlan, g: pd.DataFrame) -> str:
    """What went wrong along one curve (empty if nothing)."""
    pts = data.points.loc[g["point"].unique()]
    bad = pts[pts["status"] != "ok"]
    invalid = int((~g["valid"]).sum())
    if bad.empty and invalid == 0:
        return ""
    if data.model == "sgd" and plan.x == "t" and len(pts) == 1 and not bad.empty:
        p = bad.iloc[0]
        if p["status"] == "failed" and not np.isfinite(p["stop"]):
            return "failed: no data"
        when = f" at t = {p['stop']:.3g}" if np.isfinite(p["stop"]) else ""
        if p["status"] == "diverged" and data.method == "simulate":
            return f"{int(p['ndiv'])} of {data.seeds} runs diverged (first{when})"
        if p["status"] == "diverged":
            return f"diverged{when}"
        if p["status"] == "failed":
            return f"integration failed{when}"
        return p["status"].replace("_", " ") + when
    what = "/".join(sorted(s.replace("_", " ") for s in set(bad["status"]))) or "invalid"
    if invalid == len(g):
        return f"{what}: no data"
    if invalid:
        where = g.loc[~g["valid"], plan.x].tolist()
        if invalid <= 3:
            return f"{what} at {sym(plan.x)} = {', '.join(map(fmt, where))} (left out)"
        return f"{what} at {invalid} of {len(g)} {sym(plan.x)} (left out)"
    return ""

"""A result's figure of kind "heatmap": the value at the end of the curve axis over two
parameters on a product grid (cells without a value are blank and hatched)."""

from __future__ import annotations

import math

import numpy as np

from twolayer.errors import ParameterError
from twolayer.plotting import labels, style
from twolayer.plotting.labels import fmt, sym
from twolayer.plotting.plan import FigurePlan, at_end
from twolayer.plotting.table import ResultTable, keys

ANNOTATE_CELLS = 64  # heatmaps with at most this many cells print each cell's value


def draw(data: ResultTable, plan: FigurePlan):
    """The Figure (``fig.twolayer_labels``: each cell, and why it has no value)."""
    import matplotlib
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Patch, Rectangle

    h, v = plan.heat_axes
    rows = at_end(data, plan.curve_axis)
    hk = [k[0] for k in keys(rows, [h])]
    vk = [k[0] for k in keys(rows, [v])]
    z, what = _cells(data, rows, h, hk, v, vk)
    finite = z[np.isfinite(z)]
    log = data.model == "sgd" and finite.size and (finite > 0).all()
    if log:
        norm = LogNorm(vmin=finite.min(), vmax=finite.max())
    else:
        norm = Normalize(*(finite.min(), finite.max()) if finite.size else (0, 1))
    nh, nv = len(hk), len(vk)
    fig = style.new_figure((min(2.6 + 0.5 * nh, 9.0) + 1.2, min(2.0 + 0.4 * nv, 7.0) + 0.9))
    ax = fig.subplots()
    cmap = matplotlib.colormaps[style.SEQUENTIAL]
    mesh = ax.pcolormesh(np.arange(nh + 1) - 0.5, np.arange(nv + 1) - 0.5,
                         np.ma.masked_invalid(z), cmap=cmap, norm=norm, shading="flat")
    mesh.set_gid("heatmap")
    ax.set_xticks(range(nh), [fmt(a) for a in hk], fontsize=style.TICK_SIZE,
                  rotation=45 if nh > 8 else 0)
    ax.set_yticks(range(nv), [fmt(a) for a in vk], fontsize=style.TICK_SIZE)
    ax.set_xlim(-0.5, nh - 0.5)
    ax.set_ylim(-0.5, nv - 0.5)
    ax.set_xlabel(style.axis_label(h), fontsize=style.LABEL_SIZE)
    ax.set_ylabel(style.axis_label(v), fontsize=style.LABEL_SIZE)
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label(labels.quantity_label(data, plan).replace("\n", " "), fontsize=style.LABEL_SIZE)
    cbar.ax.tick_params(labelsize=style.TICK_SIZE)
    missing = set()
    for i, j in zip(*np.nonzero(~np.isfinite(z)), strict=True):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="none", hatch="///",
                               edgecolor="0.55", lw=0.5))
        missing.add(str(what[i, j]).replace("_", " "))
    if nh * nv <= ANNOTATE_CELLS:
        for i in range(nv):
            for j in range(nh):
                if np.isfinite(z[i, j]):
                    lum = np.dot(cmap(norm(z[i, j]))[:3], (0.299, 0.587, 0.114))
                    ax.text(j, i, f"{z[i, j]:.3g}", ha="center", va="center", fontsize=7,
                            color="k" if lum > 0.5 else "w")
    if missing:
        ax.legend(handles=[Patch(facecolor="white", edgecolor="0.55", hatch="///",
                                 label="no value: " + ", ".join(sorted(missing)))],
                  loc="upper center", bbox_to_anchor=(0.5, -0.16 if nh <= 8 else -0.24),
                  fontsize=style.LEGEND_SIZE, frameon=False)
    fig.suptitle(labels.title(data, plan, int(fig.get_figwidth() * 15.5)),
                 fontsize=style.SUPTITLE_SIZE)
    fig.twolayer_labels = [
        f"{sym(h)} = {fmt(a)}, {sym(v)} = {fmt(b)}"
        + ("" if np.isfinite(z[i, j]) else f": no value ({what[i, j].replace('_', ' ')})")
        for i, b in enumerate(vk) for j, a in enumerate(hk)]
    return fig


def _cells(data: ResultTable, rows, h: str, hk: list, v: str, vk: list):
    """(z, what): the value of each cell (NaN: none) and, where there is none, why."""
    z = np.full((len(vk), len(hk)), np.nan)
    what = np.full(z.shape, "no point", dtype=object)
    for r in rows.itertuples(index=False):
        i, j = vk.index(getattr(r, v)), hk.index(getattr(r, h))
        if not math.isnan(z[i, j]) or what[i, j] != "no point":
            raise ParameterError(f"two runs fall in the heatmap cell {h} = {fmt(hk[j])}, "
                                 f"{v} = {fmt(vk[i])}; fix the other parameters")
        status = data.points.loc[r.point, "status"]
        z[i, j] = r.y if r.valid else np.nan
        what[i, j] = status if status != "ok" or r.valid else "invalid"
    return z, what

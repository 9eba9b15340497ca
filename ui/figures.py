"""Plotly figures of the Explore page, built from a FrontView (WebGL traces for large stores)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.colors as px_colors
import plotly.graph_objects as go

from engine.explore import FrontView
from engine.fields import SOURCE_SUFFIX
from ui.text import plain

CONFIG_HOVER = ("model", "hardware", "precision", "batch_size", "num_gpus", "task")
DOMINATED = "rgba(140,140,140,0.28)"
FRONT = "#d62728"


def _short(text, limit: int = 110) -> str:
    text = str(text)
    return plain(text if len(text) <= limit else text[:limit - 1] + "…")


def hover_text(df: pd.DataFrame, objectives: Sequence[str], label: Callable[[str], str],
               also: Sequence[str] = (), sources: bool = False) -> pd.Series:
    """One HTML string per run: its configuration, then each objective with its unit and (with
    ``sources``: the front's points, few enough to carry it) where a quality figure comes from;
    ``also`` adds metrics that are not objectives (the task's quality), shown as "not measured"
    where a run has none. Values and labels are data, escaped: plotly shows them, never renders them."""
    parts = []
    for c in CONFIG_HOVER:
        if c in df.columns:
            parts.append(f"{c}: " + df[c].astype("string").fillna("–").map(plain))
    for o in list(objectives) + [a for a in also if a not in objectives]:
        if o in df.columns:
            vals = pd.Series(["not measured" if pd.isna(v) else f"{v:.4g}" for v in df[o]], index=df.index, dtype=object)
            parts.append(f"<b>{plain(label(o))}</b>: " + vals)
            src = o + SOURCE_SUFFIX
            if sources and src in df.columns and df[src].notna().any():
                parts.append(pd.Series([f"<i>{o} source: {_short(v)}</i>" if pd.notna(v) else "" for v in df[src]],
                                       index=df.index, dtype=object))
    if not parts:
        return pd.Series([""] * len(df), index=df.index)
    out = parts[0].astype(str)
    for p in parts[1:]:
        out = out + p.astype(str).map(lambda t: "<br>" + t if t else "")
    return out


def front_figure(view: FrontView, objectives: Sequence[str], label: Callable[[str], str], *,
                 group: str | None = None, z_mode: str = "colour", log_x: bool = False,
                 log_y: bool = False, also: Sequence[str] = ()) -> go.Figure:
    """The front as a line (per group when grouped) over faded dominated runs; a third
    objective as marker colour or as the third axis of a 3-D view."""
    x, y = objectives[:2]
    z = objectives[2] if len(objectives) > 2 else None
    three_d = z is not None and z_mode == "3d"
    fig = go.Figure()
    dom = view.dominated
    if three_d:
        fig.add_trace(go.Scatter3d(x=dom[x], y=dom[y], z=dom[z], mode="markers", name="dominated",
                                   marker=dict(size=2, color="rgba(120,120,120,0.45)"), hovertemplate="%{text}<extra></extra>",
                                   text=hover_text(dom, objectives, label, also)))
    else:
        fig.add_trace(go.Scattergl(x=dom[x], y=dom[y], mode="markers", name=f"dominated ({view.n_dominated:,})",
                                   marker=dict(size=5, color=DOMINATED), hovertemplate="%{text}<extra></extra>",
                                   text=hover_text(dom, objectives, label, also)))
    groups = [(None, view.front)] if not group else [
        (plain(g), part) for g, part in view.front.groupby(view.front[group].astype("string").fillna("(none)"), sort=True)]
    palette = px_colors.qualitative.Dark24 + px_colors.qualitative.Light24
    for i, (name, part) in enumerate(groups):
        part = part.sort_values([x, y], kind="stable")
        text = hover_text(part, objectives, label, also, sources=True)
        trace_name = f"front ({len(part)})" if name is None else name
        colour = FRONT if not group else palette[i % len(palette)]
        if three_d:
            fig.add_trace(go.Scatter3d(x=part[x], y=part[y], z=part[z], mode="markers", name=trace_name,
                                       marker=dict(size=5, color=part[z] if not group else colour,
                                                   colorscale="Viridis" if not group else None),
                                       text=text, hovertemplate="%{text}<extra></extra>"))
        else:
            marker = dict(size=9, color=colour, line=dict(width=1, color="white"))
            if z is not None and not group:
                marker.update(color=part[z], colorscale="Viridis", showscale=True,
                              colorbar=dict(title=dict(text=plain(label(z)), side="right")))
            # a 3-objective front is a surface: a line through its 2-D shadow would mislead
            fig.add_trace(go.Scattergl(x=part[x], y=part[y], mode="markers" if z else "lines+markers", name=trace_name,
                                       line=dict(width=2, color=colour), marker=marker,
                                       text=text, hovertemplate="%{text}<extra></extra>"))
    legend = dict(itemsizing="constant")
    if z is not None and not group and not three_d:  # leave the right side to the colour bar
        legend.update(orientation="h", x=0, y=1.02, yanchor="bottom")
    layout = dict(height=560, margin=dict(l=10, r=10, t=40, b=10), legend=legend, hoverlabel=dict(align="left"))
    if three_d:
        fig.update_layout(scene=dict(xaxis=dict(title=dict(text=plain(label(x))), type="log" if log_x else "linear"),
                                     yaxis=dict(title=dict(text=plain(label(y))), type="log" if log_y else "linear"),
                                     zaxis=dict(title=dict(text=plain(label(z))))), **layout)
    else:
        fig.update_layout(xaxis=dict(title=dict(text=plain(label(x))), type="log" if log_x else "linear"),
                          yaxis=dict(title=dict(text=plain(label(y))), type="log" if log_y else "linear"), **layout)
    return fig


def parcoords_figure(view: FrontView, dims: Sequence[str], label: Callable[[str], str], sample: int = 1000,
                     seed: int = 0) -> go.Figure:
    """Parallel coordinates over ``dims``: the front in colour, a sample of dominated runs grey."""
    dom = view.dominated
    if len(dom) > sample:
        dom = dom.sample(sample, random_state=seed)
    df = pd.concat([dom.assign(_front=0), view.front.assign(_front=1)], ignore_index=True)
    dims = [d for d in dims if d in df.columns and df[d].notna().any()]
    dimensions = []
    for d in dims:
        vals = pd.to_numeric(df[d], errors="coerce").astype(float)
        dimensions.append(dict(label=plain(label(d)), values=vals.to_numpy(dtype=float, na_value=np.nan)))
    fig = go.Figure(go.Parcoords(
        line=dict(color=df["_front"], colorscale=[[0, "rgba(160,160,160,0.5)"], [1, FRONT]], cmin=0, cmax=1),
        dimensions=dimensions))
    fig.update_layout(height=380, margin=dict(l=60, r=60, t=60, b=20))
    return fig

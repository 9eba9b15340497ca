"""Plotly figures of the Explore and Recommend pages (WebGL traces only for many points, a density
for many runs off the front)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.colors as px_colors
import plotly.graph_objects as go

from engine.density import DENSITY_FROM, HOW_TO_READ, Density, density
from engine.explore import FrontView
from engine.fields import CI_HI, CI_LO, CONFIG_COLUMNS, SOURCE_SUFFIX
from ui.text import plain

if TYPE_CHECKING:
    from engine.recommend import Recommendation

DOMINATED = "rgba(140,140,140,0.28)"
FRONT = "#d62728"
TIED = "#ff7f0e"  # beaten by the point values only, not with 95 % confidence
# A figure of more points than this is drawn with WebGL (Scattergl), a smaller one as SVG (Scatter).
# A browser without a GPU (headless chromium here, a remote desktop) renders WebGL in software:
# Plotly.newPlot of the Explore front at 10,000 runs (1,443 points) took 484 ms with WebGL and 199 ms
# as SVG; SVG took 282 ms for 2,000 points, 497 for 3,000 and 590 for 4,000 (medians of 5, chromium,
# plotly.min.js). One kind per figure: plotly draws its WebGL canvas over the SVG layer, so a front
# in SVG over a WebGL sample of dominated runs would be hidden under it.
SVG_MAX = 3000


def scatter(n_points: int):
    """The plotly scatter class for a figure of ``n_points`` in all: SVG where few, WebGL where many."""
    return go.Scatter if n_points <= SVG_MAX else go.Scattergl


def _short(text, limit: int = 110) -> str:
    text = str(text)
    return plain(text if len(text) <= limit else text[:limit - 1] + "…")


def hover_text(df: pd.DataFrame, objectives: Sequence[str], label: Callable[[str], str],
               also: Sequence[str] = (), sources: bool = False) -> pd.Series:
    """One HTML string per run: its configuration, then each objective with its unit and (with
    ``sources``: the front's points, few enough to carry it) where a quality figure comes from;
    ``also`` adds metrics that are not objectives (the task's quality), shown as "not measured"
    where a run has none. Values and labels are data, escaped: plotly shows them, never renders them."""
    parts: list[list[str]] = []  # plain lists: pandas string arithmetic took a sixth of the page's run
    for c in CONFIG_COLUMNS:
        if c in df.columns:
            col = df[c].astype(object)
            shown = {v: f"{c}: {plain(str(v))}" for v in pd.unique(col.dropna())}
            parts.append([f"{c}: –" if na else shown[v] for v, na in zip(col, col.isna())])
    for o in list(objectives) + [a for a in also if a not in objectives]:
        if o in df.columns:
            head = f"<b>{plain(label(o))}</b>: "
            parts.append([head + ("not measured" if pd.isna(v) else f"{v:.4g}") for v in df[o]])
            src = o + SOURCE_SUFFIX
            if sources and src in df.columns and df[src].notna().any():
                parts.append([f"<i>{o} source: {_short(v)}</i>" if pd.notna(v) else "" for v in df[src]])
    if not parts:
        return pd.Series([""] * len(df), index=df.index)
    return pd.Series(["<br>".join(t for t in row if t) for row in zip(*parts)], index=df.index, dtype=object)


def run_ids(df: pd.DataFrame):
    """Each point's run id, carried as plotly customdata so a selection on the plot names runs."""
    return df["run_id"].to_numpy() if "run_id" in df.columns else None


def error_bars(df: pd.DataFrame, metric: str, intervals: Sequence[str], colour: str) -> dict | None:
    """Plotly error bars from a metric's 95 % interval columns (no bar where a run has none)."""
    lo, hi = metric + CI_LO, metric + CI_HI
    if metric not in intervals or lo not in df.columns or hi not in df.columns:
        return None
    val = pd.to_numeric(df[metric], errors="coerce")
    up = (pd.to_numeric(df[hi], errors="coerce") - val).clip(lower=0).fillna(0)
    down = (val - pd.to_numeric(df[lo], errors="coerce")).clip(lower=0).fillna(0)
    return dict(type="data", symmetric=False, array=up.to_numpy(float), arrayminus=down.to_numpy(float),
                thickness=1.2, width=3, color=colour)


GREYS = ("rgba(140,140,140,0.30)", "rgba(70,70,70,0.85)")  # a density's lightest and darkest cell


def density_trace(grid: Density, name: str, shades: tuple[str, str] = GREYS) -> go.Heatmap:
    """Runs as one shaded layer (engine.density): darker where more runs lie (the shade follows
    log10 of the count, so a lone run still shows beside a thousand), a cell's count on hover,
    empty cells clear. One image for the browser, however many runs."""
    counts = grid.counts.astype(float)
    shade = np.where(counts > 0, np.log10(np.maximum(counts, 1)) + 1, np.nan)
    top = float(np.nanmax(shade)) if (counts > 0).any() else 1.0
    # the count as a value after a label ("runs in this cell: 1"), so one template words every cell
    # without a text per cell in the page
    return go.Heatmap(x=grid.x_edges, y=grid.y_edges, z=shade, customdata=grid.counts.astype(np.int32),
                      zmin=1, zmax=max(top, 2.0), colorscale=[[0, shades[0]], [1, shades[1]]], showscale=False,
                      hoverongaps=False, hovertemplate=f"runs in this cell: %{{customdata:,}}<extra>{plain(name)}</extra>",
                      name=name, showlegend=True)


def front_figure(view: FrontView, objectives: Sequence[str], label: Callable[[str], str], *,
                 group: str | None = None, z_mode: str = "colour", log_x: bool = False,
                 log_y: bool = False, also: Sequence[str] = ()) -> go.Figure:
    """The front as a line (per group when grouped) over faded dominated runs, or over their
    density where the view carries one; a third objective as marker colour or as the third axis
    of a 3-D view. Where the view uses confidence
    intervals, the front carries error bars and the tied runs (beaten only by point values) are
    drawn apart, as open markers with their own bars."""
    x, y = objectives[:2]
    z = objectives[2] if len(objectives) > 2 else None
    three_d = z is not None and z_mode == "3d"
    fig = go.Figure()
    dom = view.dominated
    tied = view.tied if view.tied is not None else pd.DataFrame()
    dense = view.density is not None and not three_d
    trace_type = scatter((0 if dense else len(dom)) + len(view.front) + len(tied))
    if dense:
        fig.add_trace(density_trace(view.density, f"dominated ({view.n_dominated:,}), as a density"))
    elif three_d:
        fig.add_trace(go.Scatter3d(x=dom[x], y=dom[y], z=dom[z], mode="markers", name="dominated",
                                   marker=dict(size=2, color="rgba(120,120,120,0.45)"), hovertemplate="%{text}<extra></extra>",
                                   text=hover_text(dom, objectives, label, also)))
    else:
        fig.add_trace(trace_type(x=dom[x], y=dom[y], mode="markers", name=f"dominated ({view.n_dominated:,})",
                                 marker=dict(size=5, color=DOMINATED), hovertemplate="%{text}<extra></extra>",
                                 customdata=run_ids(dom),
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
            fig.add_trace(trace_type(x=part[x], y=part[y], mode="markers" if z else "lines+markers", name=trace_name,
                                     line=dict(width=2, color=colour), marker=marker,
                                     customdata=run_ids(part), error_x=error_bars(part, x, view.intervals, colour),
                                     error_y=error_bars(part, y, view.intervals, colour),
                                     text=text, hovertemplate="%{text}<extra></extra>"))
    if len(tied):
        name = f"tied with the front ({len(tied)}): not beaten at 95 %"
        text = hover_text(tied, objectives, label, also, sources=True)
        if three_d:
            fig.add_trace(go.Scatter3d(x=tied[x], y=tied[y], z=tied[z], mode="markers", name=name, text=text,
                                       marker=dict(size=5, color=TIED, symbol="circle-open"),
                                       hovertemplate="%{text}<extra>tied</extra>"))
        else:
            fig.add_trace(trace_type(x=tied[x], y=tied[y], mode="markers", name=name, text=text,
                                     marker=dict(size=9, color=TIED, symbol="circle-open", line=dict(width=2)),
                                     customdata=run_ids(tied), error_x=error_bars(tied, x, view.intervals, TIED),
                                     error_y=error_bars(tied, y, view.intervals, TIED),
                                     hovertemplate="%{text}<extra>tied</extra>"))
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


def recommend_figure(rec: Recommendation, objectives: Sequence[str], hover: Sequence[str]) -> tuple[go.Figure, str | None]:
    """Recommend's plot of a Recommendation (its ``runs``): the feasible front, the pick and the
    runner-up over the other runs, infeasible and feasible-but-dominated apart; past DENSITY_FROM
    other runs, those two as shaded densities of all of them (engine.density), where drawing each
    took 24 s in chromium at 1e6 runs and a sample of 2,000 still most of the page. Returns the
    figure and a caption for what is drawn other than point by point."""
    runs, (x, y) = rec.runs, objectives[:2]
    front, others = runs[runs["on_front"]], runs[~runs["on_front"]]
    logx = bool(runs[x].gt(0).all() and runs[x].max() / runs[x].min() > 30)
    logy = bool(runs[y].gt(0).all() and runs[y].max() / runs[y].min() > 30)
    dense = len(others) > DENSITY_FROM
    fig = go.Figure()
    trace_type = scatter(len(front) + (0 if dense else len(others)) + 2)  # the pick and the runner-up drawn again

    def trace(df, name, color, size=7, symbol="circle"):
        cells = [df[c].astype(str).map(plain) for c in hover] if len(df) else []
        text = cells[0].str.cat(cells[1:], sep=" / ") if cells else []
        fig.add_trace(trace_type(x=df[x], y=df[y], mode="markers", name=name, text=text,
                                 marker=dict(color=color, size=size, symbol=symbol),
                                 hovertemplate=f"%{{text}}<br>{plain(x)} %{{x:.4g}}<br>{plain(y)} %{{y:.4g}}"
                                               f"<extra>{name}</extra>"))

    parts = [("infeasible", others[~others["feasible"]], "#d0d0d0", ("rgba(190,190,190,0.55)", "rgba(120,120,120,0.9)")),
             ("feasible, dominated", others[others["feasible"]], "#8fb3d9",
              ("rgba(143,179,217,0.6)", "rgba(40,90,160,0.9)"))]
    cells = density(others[x].to_numpy(float), others[y].to_numpy(float), logx, logy) if dense else None
    for name, part, colour, shades in parts:
        if not dense:
            trace(part, name, colour, 6)
        elif len(part):  # both layers on one grid, so a cell of each lines up
            grid = density(part[x].to_numpy(float), part[y].to_numpy(float), logx, logy, like=cells)
            fig.add_trace(density_trace(grid, f"{name} ({len(part):,}), as a density", shades))
    trace(front.sort_values(x), "feasible front", "#1f5fbf", 9)
    trace(pd.DataFrame([rec.pick]), "pick", "#e4572e", 16, "star")
    if rec.runner_up:
        trace(pd.DataFrame([rec.runner_up]), "runner-up", "#f3a712", 12, "diamond")
    fig.update_layout(height=460, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=1.08),
                      xaxis=dict(title=plain(x), type="log" if logx else "linear", dtick=1 if logx else None),
                      yaxis=dict(title=plain(y), type="log" if logy else "linear", dtick=1 if logy else None))
    said = (f"The other {len(others):,} runs are drawn as shaded densities, infeasible in grey and feasible in blue "
            f"({HOW_TO_READ}).") if dense else None
    return fig, said


def curve_figure(cv, x: str, y: str, label: Callable[[str], str], *, log_x: bool = False,
                 log_y: bool = False) -> go.Figure:
    """A metric against a knob: one line per value of ``cv.line`` (or one line), markers at the
    best run per knob value. A text knob (precision, quant) is a categorical axis."""
    fig = go.Figure()
    palette = px_colors.qualitative.Dark24 + px_colors.qualitative.Light24
    pts = cv.points
    groups = [(None, pts)] if not cv.line else list(pts.groupby(pts[cv.line].astype("string"), sort=True))
    for i, (name, part) in enumerate(groups):
        fig.add_trace(go.Scatter(x=part[x], y=part[y], mode="lines+markers", name=plain(name) if name else y,
                                 line=dict(width=2, color=palette[i % len(palette)]), marker=dict(size=8),
                                 customdata=run_ids(part), text=hover_text(part, [y], label),
                                 hovertemplate=f"{plain(x)}: %{{x}}<br>%{{text}}<extra></extra>"))
    numeric = pd.api.types.is_numeric_dtype(pts[x])
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=40, b=10), hoverlabel=dict(align="left"),
                      legend=dict(itemsizing="constant"),
                      xaxis=dict(title=dict(text=plain(label(x))), type=("log" if log_x else "linear") if numeric else "category"),
                      yaxis=dict(title=dict(text=plain(label(y))), type="log" if log_y else "linear"))
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

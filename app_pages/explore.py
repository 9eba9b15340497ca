"""Explore: the Pareto front of the stored runs (landing page). Reads widgets, calls
engine.explore, draws. The view state lives in the URL query string (engine.explore.ViewState)."""
from __future__ import annotations

from dataclasses import astuple

import pandas as pd
import streamlit as st

from engine.compare import MAX_RUNS
from engine.counts import counted
from engine.derived import settings_params
from engine.explore import (
    CHOICE_FILTERS,
    KNOB_AXES,
    RANGE_FILTERS,
    MixedWorkUnits,
    ViewState,
    axis_label,
    build_view,
    curve_view,
    default_direction,
    direction,
    filter_options,
    missing_objectives,
    state_from_params,
    state_to_params,
    work_units,
)
from engine.fields import CI_LO, CONFIG_COLUMNS, SOURCE_SUFFIX
from engine.filters import describe
from engine.quality import headline
from ui.figures import curve_figure, front_figure, parcoords_figure
from ui.state import open_store, read_params, settings, store_stamp, write_params
from ui.text import literal

NONE = "(none)"
GROUP_LABELS = {NONE: "one front", "model": "front per model", "hardware": "front per hardware"}
Z_LABELS = {"colour": "as colour", "3d": "3-D view"}
PERSIST = "session"  # widget values survive a visit to another page


@st.cache_data(show_spinner=False, max_entries=8)
def cached_options(stamp: tuple) -> dict:
    """Filter option lists, recomputed only when the store file changes."""
    with open_store(show_wait=False) as store:  # no element inside a cached function
        return filter_options(store)


@st.cache_data(show_spinner=False, max_entries=16)
def cached_view(stamp: tuple, prices: tuple, view_params: tuple, _store, _state: ViewState):
    """The front, the work units and the task's headline quality metric of one view, kept per
    store file (``stamp``), derived-metric settings (``prices``) and view (its URL form, ``view_params``):
    a rerun that changes none of them (a selection on the plot or in the table, a return to the
    page) does not query the store again (build_view takes 0.3-0.4 s at 1,000,000 runs)."""
    view = build_view(_store, _state)
    return view, work_units(_store, _state.filters), headline(_store, _state.filters)


def selected_runs(plot, table_event, table) -> list[str]:
    """Run ids picked on the plot (points, box or lasso: customdata) and in the table (rows), in order."""
    ids = []
    for p in (plot.selection.points if plot else []):
        cd = p.get("customdata")
        ids.append(cd[0] if isinstance(cd, list) else cd)
    if table_event and "run_id" in table.columns:
        ids += [table["run_id"].iloc[r] for r in table_event.selection.rows if r < len(table)]
    return [str(i) for i in dict.fromkeys(ids) if i]


def show_curves(cv, x: str, y: str, label, y_dir: str, log_x: bool, log_y: bool) -> None:
    """The metric-against-knob view: a line per model / GPU (or one), the best run per knob value."""
    st.caption(f"{counted(cv.n_runs, 'run')} match · the {'lowest' if y_dir == 'min' else 'highest'} {y} at each {x}"
               + (f", one line per {cv.line}" if cv.line else " (pick 'front per model' or 'per hardware' for a line each)")
               + (f" · {counted(cv.n_missing, 'run')} lack {x} or {y}" if cv.n_missing else ""))
    if cv.points.empty:
        st.warning(literal(f"None of the matching runs has both {x} and {y}."))
        return
    plot = st.plotly_chart(curve_figure(cv, x, y, label, log_x=log_x, log_y=log_y), key="curve_plot",
                           config={"displaylogo": False}, on_select="rerun", selection_mode=("points", "box", "lasso"))
    st.subheader(f"{y} against {x}")
    table = cv.points
    picked = st.dataframe(table, key="curve_table", hide_index=True, on_select="rerun", selection_mode="multi-row")
    chosen = selected_runs(plot, picked, table)
    if len(chosen) >= 2:
        st.page_link("app_pages/compare.py", label=f"Compare the {min(len(chosen), MAX_RUNS)} selected runs",
                     icon=":material/compare_arrows:", query_params={"runs": ",".join(chosen[:MAX_RUNS])})


def widgets_from_state(store, state: ViewState, options: dict) -> None:
    """Put a ViewState into the widgets' session-state keys (first load of a session)."""
    ss = st.session_state
    ss["x"], ss["y"] = state.x, state.y
    ss["z"] = state.z or NONE
    ss["z_mode"] = state.z_mode
    for o, d in state.dirs.items():
        ss[f"dir_{o}"] = d
    ss["log_x"], ss["log_y"] = state.log_x, state.log_y
    ss["group"] = state.group or NONE
    ss["ci"] = state.intervals
    for name in CHOICE_FILTERS:
        ss[f"f_{name}"] = list(state.filters.get(name, []))
    for name in RANGE_FILTERS:
        vals = options.get(name) or []
        if len(vals) < 2:
            continue
        cond = state.filters.get(name) or {}
        lo = cond.get("min") if isinstance(cond, dict) else None
        hi = cond.get("max") if isinstance(cond, dict) else None
        inside = [v for v in vals if (lo is None or v >= lo) and (hi is None or v <= hi)] or vals
        ss[f"_init_r_{name}"] = (inside[0], inside[-1])  # a range slider takes its shape from value=


def state_from_widgets(store, options: dict) -> ViewState:
    ss = st.session_state
    z = ss["z"] if ss.get("z", NONE) != NONE else None
    state = ViewState(x=ss["x"], y=ss["y"], z=z, z_mode=ss.get("z_mode", "colour"), filters={})
    for o in state.objectives:
        d = ss.get(f"dir_{o}")
        if d and d != default_direction(store, o):
            state.dirs[o] = d
    if state.dirs:  # the URL lists every objective's direction once any differs from the registry
        state.dirs = {o: ss.get(f"dir_{o}") or default_direction(store, o) for o in state.objectives}
    state.log_x, state.log_y = bool(ss.get("log_x")), bool(ss.get("log_y"))
    state.group = ss["group"] if ss.get("group", NONE) != NONE else None
    state.intervals = bool(ss.get("ci", True))
    for name in CHOICE_FILTERS:
        if ss.get(f"f_{name}"):
            state.filters[name] = list(ss[f"f_{name}"])
    for name in RANGE_FILTERS:
        vals = options.get(name) or []
        lo, hi = ss.get(f"r_{name}", (None, None))
        if len(vals) >= 2 and (lo, hi) != (vals[0], vals[-1]):
            state.filters[name] = {"min": lo, "max": hi}
    return state


st.title("Explore")
st.caption("The Pareto-optimal runs for the objectives you pick, among the runs that pass the filters.")

with open_store() as store:
    stamp = store_stamp()  # the store file as this run found it: the key of both caches below
    options = cached_options(stamp)
    metric_fields = {f.name: f for f in store.metrics()}
    metrics = list(metric_fields)
    if len(metrics) < 2:
        st.info("The store holds fewer than two metrics; import runs first.")
        st.stop()
    if "_explore_loaded" not in st.session_state:
        state, notes = state_from_params(store, read_params(), options)
        widgets_from_state(store, state, options)
        st.session_state["_explore_loaded"] = True
        st.session_state["_explore_notes"] = notes
    for note in st.session_state.get("_explore_notes", []):
        st.info(literal(note))  # it quotes the link's values: shown as text, never as Markdown

    knobs = [k for k in KNOB_AXES if store.has_field(k) and store.field(k).role == "config"]

    def metric_label(name: str) -> str:
        if name in knobs:
            return f"{name} (knob)"
        unit = metric_fields[name].unit
        return f"{name} ({unit})" if unit else name

    # -- objectives -------------------------------------------------------------------------
    cx, cy, cz, cg = st.columns([3, 3, 3, 2])
    with cx:
        x = st.selectbox("x objective or knob", metrics + knobs, key="x", format_func=metric_label,
                         persist_state=PERSIST)
        if x not in knobs:
            st.session_state.setdefault(f"dir_{x}", default_direction(store, x))
            st.radio("x direction", ["min", "max"], key=f"dir_{x}", horizontal=True, label_visibility="collapsed",
                     persist_state=PERSIST)
        st.toggle("log x", key="log_x", persist_state=PERSIST)
    with cy:
        y = st.selectbox("y objective", metrics, key="y", format_func=metric_label, persist_state=PERSIST)
        st.session_state.setdefault(f"dir_{y}", default_direction(store, y))
        if y != x:  # one direction widget per metric
            st.radio("y direction", ["min", "max"], key=f"dir_{y}", horizontal=True, label_visibility="collapsed",
                     persist_state=PERSIST)
        st.toggle("log y", key="log_y", persist_state=PERSIST)
    with cz:
        z = st.selectbox("third objective (optional)", [NONE] + metrics, key="z",
                         format_func=lambda n: n if n == NONE else metric_label(n), persist_state=PERSIST)
        if z != NONE and z not in (x, y):
            st.session_state.setdefault(f"dir_{z}", default_direction(store, z))
            st.radio("z direction", ["min", "max"], key=f"dir_{z}", horizontal=True, label_visibility="collapsed",
                     persist_state=PERSIST)
            st.radio("show third", list(Z_LABELS), key="z_mode", format_func=Z_LABELS.get, horizontal=True,
                     persist_state=PERSIST)
    with cg:
        st.radio("fronts", list(GROUP_LABELS), key="group", format_func=GROUP_LABELS.get, persist_state=PERSIST)
        if any(store.has_field(o + CI_LO) for o in (x, y, z)):  # runs measured with intervals exist
            st.toggle("95 % intervals", key="ci", persist_state=PERSIST,
                      help="Error bars on the front, and runs the front beats only by point values kept as tied")

    # -- filters (sidebar) ------------------------------------------------------------------
    # In a popover, which the browser draws only when opened (it stays open while the front redraws
    # beside it), with the filters in force said in words below it: drawn in the sidebar, the seven
    # widgets took 0.1-0.13x of the minimal page in Explore's time to its front in chromium (1.54x
    # against 1.41x, and 1.46x against 1.35x, paired runs in turns; a collapsed expander saved nothing).
    with st.sidebar.popover("Filters", width="stretch"):
        for name in CHOICE_FILTERS:
            st.multiselect(name, options.get(name, []), key=f"f_{name}", placeholder="all",
                           persist_state=PERSIST)
        for name in RANGE_FILTERS:
            vals = options.get(name) or []
            if len(vals) >= 2:
                init = st.session_state.get(f"_init_r_{name}", (vals[0], vals[-1]))
                st.select_slider(name, vals, value=init, key=f"r_{name}", persist_state=PERSIST)

    state = state_from_widgets(store, options)
    said = describe(state.filters)
    st.sidebar.caption(literal(f"Runs where {said}." if said else "No filters: every run."))
    write_params(state_to_params(state) | settings_params(settings()))  # a cost or carbon view needs its prices

    # -- a metric against a knob -------------------------------------------------------------
    if x in knobs:
        try:
            cv = curve_view(store, x, y, direction(store, state, y) == "max", state.filters, line=state.group)
        except MixedWorkUnits as e:
            st.warning(literal(f"{e} Choose a task in the sidebar's Filters."))
            st.stop()
        units = work_units(store, state.filters)
        unit = units[0] if len(units) == 1 else None
        show_curves(cv, x, y, lambda n: n if n in knobs else axis_label(store, n, unit),
                    direction(store, state, y), state.log_x, state.log_y)
        st.stop()

    # -- the view ---------------------------------------------------------------------------
    if len(set(state.objectives)) != len(state.objectives):
        st.warning("Pick different metrics for the objectives.")
        st.stop()
    try:
        view, units, quality_axis = cached_view(stamp, astuple(settings()),
                                                tuple(sorted(state_to_params(state).items())), store, state)
    except MixedWorkUnits as e:
        st.warning(literal(f"{e} Choose a task in the sidebar's Filters."))
        st.stop()
    unit = units[0] if len(units) == 1 else None

    def label(name: str) -> str:
        return axis_label(store, name, unit)

    if view.n_runs == 0:
        st.info(literal(f"No runs match the filters{f' ({said})' if said else ''}; widen or clear some of them."))
        st.stop()
    if view.front.empty:
        gone = missing_objectives(store, state.objectives, state.filters)
        hint = (f" These runs' quality metric is {quality_axis}."
                if quality_axis and quality_axis not in state.objectives else "")
        st.warning(literal(f"None of the {view.n_runs:,} matching runs has a value for {' or '.join(gone or state.objectives)}; "
                           f"pick another objective or change the filters.{hint}"))
        st.stop()

n_tied = 0 if view.tied is None else len(view.tied)
st.caption(f"{counted(view.n_runs, 'run')} match · **{len(view.front):,} on the front** · "
           + (f"{n_tied:,} tied with it (not beaten at 95 %) · " if view.intervals else "")
           + f"{view.n_dominated:,} dominated" + (f" · {view.n_missing:,} lack an objective" if view.n_missing else ""))
for gap in view.lacking:  # named, not dropped silently
    st.caption(f"ℹ️ {literal(gap.sentence())} They are left out of this view.")
for warning in view.warnings:
    if not (view.lacking and warning.endswith("are left out.")):
        st.caption(f"ℹ️ {literal(warning)}")

fig = front_figure(view, state.objectives, label, group=state.group, z_mode=state.z_mode,
                   log_x=state.log_x, log_y=state.log_y, also=[quality_axis] if quality_axis else [])
plot = st.plotly_chart(fig, key="front_plot", config={"displaylogo": False}, on_select="rerun",
                       selection_mode=("points", "box", "lasso"))

st.subheader("Runs on the front" + (" and tied with it" if n_tied else ""))
rows = view.front
if view.intervals:  # each row says whether the front beats it with confidence
    rows = pd.concat([view.front.assign(membership="front"), view.tied.assign(membership="tied")], ignore_index=True)
first = [c for c in ("membership", *CONFIG_COLUMNS) if c in rows.columns]
order = first + [o for o in state.objectives if o not in first]
if quality_axis and quality_axis not in order and quality_axis in rows.columns:
    order.append(quality_axis)
order += [c + SOURCE_SUFFIX for c in order if c + SOURCE_SUFFIX in rows.columns]
order += [c for c in rows.columns if c not in order]
table = rows[order]
picked = st.dataframe(table, key="front_table", hide_index=True, on_select="rerun", selection_mode="multi-row",
             column_config={o: st.column_config.NumberColumn(label(o), format="%.4g") for o in state.objectives}
             | {c: st.column_config.TextColumn(c, width="medium") for c in table.columns if c.endswith(SOURCE_SUFFIX)})
if quality_axis and quality_axis in table.columns and table[quality_axis].isna().any():
    st.caption(f"An empty {literal(quality_axis)} cell means not measured: no published or measured figure for that run.")
chosen = selected_runs(plot, picked, table)
if chosen:
    n = len(chosen)
    if n >= 2:
        st.page_link("app_pages/compare.py", label=f"Compare the {min(n, MAX_RUNS)} selected runs", icon=":material/compare_arrows:",
                     query_params={"runs": ",".join(chosen[:MAX_RUNS])})
    st.caption(f"{counted(n, 'run')} selected on the plot or in the table"
               + (f"; Compare takes the first {MAX_RUNS}." if n > MAX_RUNS else "." if n > 1 else "; select another to compare."))
st.download_button("Download the front as CSV", table.to_csv(index=False).encode(), file_name="pareto_front.csv",
                   mime="text/csv", on_click="ignore")

st.subheader("Parallel coordinates")
# Drawn on request: a WebGL chart, it took most of the page's time in a browser without a GPU
# (bench/bench_browser.py), and the front above is what most visits are for.
if st.toggle("Show the front on parallel coordinates", key="pc_show", persist_state=PERSIST):
    extra = [m for m in metrics if m not in state.objectives and m in view.front.columns and view.front[m].notna().any()]
    st.session_state["pc_more"] = [m for m in st.session_state.get("pc_more", ["throughput", "power_w"]) if m in extra]
    more = st.multiselect("more metrics", extra, key="pc_more", format_func=label)
    dims = state.objectives + [c for c in ("batch_size", "num_gpus") if c in view.front.columns] + list(more)
    st.plotly_chart(parcoords_figure(view, dims, label), key="parcoords")
    st.caption("The front in red; a sample of up to 1,000 dominated runs in grey. Drag along an axis to brush.")

"""Queries behind the Explore page and `engine pareto`: the front of the filtered runs, plus a
bounded sample of dominated runs for drawing. Two steps keep 1e6 runs fast: fetch only the
objective columns (numpy) to find the front, then fetch full rows just for the front and sample."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine import filters as filter_lang
from engine import pareto, quality
from engine.counts import counted
from engine.density import DENSITY_FROM, HOW_TO_READ, Density, density
from engine.fields import CI_HI, CI_LO, PER_WORK_UNIT, SOURCE_SUFFIX
from engine.store import Store, first_row

HOVER_COLUMNS = ("run_id", "task", "model", "hardware", "num_gpus", "precision", "batch_size", "work_unit", "source")


class MixedWorkUnits(ValueError):
    """The filtered runs count energy / throughput in different work units."""


# The dominated runs drawn behind the front: a random sample of at most this many. With the front,
# it stays under ui.figures.SVG_MAX, so the figure is drawn as SVG, not in WebGL, which a browser
# without a GPU renders in software: at 1,000,000 runs, a sample of 5,000 (WebGL, a 1.8 MB figure)
# had Explore drawn in 2.18 s against 1.73 s for 2,000 (headless chromium, medians of three rounds).
DRAWN_DOMINATED = 2000


@dataclass
class FrontView:
    front: pd.DataFrame  # non-dominated runs, sorted by the first objective
    dominated: pd.DataFrame  # a bounded random sample of the dominated runs
    n_runs: int  # runs that passed the filters
    n_dominated: int  # all dominated runs (the sample may hold fewer)
    n_missing: int  # runs left out because an objective is missing
    warnings: list[str] = field(default_factory=list)
    lacking: list[quality.Lacking] = field(default_factory=list)  # per objective: runs without a value, and whose
    tied: pd.DataFrame | None = None  # runs dominated by the point values but not with 95 % confidence
    intervals: list[str] = field(default_factory=list)  # objectives whose runs carry confidence intervals
    density: Density | None = None  # where all the dominated runs lie on the first two objectives, when many


def work_units(store: Store, filters: Mapping | None) -> list[str]:
    if not store.has_field("work_unit"):
        return []
    return store.distinct("work_unit", filters)


def check_work_units(store: Store, objectives: Sequence[str], filters: Mapping | None) -> None:
    per_unit = [o for o in objectives if o in PER_WORK_UNIT]
    units = work_units(store, filters)
    if per_unit and len(units) > 1:
        raise MixedWorkUnits(
            f"{' and '.join(per_unit)} {'is' if len(per_unit) == 1 else 'are'} counted per work unit and the "
            f"selected runs mix {', '.join(units)}; "
            "pick one task (or work_unit) to compare like with like."
        )


def pareto_view(
    store: Store,
    objectives: Sequence[str],
    maximize: Sequence[bool],
    filters: Mapping | None = None,
    columns: Sequence[str] | None = None,
    group_by: str | None = None,
    sample_size: int = DRAWN_DOMINATED,
    seed: int = 0,
    use_intervals: bool = True,
    density_axes: tuple[bool, bool] | None = None,
) -> FrontView:
    """The non-dominated runs for ``objectives`` among the filtered runs (per ``group_by`` value
    when given: a front per model or per hardware), with a sample of the dominated ones. Where the
    objectives carry confidence intervals (and ``use_intervals``), runs dominated by the point values
    but not with 95 % confidence are kept apart as ``tied``. With ``density_axes`` (whether the x and
    y axes are log), more than DENSITY_FROM dominated runs are also counted on a grid over the first
    two objectives (engine.density), for drawing all of them at once."""
    if len(objectives) < 1:
        raise ValueError("Pick at least one objective.")
    check_work_units(store, objectives, filters)
    where, params = store.where(filters)
    intervals = [o for o in objectives if use_intervals and store.has_field(o + CI_LO) and store.has_field(o + CI_HI)]
    ci = [o + sfx for o in intervals for sfx in (CI_LO, CI_HI)]
    obj_sql = ", ".join([store.select_sql(o) for o in objectives] + [store.select_sql(c) for c in ci])
    grp_sql = f", {store.select_sql(group_by)}" if group_by else ""
    data = store.execute(f"SELECT rowid, {obj_sql}{grp_sql} FROM runs {where}", params).fetchnumpy()
    rowid = np.asarray(data["rowid"])

    def matrix(names: list[str]) -> np.ndarray:
        # fetchnumpy gives masked arrays where there are NULLs; a NULL must become NaN (missing), not 0
        return (np.column_stack([np.ma.filled(np.ma.asarray(data[c]).astype(float), np.nan) for c in names])
                if len(rowid) else np.empty((0, len(names))))

    pts = matrix(list(objectives))
    if intervals:  # a NaN bound means no interval: membership then uses the point value
        bound = {sfx: matrix([o + sfx if o in intervals else o for o in objectives]) for sfx in (CI_LO, CI_HI)}
        for j, o in enumerate(objectives):
            if o not in intervals:
                bound[CI_LO][:, j] = bound[CI_HI][:, j] = np.nan
    missing = np.isnan(pts).any(axis=1)
    mask, tied_mask = np.zeros(len(rowid), bool), np.zeros(len(rowid), bool)
    if group_by:
        groups = pd.Series(np.ma.filled(np.ma.asarray(data[group_by]).astype(object), None)).fillna("(none)").to_numpy()
        parts = [groups == g for g in pd.unique(groups)]
    else:
        parts = [slice(None)]
    for sel in parts:
        if intervals:
            member = pareto.membership(pts[sel], maximize, bound[CI_LO][sel], bound[CI_HI][sel])
            mask[sel], tied_mask[sel] = member == pareto.FRONT, member == pareto.TIED
        else:
            mask[sel] = pareto.non_dominated(pts[sel], maximize)
    dominated_idx = np.flatnonzero(~mask & ~tied_mask & ~missing)
    n_dominated = len(dominated_idx)
    grid = None
    if density_axes is not None and len(objectives) >= 2 and n_dominated > DENSITY_FROM:
        grid = density(pts[dominated_idx, 0], pts[dominated_idx, 1], *density_axes)
    rng = np.random.default_rng(seed)
    if len(dominated_idx) > sample_size:
        dominated_idx = np.sort(rng.choice(dominated_idx, sample_size, replace=False))

    cols = list(columns) if columns else [c for c in store.non_empty_columns(filters)]
    sources = [o + SOURCE_SUFFIX for o in objectives]
    for c in list(HOVER_COLUMNS) + list(objectives) + sources + ci + ([group_by] if group_by else []):
        if c not in cols and store.has_field(c):
            cols.append(c)
    front = _rows(store, cols, rowid[mask]).sort_values(list(objectives[:1]), ascending=not maximize[0], kind="stable")
    dominated = _rows(store, cols, rowid[dominated_idx])
    tied = _rows(store, cols, rowid[tied_mask]) if intervals else None
    warnings, lacking = [], []
    if missing.any():
        warnings.append(f"{counted(int(missing.sum()), 'run')} lack {' or '.join(objectives)} and are left out.")
        lacking = [gap for o in objectives if (gap := quality.lacking(store, o, filters)).runs]
    if grid is not None:
        warnings.append(f"The {n_dominated:,} dominated runs are drawn as a shaded density ({HOW_TO_READ})"
                        + (f"; {counted(grid.left_out, 'run')} with a value <= 0 cannot be placed on the log axis."
                           if grid.left_out else "."))
    elif sample_size and n_dominated > len(dominated_idx):
        warnings.append(f"Showing the whole front and a random sample of {len(dominated_idx):,} of "
                        f"{n_dominated:,} dominated runs.")
    return FrontView(front.reset_index(drop=True), dominated, len(rowid), n_dominated, int(missing.sum()), warnings,
                     lacking, tied, intervals, grid)


def _rows(store: Store, cols: Sequence[str], rowids: np.ndarray) -> pd.DataFrame:
    select = ", ".join(store.select_sql(c) for c in cols)
    ids = pd.DataFrame({"rid": rowids.astype("int64")})
    with store.registered("_ids", ids):
        return store.execute(f"SELECT {select} FROM runs WHERE rowid IN (SELECT rid FROM _ids)").df()


def front_table(store: Store, objectives: Sequence[str], maximize: Sequence[bool], filters: Mapping | None = None) -> FrontView:
    """The front with every non-empty column, as `engine pareto` prints it; where the objectives
    carry confidence intervals, the tied runs follow it and every row says its ``membership``."""
    view = pareto_view(store, objectives, maximize, filters, sample_size=0)
    if view.intervals:
        view.front = pd.concat([view.front.assign(membership=pareto.FRONT), view.tied.assign(membership=pareto.TIED)],
                               ignore_index=True)
    return view


# -- the Explore view as plain data: state <-> URL query string, filter options, labels --------

# Knobs Explore's x axis can take instead of a metric ("energy per token against batch size").
KNOB_AXES = ("batch_size", "num_gpus", "precision", "quant", "power_limit_w", "prompt_len", "gen_len", "seq_len",
             "threads", "compile")
CHOICE_FILTERS = ("task", "hardware", "precision", "model", "source")  # multiselects of text values
RANGE_FILTERS = ("batch_size", "num_gpus")  # numeric ranges
GROUPS = ("model", "hardware")
Z_MODES = ("colour", "3d")


@dataclass
class ViewState:
    """What the Explore page shows; round-trips through the URL query string."""

    x: str = "energy_j"
    y: str = "itl_p90_ms"
    z: str | None = None  # optional third objective
    z_mode: str = "colour"  # colour | 3d
    dirs: dict[str, str] = field(default_factory=dict)  # objective -> min | max (registry default when absent)
    log_x: bool = False
    log_y: bool = False
    group: str | None = None  # None | model | hardware
    intervals: bool = True  # use confidence intervals where runs carry them (error bars, tied runs)
    filters: dict = field(default_factory=lambda: {"task": ["gpqa"]})

    @property
    def objectives(self) -> list[str]:
        return [self.x, self.y] + ([self.z] if self.z else [])


def default_direction(store: Store, name: str) -> str:
    return store.field(name).direction or "min"


def direction(store: Store, state: ViewState, name: str) -> str:
    return state.dirs.get(name) or default_direction(store, name)


def maximize_flags(store: Store, state: ViewState) -> list[bool]:
    return [direction(store, state, o) == "max" for o in state.objectives]


def filter_options(store: Store) -> dict:
    """Values offered by the filter widgets: sorted distinct values for the text filters, sorted
    distinct numbers for the numeric ones (the widgets' ranges)."""
    out = {}
    for name in CHOICE_FILTERS + RANGE_FILTERS:
        out[name] = [v.item() if hasattr(v, "item") else v for v in store.distinct(name)] if store.has_field(name) else []
    return out


def state_to_params(state: ViewState) -> dict[str, str]:
    """The query string of a view: x, y, z, zmode, dirs, log, group, ci (off), and one param per filter
    column as engine.filters writes it (comma-separated values, or LO..HI for a range)."""
    p = {"x": state.x, "y": state.y}
    if state.z:
        p["z"] = state.z
        if state.z_mode != "colour":
            p["zmode"] = state.z_mode
    if state.dirs:
        p["dirs"] = ",".join(state.dirs.get(o, "") for o in state.objectives)
    logs = [a for a, on in (("x", state.log_x), ("y", state.log_y)) if on]
    if logs:
        p["log"] = ",".join(logs)
    if state.group:
        p["group"] = state.group
    if not state.intervals:
        p["ci"] = "off"
    p.update(filter_lang.params(state.filters))
    return p


def state_from_params(store: Store, params: Mapping[str, str], options: Mapping | None = None) -> tuple[ViewState, list[str]]:
    """Read a view from query params. Params this page does not know are ignored; names that are
    not metrics / filter columns of the store, and values the data does not hold, are dropped
    with a note (returned as the second item). No known param at all -> the default view."""
    known = {"x", "y", "z", "zmode", "dirs", "log", "group", "ci", *CHOICE_FILTERS, *RANGE_FILTERS}
    params = {k: v for k, v in params.items() if k in known}
    notes: list[str] = []
    if not params:
        return landing_view(store), notes
    metrics = {f.name for f in store.metrics()}
    state = ViewState(filters={})

    knobs = {k for k in KNOB_AXES if store.has_field(k) and store.field(k).role == "config"}

    def metric(key: str, fallback: str | None) -> str | None:
        v = params.get(key)
        if v is None or v == "":
            return fallback
        if key == "x" and v in knobs:  # a metric against a knob
            return v
        if v not in metrics:
            notes.append(f"The link names an unknown metric '{v}' for {key}; using {fallback or 'none'}.")
            return fallback
        return v

    state.x = metric("x", state.x)
    state.y = metric("y", state.y)
    state.z = metric("z", None)
    if params.get("zmode") in Z_MODES:
        state.z_mode = params["zmode"]
    dirs = params.get("dirs", "").split(",") if params.get("dirs") else []
    state.dirs = {o: d for o, d in zip(state.objectives, dirs) if d in ("min", "max")}
    logs = set(params.get("log", "").split(","))
    state.log_x, state.log_y = "x" in logs, "y" in logs
    state.group = params.get("group") if params.get("group") in GROUPS else None
    state.intervals = params.get("ci") != "off"
    options = options if options is not None else filter_options(store)
    for name in CHOICE_FILTERS + RANGE_FILTERS:
        raw = params.get(name)
        if not raw or not store.has_field(name):
            continue
        if name in RANGE_FILTERS and ".." in raw:
            try:
                state.filters.update(filter_lang.to_mapping([filter_lang.parse_param(name, raw, store)]))
            except filter_lang.FilterError:  # nan would match nothing, silently
                notes.append(f"The link's {name} range '{raw}' is not LO..HI of finite numbers; ignored.")
            continue
        allowed = options.get(name, [])
        values = []
        for v in raw.split(","):  # each value on its own: one the store lacks is named and dropped
            try:
                value = filter_lang.parse_param(name, v, store).value[0]
            except filter_lang.FilterError:
                value = v.strip()
            match = next((a for a in allowed if a == value or str(a) == str(value)), None)
            if match is None:
                notes.append(f"The link's {name} value '{v.strip()}' is not in the store; ignored.")
            else:
                values.append(match)
        if values:
            state.filters[name] = values
    return state, notes


def landing_view(store: Store) -> ViewState:
    """The view a first visit opens on: the gpqa task (or the first task), its headline quality
    against energy per work unit where it has a quality figure, else p90 inter-token latency (or
    latency) against energy; energy on a log axis, a latency too."""
    tasks = store.distinct("task") if store.has_field("task") else []
    task = "gpqa" if "gpqa" in tasks else tasks[0] if tasks else None
    filters = {"task": [task]} if task else {}
    have = set(store.non_empty_columns(filters))
    metrics = [f.name for f in store.metrics() if f.name in have]
    head = quality.headline(store, filters)
    x = next((m for m in ("energy_j", "latency_ms", "throughput") if m in metrics and m != head), None)
    y = head or next((m for m in ("itl_p90_ms", "latency_ms") if m in metrics and m != x), None)
    if x is None or y is None:  # a store without the usual metrics: the first two it has
        pick = ([y] if y else []) + [m for m in metrics or [f.name for f in store.metrics()] if m != y]
        y, x = (pick + ["", ""])[:2]
    return ViewState(x=x, y=y, log_x=True, log_y=y != head, filters=filters)


def build_view(store: Store, state: ViewState, sample_size: int = DRAWN_DOMINATED, columns: Sequence[str] | None = None) -> FrontView:
    """pareto_view for a ViewState (raises MixedWorkUnits; ValueError for a repeated objective)."""
    if len(set(state.objectives)) != len(state.objectives):
        raise ValueError("Pick different metrics for the objectives.")
    flat = len(state.objectives) < 3 or state.z_mode != "3d"  # a 3-D view draws its dominated runs as points
    return pareto_view(store, state.objectives, maximize_flags(store, state), state.filters,
                       columns=columns, group_by=state.group, sample_size=sample_size, use_intervals=state.intervals,
                       density_axes=(state.log_x, state.log_y) if flat else None)


def knob_axes(store: Store, filters: Mapping | None = None) -> list[str]:
    """The knobs the filtered runs vary (more than one value), in KNOB_AXES order."""
    return [k for k in KNOB_AXES if store.has_field(k) and store.field(k).role == "config"
            and len(store.distinct(k, filters)) > 1]


@dataclass
class CurveView:
    """A metric against a knob: per line (model, hardware or all runs) and knob value, the run with
    the best value of the metric (ML.ENERGY's energy-vs-batch-size plot, optuna's slice plot)."""
    points: pd.DataFrame  # one row per line and knob value, sorted
    line: str | None  # the column that splits lines, or None for one line
    n_runs: int  # runs that passed the filters
    n_missing: int  # of those, runs without the knob or the metric


def curve_view(store: Store, knob: str, metric: str, maximize: bool, filters: Mapping | None = None,
               line: str | None = None) -> CurveView:
    if not store.has_field(knob) or store.field(knob).role != "config":
        raise ValueError(f"'{knob}' is not a configuration field of this store.")
    check_work_units(store, [metric], filters)
    where, params = store.where(filters)
    keys = [c for c in ([line] if line else []) + [knob]]
    cols = list(dict.fromkeys(keys + [metric] + [c for c in HOVER_COLUMNS if store.has_field(c)]))
    select = ", ".join(store.select_sql(c) for c in cols)
    df = store.execute(f"SELECT {select} FROM runs {where}", params).df()
    have = df.dropna(subset=keys + [metric])
    best = have.sort_values(metric, ascending=not maximize, kind="stable").drop_duplicates(keys)
    best = best.sort_values(keys, kind="stable").reset_index(drop=True)
    return CurveView(best, line, len(df), len(df) - len(have))


def missing_objectives(store: Store, objectives: Sequence[str], filters: Mapping | None) -> list[str]:
    """Objectives that no run among the filtered ones has a value for."""
    where, params = store.where(filters)
    counts = first_row(store.execute(
        f"SELECT {', '.join(f'count({store.column_sql(o)})' for o in objectives)} FROM runs {where}", params))
    return [o for o, c in zip(objectives, counts) if not c]


def axis_label(store: Store, name: str, work_unit: str | None) -> str:
    """'energy_j (J per token)', 'throughput (token/s)', 'itl_p90_ms (ms)'."""
    f = store.field(name)
    unit = f.unit
    if name in PER_WORK_UNIT and work_unit:
        unit = f"{work_unit}/s" if unit == "1/s" else f"{unit} per {work_unit}" if unit else f"per {work_unit}"
    return f"{name} ({unit})" if unit else name

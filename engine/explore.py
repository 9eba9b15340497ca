"""Queries behind the Explore page and `engine pareto`: the front of the filtered runs, plus a
bounded sample of dominated runs for drawing. Two steps keep 1e6 runs fast: fetch only the
objective columns (numpy) to find the front, then fetch full rows just for the front and sample."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine import pareto
from engine.fields import PER_WORK_UNIT
from engine.store import Store

HOVER_COLUMNS = ("run_id", "task", "model", "hardware", "num_gpus", "precision", "batch_size", "work_unit", "source")


class MixedWorkUnits(ValueError):
    """The filtered runs count energy / throughput in different work units."""


@dataclass
class FrontView:
    front: pd.DataFrame  # non-dominated runs, sorted by the first objective
    dominated: pd.DataFrame  # a bounded random sample of the dominated runs
    n_runs: int  # runs that passed the filters
    n_dominated: int  # all dominated runs (the sample may hold fewer)
    n_missing: int  # runs left out because an objective is missing
    warnings: list[str] = field(default_factory=list)


def work_units(store: Store, filters: Mapping | None) -> list[str]:
    if not store.has_field("work_unit"):
        return []
    return store.distinct("work_unit", filters)


def check_work_units(store: Store, objectives: Sequence[str], filters: Mapping | None) -> None:
    per_unit = [o for o in objectives if o in PER_WORK_UNIT]
    units = work_units(store, filters)
    if per_unit and len(units) > 1:
        raise MixedWorkUnits(
            f"{', '.join(per_unit)} count per work unit and the selected runs mix {', '.join(units)}; "
            "pick one task (or work_unit) to compare like with like."
        )


def pareto_view(
    store: Store,
    objectives: Sequence[str],
    maximize: Sequence[bool],
    filters: Mapping | None = None,
    columns: Sequence[str] | None = None,
    group_by: str | None = None,
    sample_size: int = 5000,
    seed: int = 0,
) -> FrontView:
    """The non-dominated runs for ``objectives`` among the filtered runs (per ``group_by`` value
    when given: a front per model or per hardware), with a sample of the dominated ones."""
    if len(objectives) < 1:
        raise ValueError("Pick at least one objective.")
    check_work_units(store, objectives, filters)
    where, params = store.where(filters)
    obj_sql = ", ".join(store.select_sql(o) for o in objectives)
    grp_sql = f", {store.select_sql(group_by)}" if group_by else ""
    data = store.con.execute(f"SELECT rowid, {obj_sql}{grp_sql} FROM runs {where}", params).fetchnumpy()
    rowid = np.asarray(data["rowid"])
    pts = np.column_stack([np.asarray(data[o], dtype=float) for o in objectives]) if len(rowid) else np.empty((0, len(objectives)))
    missing = np.isnan(pts).any(axis=1)
    mask = np.zeros(len(rowid), dtype=bool)
    if group_by:
        groups = pd.Series(np.asarray(data[group_by], dtype=object)).fillna("(none)").to_numpy()
        for g in pd.unique(groups):
            sel = groups == g
            mask[sel] = pareto.non_dominated(pts[sel], maximize)
    else:
        mask = pareto.non_dominated(pts, maximize)
    dominated_idx = np.flatnonzero(~mask & ~missing)
    rng = np.random.default_rng(seed)
    if len(dominated_idx) > sample_size:
        dominated_idx = np.sort(rng.choice(dominated_idx, sample_size, replace=False))

    cols = list(columns) if columns else [c for c in store.non_empty_columns(filters)]
    for c in list(HOVER_COLUMNS) + list(objectives) + ([group_by] if group_by else []):
        if c not in cols and store.has_field(c):
            cols.append(c)
    front = _rows(store, cols, rowid[mask]).sort_values(list(objectives[:1]), ascending=not maximize[0], kind="stable")
    dominated = _rows(store, cols, rowid[dominated_idx])
    warnings = []
    if missing.any():
        warnings.append(f"{int(missing.sum())} runs lack {' or '.join(objectives)} and are left out.")
    if sample_size and (~mask & ~missing).sum() > len(dominated_idx):
        warnings.append(f"Showing the whole front and a random sample of {len(dominated_idx):,} of "
                        f"{int((~mask & ~missing).sum()):,} dominated runs.")
    return FrontView(front.reset_index(drop=True), dominated, len(rowid), int((~mask & ~missing).sum()),
                     int(missing.sum()), warnings)


def _rows(store: Store, cols: Sequence[str], rowids: np.ndarray) -> pd.DataFrame:
    select = ", ".join(store.select_sql(c) for c in cols)
    ids = pd.DataFrame({"rid": rowids.astype("int64")})
    store.con.register("_ids", ids)
    try:
        return store.con.execute(f"SELECT {select} FROM runs WHERE rowid IN (SELECT rid FROM _ids)").df()
    finally:
        store.con.unregister("_ids")


def front_table(store: Store, objectives: Sequence[str], maximize: Sequence[bool], filters: Mapping | None = None) -> FrontView:
    """The front with every non-empty column, as `engine pareto` prints it."""
    return pareto_view(store, objectives, maximize, filters, sample_size=0)

"""Quality beside efficiency: join quality scores onto measured runs, and find a task's headline
quality metric.

A quality table has a ``model`` column, optionally ``precision`` and ``task``, one value column
(``accuracy`` by default, or any named metric) and optionally ``source`` (where the figure comes
from; stored as ``<metric>_source`` beside it). Each table row sets that metric on every run with
the same model (and precision / task where the row gives them), in one transaction. A row without
a precision matches every precision of the model, so a figure measured on one variant only must
name its precision: published figures are never copied onto variants they were not measured on.

An attach only ever sets quality metrics (the registry's ``quality`` flag), never a measurement;
refuses values outside the metric's range and two rows that would give one run different values
(a row without a precision beside one with it); and is recorded as an import batch of kind
'quality' with the values it replaced, so deleting that batch undoes it (Store.delete_import).

A task's *headline* quality is ``accuracy`` where its runs have it, else the first named quality
metric they have, in the order of ``engine.fields.QUALITY_FIELDS``, else any other metric the
registry marks as quality (a person's own attached score).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.counts import counted
from engine.fields import (
    QUALITY_BY_NAME,
    Field,
    is_safe_identifier,
    limits,
    normalize_name,
    outside,
    quote,
    refusal,
    source_field,
)
from engine.store import Store, StoreError, first_row

if TYPE_CHECKING:
    import pandas as pd

_PRECISION = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32",
              "torch.bfloat16": "bfloat16", "torch.float16": "float16", "torch.float32": "float32", "fp8": "fp8",
              "float8": "fp8", "int8": "int8", "int4": "int4"}
KEYS = ("model", "precision", "task")

@dataclass
class QualityResult:
    metric: str
    runs_updated: int
    matched: pd.DataFrame  # table rows that matched, with the number of runs each matched
    unmatched: pd.DataFrame  # table rows that matched no run
    batch: str | None = None  # the import batch (kind 'quality') that records the change (None: nothing matched)

    def message(self) -> str:
        rows = len(self.matched)
        return (f"{self.metric}: {counted(self.runs_updated, 'run')} updated from {counted(rows, 'quality row')}; "
                f"{counted(len(self.unmatched), 'row')} matched no run.")


def read_table(path: str | Path, name: str | None = None, task: str | None = None) -> pd.DataFrame:
    """A quality table from a CSV/Parquet/JSON file or an lm-evaluation-harness results file;
    ``task`` picks one task's rows where the file scores several."""
    from engine.importers.detect import parse

    name = name or Path(path).name
    df = parse(path, name).runs
    if "task" in df and df["task"].nunique() > 1 or task is not None:
        tasks = sorted(df["task"].dropna().unique()) if "task" in df else []
        if task is None:
            raise ValueError(f"{name} scores several tasks ({', '.join(tasks)}); choose one of them.")
        if task not in tasks:
            raise ValueError(f"{name} has no task '{task}'; it has {', '.join(tasks) or 'none'}.")
        df = df[df["task"] == task]
    return df.drop(columns=["task"], errors="ignore").reset_index(drop=True)


def prepare(table: pd.DataFrame, metric: str = "accuracy", name: str = "quality table",
            on: tuple[str, ...] = KEYS) -> tuple[pd.DataFrame, list[str]]:
    import pandas as pd
    df = table.rename(columns={c: normalize_name(c) for c in table.columns})
    if "model" not in df:
        raise ValueError(f"{name} needs a 'model' column; it has {', '.join(map(str, table.columns))}.")
    if metric not in df:
        raise ValueError(f"{name} has no '{metric}' column to attach.")
    keys = [k for k in on if k in df and df[k].notna().any()]
    out = df[keys].astype(object).where(df[keys].notna(), None)
    out["row"] = np.arange(1, len(df) + 1)  # as the person counts rows of the table
    if "precision" in out:
        out["precision"] = out["precision"].map(lambda p: None if p is None else _PRECISION.get(str(p).lower(), str(p)))
    values = pd.to_numeric(df[metric], errors="coerce")
    bad = df[metric].notna() & values.isna()
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise ValueError(f"{name}: row {i + 1}, column '{metric}': '{df[metric].iloc[i]}' is not a number.")
    out["value"] = values.astype(float)
    if "source" in df:
        out["source"] = df["source"].astype(object).where(df["source"].notna(), None)
    if out["model"].isna().any():
        i = int(out["model"].isna().to_numpy().nonzero()[0][0])
        raise ValueError(f"{name}: row {i + 1} has no model.")
    out = out[out["value"].notna()].reset_index(drop=True)
    lowered = out[keys].map(lambda v: v.lower() if isinstance(v, str) else v)
    lowered["value"] = out["value"]
    dup = lowered[keys].duplicated() & ~lowered[keys + ["value"]].duplicated()  # same key again, different value
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise ValueError(f"{name}: row {out['row'].iloc[i]} gives a second, different {metric} for the same "
                         f"{', '.join(f'{k}={out[k].iloc[i]}' for k in keys)}.")
    return out.drop_duplicates(subset=keys + ["value"]).reset_index(drop=True), keys


def check_range(df: pd.DataFrame, f: Field, name: str) -> None:
    """Refuse the first value outside the metric's range (engine.fields.limits: accuracy in [0, 1],
    a % metric in [0, 100], any number finite), naming the row as the person counts it."""
    bad = outside(f, df["value"].to_numpy())
    if bad.any():
        r = df[bad].iloc[0]
        hint = " (a percentage? divide it by 100)" if limits(f) == (0, 1) and 1 < r["value"] <= 100 else ""
        raise ValueError(f"{name}: row {r['row']}, column '{f.name}': {refusal(f, f'{r.value:g}', r.value)}{hint}.")


def attach(store: Store, table: pd.DataFrame, metric: str = "accuracy", direction: str | None = "max",
           name: str = "quality table", on: tuple[str, ...] = KEYS, field: Field | None = None,
           batch: str | None = None) -> QualityResult:
    """Set ``metric`` (and ``<metric>_source`` where the table has a source column) on the runs
    each table row matches (on model, and precision / task where the table has them and ``on``
    names them); reports matched and unmatched rows. ``field`` defines a metric the store does not
    have yet (default: a quality metric of no unit with ``direction``). The change is recorded in
    ``batch`` (an import batch of kind 'quality'), a new one unless given."""
    if not is_safe_identifier(metric):
        raise ValueError(f"'{metric}' is not a usable metric name (lower-case letters, digits and _).")
    df, keys = prepare(table, metric, name, on)
    if df.empty:
        raise ValueError(f"{name} has no {metric} values.")
    keys = [k for k in keys if store.has_field(k)]
    if store.has_field(metric):
        known = store.field(metric)
        if known.role != "metric":
            raise StoreError(f"'{metric}' is a {known.role} column, not a metric.")
        if not known.quality:
            raise StoreError(f"'{metric}' is a measured metric, not a quality score; a quality table sets only quality "
                             f"metrics (accuracy, {', '.join(list(QUALITY_BY_NAME)[:3])} or a name of your own), never "
                             f"a measurement.")
    field = store.field(metric) if store.has_field(metric) else (
        field or QUALITY_BY_NAME.get(metric) or Field(metric, "metric", "double", "", direction, f"quality from {name}",
                                                      quality=True))
    check_range(df, field, name)
    src = source_field(metric) if "source" in df else None
    df["_i"] = range(len(df))
    iid, n = batch, 0
    with store.transaction():
        with store.registered("_qtable", df[["_i", *keys, "value", *(["source"] if src else [])]]):
            try:
                _match(store, keys)
                _refuse_ambiguity(store, df, metric, name)
                counts = dict(store.execute("SELECT _i, count(*) FROM _qmatch GROUP BY _i").fetchall())
                df["runs_matched"] = [int(counts.get(i, 0)) for i in df["_i"]]
                if counts:  # a table that matches no run records nothing (no empty batch, no empty column)
                    store.add_fields([field] + ([src] if src else []))
                    iid = batch or store.new_batch(source=name, kind="quality", file_name=name, note=f"sets {metric}")
                    n = _record_and_set(store, iid, metric, src.name if src else None)
                    store.execute("UPDATE imports SET rows_added = rows_added + ? WHERE import_id = ?", [n, iid])
            finally:
                store.drop_temp("_qmatch")
    shown = df.drop(columns=["source", "_i", "row"], errors="ignore").rename(columns={"value": metric})
    matched = shown[shown["runs_matched"] > 0]
    unmatched = shown[shown["runs_matched"] == 0].drop(columns=["runs_matched"])
    return QualityResult(metric, n, matched.reset_index(drop=True), unmatched.reset_index(drop=True), iid)


def _match(store: Store, keys: list[str]) -> None:
    """Temp table _qmatch(run_id, _i): which table row matches which run."""
    conds = [f"(q.{quote(k)} IS NULL OR lower(CAST(r.{quote(k)} AS VARCHAR)) = lower(CAST(q.{quote(k)} AS VARCHAR)))"
             for k in keys]
    store.execute(f"CREATE TEMP TABLE _qmatch AS SELECT r.run_id, q._i FROM _qtable q JOIN runs r "
                  f"ON {' AND '.join(conds) or 'TRUE'}")


def _refuse_ambiguity(store: Store, df: pd.DataFrame, metric: str, name: str) -> None:
    """Two rows giving one run different figures (a row without a precision beside one with it)
    would leave the result to the order of an UPDATE: refuse, naming both rows."""
    src = ", q.source" if "source" in df else ""
    hit = first_row(store.execute(
        f"""SELECT m.run_id, min(m._i), max(m._i) FROM _qmatch m JOIN _qtable q USING (_i)
            GROUP BY m.run_id HAVING count(DISTINCT (q.value{src})) > 1 ORDER BY min(m._i), max(m._i) LIMIT 1"""))
    if hit:
        a, b = df.set_index("_i").loc[hit[1]], df.set_index("_i").loc[hit[2]]
        run = store.query(["model", "precision"], {"run_id": [hit[0]]}).iloc[0]
        raise ValueError(f"{name}: rows {a['row']} and {b['row']} both give {metric} for run {hit[0]} "
                         f"({run['model']}, {run['precision']}), with different values; give each precision its own "
                         f"row (a row without a precision matches every precision of its model).")


def _record_and_set(store: Store, iid: str, metric: str, source: str | None) -> int:
    """Keep each matched run's current values (for undo; the first record of a run in a batch
    holds the value from before the batch), then set the new ones; returns runs set."""
    m, s = quote(metric), (quote(source) if source else None)
    store.store_columns([metric] + ([source] if source else []))
    store.execute(
        f"""INSERT INTO quality_changes (import_id, run_id, metric, old_value, old_source, source_set)
            SELECT DISTINCT $iid, r.run_id, $metric, r.{m}, {f'r.{s}' if s else 'NULL'}, {bool(s)}
            FROM runs r JOIN _qmatch x ON x.run_id = r.run_id
            WHERE NOT EXISTS (SELECT 1 FROM quality_changes c
                              WHERE c.import_id = $iid AND c.metric = $metric AND c.run_id = r.run_id)""",
        {"iid": iid, "metric": metric})
    sets = f"{m} = u.value" + (f", {s} = u.source" if s else "")
    picked = "any_value(q.value) AS value" + (", any_value(q.source) AS source" if s else "")
    return first_row(store.execute(
        f"""UPDATE runs SET {sets}
            FROM (SELECT x.run_id, {picked} FROM _qmatch x JOIN _qtable q ON q._i = x._i GROUP BY x.run_id) u
            WHERE runs.run_id = u.run_id"""))[0]


def quality_metrics(store: Store, filters=None) -> list[str]:
    """The quality metrics that the filtered runs have values for, the headline first."""
    rank = {"accuracy": -1, **{n: i for i, n in enumerate(QUALITY_BY_NAME)}}
    names = sorted((f.name for f in store.metrics() if f.quality), key=lambda n: rank.get(n, len(rank)))
    if not names:
        return []
    where, params = store.where(filters)
    counts = first_row(store.execute(
        f"SELECT {', '.join(f'count({quote(n)})' for n in names)} FROM runs {where}", params))
    return [n for n, c in zip(names, counts) if c]


def headline(store: Store, filters=None) -> str | None:
    """The task's headline quality metric among the filtered runs (None where no run has one)."""
    found = quality_metrics(store, filters)
    return found[0] if found else None


@dataclass
class Lacking:
    """Filtered runs without a value for a metric, and the models they belong to."""
    metric: str
    runs: int
    models: list[str]  # most runs first

    def sentence(self, limit: int = 4) -> str:
        if not self.runs:
            return ""
        names = ", ".join(self.models[:limit]) + (f" and {len(self.models) - limit} more" if len(self.models) > limit else "")
        return (f"{counted(self.runs, 'run')} lack{'' if self.runs != 1 else 's'} {self.metric} "
                f"(not measured): {names}.")


def lacking(store: Store, metric: str, filters=None) -> Lacking:
    """How many filtered runs have no ``metric``, and of which models: shown, never dropped silently."""
    col = store.column_sql(metric)
    where, params = store.where(filters)
    where = f"{where} AND {col} IS NULL" if where else f"WHERE {col} IS NULL"
    model = quote("model") if store.has_field("model") else "NULL"
    rows = store.execute(
        f"SELECT {model} AS m, count(*) AS n FROM runs {where} GROUP BY m ORDER BY n DESC, m", params).fetchall()
    return Lacking(metric, int(sum(n for _, n in rows)), [str(m) for m, _ in rows if m is not None])

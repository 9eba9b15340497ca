"""Quality beside efficiency: join quality scores onto measured runs, and find a task's headline
quality metric.

A quality table has a ``model`` column, optionally ``precision`` and ``task``, one value column
(``accuracy`` by default, or any named metric) and optionally ``source`` (where the figure comes
from; stored as ``<metric>_source`` beside it). Each table row sets that metric on every run with
the same model (and precision / task where the row gives them), in one transaction. A row without
a precision matches every precision of the model, so a figure measured on one variant only must
name its precision: published figures are never copied onto variants they were not measured on.

A task's *headline* quality is ``accuracy`` where its runs have it, else the first named quality
metric they have, in the order of ``engine.fields.QUALITY_FIELDS``, else any other metric the
registry marks as quality (a person's own attached score).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.fields import QUALITY_BY_NAME, Field, is_safe_identifier, normalize_name, quote, source_field
from engine.store import Store, StoreError, first_row

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

    def message(self) -> str:
        rows = len(self.matched)
        return (f"{self.metric}: {self.runs_updated} run{'s' * (self.runs_updated != 1)} updated from {rows} "
                f"quality row{'s' * (rows != 1)}; {len(self.unmatched)} row{'s' * (len(self.unmatched) != 1)} matched no run.")


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
    df = table.rename(columns={c: normalize_name(c) for c in table.columns})
    if "model" not in df:
        raise ValueError(f"{name} needs a 'model' column; it has {', '.join(map(str, table.columns))}.")
    if metric not in df:
        raise ValueError(f"{name} has no '{metric}' column to attach.")
    keys = [k for k in on if k in df and df[k].notna().any()]
    out = df[keys].astype(object).where(df[keys].notna(), None)
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
        raise ValueError(f"{name}: row {i + 1} gives a second, different {metric} for the same "
                         f"{', '.join(f'{k}={out[k].iloc[i]}' for k in keys)}.")
    return out.drop_duplicates(subset=keys + ["value"]).reset_index(drop=True), keys


def attach(store: Store, table: pd.DataFrame, metric: str = "accuracy", direction: str | None = "max",
           name: str = "quality table", on: tuple[str, ...] = KEYS, field: Field | None = None) -> QualityResult:
    """Set ``metric`` (and ``<metric>_source`` where the table has a source column) on the runs
    each table row matches (on model, and precision / task where the table has them and ``on``
    names them); reports matched and unmatched rows. ``field`` defines a metric the store does not
    have yet (default: a quality metric of no unit with ``direction``)."""
    if not is_safe_identifier(metric):
        raise ValueError(f"'{metric}' is not a usable metric name (lower-case letters, digits and _).")
    df, keys = prepare(table, metric, name, on)
    if df.empty:
        raise ValueError(f"{name} has no {metric} values.")
    keys = [k for k in keys if store.has_field(k)]
    if store.has_field(metric) and store.field(metric).role != "metric":
        raise StoreError(f"'{metric}' is a {store.field(metric).role} column, not a metric.")
    counts = _match_counts(store, df, keys)
    df["runs_matched"] = counts
    field = field or Field(metric, "metric", "double", "", direction, f"quality from {name}", quality=True)
    update = df[keys].copy()
    update[metric] = df["value"]
    new = [field]
    if "source" in df:
        src = source_field(metric)
        update[src.name] = df["source"]
        new.append(src)
    n = store.update_columns(update, keys, list(update.columns[len(keys):]), new)
    shown = df.drop(columns=["source"], errors="ignore").rename(columns={"value": metric})
    matched = shown[shown["runs_matched"] > 0]
    unmatched = shown[shown["runs_matched"] == 0].drop(columns=["runs_matched"])
    return QualityResult(metric, n, matched.reset_index(drop=True), unmatched.reset_index(drop=True))


def quality_metrics(store: Store, filters=None) -> list[str]:
    """The quality metrics that the filtered runs have values for, the headline first."""
    rank = {"accuracy": -1, **{n: i for i, n in enumerate(QUALITY_BY_NAME)}}
    names = sorted((f.name for f in store.metrics() if f.quality), key=lambda n: rank.get(n, len(rank)))
    if not names:
        return []
    where, params = store.where(filters)
    counts = first_row(store.con.execute(
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
        return (f"{self.runs:,} run{'s' if self.runs != 1 else ''} lack{'' if self.runs != 1 else 's'} {self.metric} "
                f"(not measured): {names}.")


def lacking(store: Store, metric: str, filters=None) -> Lacking:
    """How many filtered runs have no ``metric``, and of which models: shown, never dropped silently."""
    col = store.column_sql(metric)
    where, params = store.where(filters)
    where = f"{where} AND {col} IS NULL" if where else f"WHERE {col} IS NULL"
    model = quote("model") if store.has_field("model") else "NULL"
    rows = store.con.execute(
        f"SELECT {model} AS m, count(*) AS n FROM runs {where} GROUP BY m ORDER BY n DESC, m", params).fetchall()
    return Lacking(metric, int(sum(n for _, n in rows)), [str(m) for m, _ in rows if m is not None])


def _match_counts(store: Store, df: pd.DataFrame, keys: list[str]) -> list[int]:
    conds = []
    for k in keys:
        conds.append(f"(q.{quote(k)} IS NULL OR lower(CAST(r.{quote(k)} AS VARCHAR)) = lower(CAST(q.{quote(k)} AS VARCHAR)))")
    frame = df[keys].copy()
    frame["_i"] = range(len(frame))
    store.con.register("_qmatch", frame)
    try:
        rows = store.con.execute(
            f"SELECT q._i, count(r.run_id) FROM _qmatch q LEFT JOIN runs r ON {' AND '.join(conds)} GROUP BY q._i"
        ).fetchall()
    finally:
        store.con.unregister("_qmatch")
    by = dict(rows)
    return [int(by.get(i, 0)) for i in range(len(frame))]

"""Join quality scores (from separate evaluation runs) onto measured runs.

A quality table has a ``model`` column, optionally ``precision`` and ``task``, and one value
column (``accuracy`` by default, or any named metric). Each table row sets that metric on every
run with the same model (and precision / task where the row gives them), in one transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.fields import Field, is_safe_identifier, normalize_name
from engine.store import Store, StoreError

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
        return (f"{self.metric}: {self.runs_updated} runs updated from {len(self.matched)} quality rows; "
                f"{len(self.unmatched)} rows matched no run.")


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
    if out["model"].isna().any():
        i = int(out["model"].isna().to_numpy().nonzero()[0][0])
        raise ValueError(f"{name}: row {i + 1} has no model.")
    out = out[out["value"].notna()].reset_index(drop=True)
    lowered = out[keys].map(lambda v: v.lower() if isinstance(v, str) else v)
    lowered["value"] = out["value"]
    dup = lowered[keys].duplicated() & ~lowered.duplicated()  # same key again, different value
    if dup.any():
        i = int(dup.to_numpy().nonzero()[0][0])
        raise ValueError(f"{name}: row {i + 1} gives a second, different {metric} for the same "
                         f"{', '.join(f'{k}={out[k].iloc[i]}' for k in keys)}.")
    return out.drop_duplicates().reset_index(drop=True), keys


def attach(store: Store, table: pd.DataFrame, metric: str = "accuracy", direction: str | None = "max",
           name: str = "quality table", on: tuple[str, ...] = KEYS) -> QualityResult:
    """Set ``metric`` on the runs each table row matches (on model, and precision / task where the
    table has them and ``on`` names them); reports matched and unmatched rows."""
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
    field = None if store.has_field(metric) else Field(metric, "metric", "double", "", direction, f"quality from {name}")
    n = store.update_column(metric, df[keys + ["value"]], keys, field)
    matched = df[df["runs_matched"] > 0].rename(columns={"value": metric})
    unmatched = df[df["runs_matched"] == 0].drop(columns=["runs_matched"]).rename(columns={"value": metric})
    return QualityResult(metric, n, matched.reset_index(drop=True), unmatched.reset_index(drop=True))


def _match_counts(store: Store, df: pd.DataFrame, keys: list[str]) -> list[int]:
    from engine.fields import quote

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

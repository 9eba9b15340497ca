"""Compare a few runs side by side: every knob and metric they have, the differences against the
first run (ratio and absolute), and which run is best in each metric with a direction.

Runs are named by run id or by a unique prefix of one (as git names commits), so an id copied
from a table or a link need not be typed in full.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from engine.fields import CI_HI, CI_LO, SOURCE_SUFFIX, quote
from engine.store import Store

MAX_RUNS = 8
_SKIP = ("import_id", "imported_at", "environment")


@dataclass
class Comparison:
    runs: pd.DataFrame  # one row per run, every non-empty column, in the order asked
    rows: pd.DataFrame  # one row per field: field, role, unit, direction, one column per run, and for
    #                     metrics: <label> ratio / <label> diff against the first run, and the best run

    @property
    def labels(self) -> list[str]:
        return list(self.runs["label"])


def resolve(store: Store, ids: Sequence[str]) -> list[str]:
    """Full run ids for ids or unique prefixes; one sentence when one matches none or several."""
    if not 2 <= len(ids) <= MAX_RUNS:
        raise ValueError(f"Compare takes 2 to {MAX_RUNS} runs, not {len(ids)}.")
    out = []
    for given in ids:
        given = str(given).strip()
        if not given:
            raise ValueError("An empty run id was given.")
        hits = [r[0] for r in store.execute(
            "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id LIMIT 3", [given]).fetchall()]
        if not hits:
            raise ValueError(f"No run has the id '{given}'.")
        if len(hits) > 1 and given not in hits:
            raise ValueError(f"'{given}' is the start of several run ids ({', '.join(hits[:2])}, ...); give more of it.")
        out.append(given if given in hits else hits[0])
    if len(set(out)) != len(out):
        raise ValueError("The same run was named twice.")
    return out


def compare(store: Store, ids: Sequence[str]) -> Comparison:
    run_ids = resolve(store, ids)
    names = [f.name for f in store.fields() if f.name not in _SKIP]
    select = ", ".join(store.select_sql(n) for n in names)
    marks = ", ".join("?" for _ in run_ids)
    df = store.execute(f"SELECT {select} FROM runs WHERE {quote('run_id')} IN ({marks})", run_ids).df()
    df = df.set_index("run_id").loc[run_ids].reset_index()
    df.insert(0, "label", [f"run {i + 1}" for i in range(len(df))])
    keep = [c for c in df.columns if c == "label" or df[c].notna().any()]
    df = df[keep]
    rows = []
    for name in keep:
        if name == "label" or name.endswith((CI_LO, CI_HI, SOURCE_SUFFIX)):
            continue
        f = store.field(name)
        row = {"field": name, "role": f.role, "unit": f.unit, "direction": f.direction or ""}
        vals = df[name].tolist()
        for label, v in zip(df["label"], vals):
            row[label] = v
        if f.role == "metric":
            base = vals[0]
            for label, v in list(zip(df["label"], vals))[1:]:
                ok = pd.notna(base) and pd.notna(v)
                row[f"{label} ratio"] = v / base if ok and base else None
                row[f"{label} diff"] = v - base if ok else None
            present = [(v, label) for v, label in zip(vals, df["label"]) if pd.notna(v)]
            if f.direction in ("min", "max") and len(present) > 1 and len({v for v, _ in present}) > 1:
                top = min(v for v, _ in present) if f.direction == "min" else max(v for v, _ in present)
                row["best"] = ", ".join(label for v, label in present if v == top)
        rows.append(row)
    return Comparison(df, pd.DataFrame(rows))

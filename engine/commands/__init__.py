"""One module per CLI command; shared argument helpers live here."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

import pandas as pd

from engine.store import Store


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, help="DuckDB file (default: $PARETOSCOPE_DB or data/runs.duckdb)")


def add_filter(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", action="append", default=[], metavar="COL=VALUE",
                   help="keep runs where COL equals VALUE (V1,V2 for any of several; COL>=X, COL<=X for ranges); repeatable")


def add_format(p: argparse.ArgumentParser, choices=("table", "csv", "json")) -> None:
    p.add_argument("--format", choices=choices, default="table")


def add_objective(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--objective", action="append", default=[], required=required, metavar="NAME:min|max",
                   help="an objective and its direction (direction defaults to the registry's); repeatable")


def parse_filters(store: Store, specs: list[str]) -> dict:
    """Turn ['task=gpqa', 'batch_size>=8', 'hardware=H100,B200'] into the store's filter mapping."""
    from engine.cli import CliError

    out: dict = {}
    for spec in specs:
        for op in (">=", "<=", "="):
            if op in spec:
                name, value = spec.split(op, 1)
                name = name.strip()
                break
        else:
            raise CliError(f"Filter '{spec}' must look like COL=VALUE, COL>=X or COL<=X.")
        if not store.has_field(name):
            raise CliError(f"Filter '{spec}' names an unknown column '{name}'.")
        f = store.field(name)
        if op == "=":
            out.setdefault(name, [])
            out[name] = list(out[name]) + [_cast(f.dtype, v.strip(), spec) for v in value.split(",")]
        else:
            bound = out.setdefault(name, {}) if isinstance(out.get(name, {}), dict) else None
            if bound is None:
                raise CliError(f"Filter '{spec}' mixes a range with a value list for '{name}'.")
            bound["min" if op == ">=" else "max"] = _cast(f.dtype, value.strip(), spec)
    return out


def _cast(dtype: str, value: str, spec: str):
    from engine.cli import CliError

    try:
        if dtype == "integer":
            return int(float(value))
        if dtype == "double":
            return float(value)
    except ValueError:
        raise CliError(f"Filter '{spec}': '{value}' is not a number.") from None
    return value


def parse_objectives(store: Store, specs: list[str]) -> tuple[list[str], list[bool]]:
    """['energy_j:min', 'throughput'] -> (names, maximize flags); direction from the registry if omitted."""
    from engine.cli import CliError

    names, maximize = [], []
    for spec in specs:
        name, _, direction = spec.partition(":")
        name = name.strip()
        if not store.has_field(name) or store.field(name).role != "metric":
            known = ", ".join(f.name for f in store.metrics())
            raise CliError(f"Objective '{name}' is not a metric in the store; known metrics: {known}.")
        direction = (direction.strip() or store.field(name).direction or "")
        if direction not in ("min", "max"):
            raise CliError(f"Objective '{spec}' needs a direction: {name}:min or {name}:max.")
        names.append(name)
        maximize.append(direction == "max")
    if len(set(names)) != len(names):
        raise CliError("Each objective may be given only once.")
    return names, maximize


def emit(df: pd.DataFrame, fmt: str, out=None, extra: Mapping | None = None) -> None:
    """Print runs as an aligned table, CSV, or JSON records."""
    out = out or sys.stdout
    if fmt == "csv":
        df.to_csv(out, index=False)
    elif fmt == "json":
        out.write(json.dumps(records(df), indent=1, default=str) + "\n")
    else:
        if df.empty:
            out.write("(no runs)\n")
        else:
            with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
                out.write(df.to_string(index=False) + "\n")


def records(df: pd.DataFrame) -> list[dict]:
    """JSON-safe records: NaN/NA become null, numpy scalars plain Python."""
    clean = df.astype(object).where(df.notna(), None)
    return json.loads(clean.to_json(orient="records", date_format="iso"))

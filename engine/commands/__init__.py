"""One module per CLI command; shared argument helpers live here."""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from engine.store import Store, default_db_path


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, help="DuckDB file (default: $PARETOSCOPE_DB or data/runs.duckdb)")


def existing_store(db, **kwargs) -> Store:
    """The store at ``db`` for a command that reads it: a path with no store is a mistake to name,
    not a new empty store to create (only init, import and profile create one)."""
    from engine.cli import CliError

    path = Path(db) if db else default_db_path()
    if not path.exists():
        raise CliError(f"No store at {path}; run `python -m engine init --db {path}` first.")
    return Store(path, **kwargs)


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
            if not isinstance(out.get(name, []), list):
                raise CliError(f"Filter '{spec}' mixes a range with a value list for '{name}'.")
            out.setdefault(name, [])
            out[name] = list(out[name]) + [_cast(f.dtype, v.strip(), spec, exact=True) for v in value.split(",")]
        else:
            bound = out.setdefault(name, {}) if isinstance(out.get(name, {}), dict) else None
            if bound is None:
                raise CliError(f"Filter '{spec}' mixes a range with a value list for '{name}'.")
            bound["min" if op == ">=" else "max"] = _cast(f.dtype, value.strip(), spec)
    return out


def _cast(dtype: str, value: str, spec: str, exact: bool = False):
    """A filter value in the column's type: a finite number for a numeric column (a whole one where
    an integer column must equal it; a bound of an integer range may fall between two)."""
    from engine.cli import CliError

    if dtype not in ("integer", "double"):
        return value
    try:
        number = float(value)
    except ValueError:
        raise CliError(f"Filter '{spec}': '{value}' is not a number.") from None
    if not math.isfinite(number):
        raise CliError(f"Filter '{spec}': '{value}' is not a finite number.")
    if dtype == "integer" and number.is_integer() and abs(number) < 2**63:
        return int(number)
    if dtype == "integer" and exact:
        raise CliError(f"Filter '{spec}': the column holds whole numbers, and '{value}' is not one.")
    return number


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

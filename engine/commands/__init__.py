"""One module per CLI command; shared argument helpers live here."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from engine import filters as filter_lang
from engine.derived import Settings, amount, parse_gpu_prices
from engine.store import Store, default_db_path, init_command

if TYPE_CHECKING:
    import pandas as pd


def add_db(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, help="DuckDB file (default: $PARETOSCOPE_DB or data/runs.duckdb)")


def existing_store(db, **kwargs) -> Store:
    """The store at ``db`` for a command that reads it: a path with no store is a mistake to name,
    not a new empty store to create (only init, import and profile create one)."""
    from engine.cli import CliError

    path = Path(db) if db else default_db_path()
    if not path.exists():
        raise CliError(f"No store at {path}; run `{init_command(path)}` first.")
    return Store(path, **kwargs)


def add_filter(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filter", action="append", default=[], metavar="COL=VALUE",
                   help="keep runs where COL equals VALUE (V1,V2 for any of several; COL=LO..HI, COL>=X, COL<=X, "
                        "COL>X, COL<X for ranges); repeatable")


def add_settings(p: argparse.ArgumentParser) -> None:
    """The derived metrics' settings: cost_usd's prices, carbon_g's grid intensity."""
    p.add_argument("--price-per-gpu-hour", type=float, default=None, help="$ per GPU-hour for the derived cost_usd")
    p.add_argument("--gpu-price", action="append", default=[], metavar="HARDWARE=PRICE",
                   help="$ per GPU-hour on one hardware (e.g. B200=5.5), in place of --price-per-gpu-hour there; "
                        "repeatable, or several at once: B200=5.5,H100=2.9")
    p.add_argument("--carbon-intensity", type=float, default=None, help="grid gCO2/kWh for the derived carbon_g")


def settings_from(args) -> Settings:
    """Settings from add_settings' options (the defaults where not given); a bad value is a CliError."""
    from engine.cli import CliError

    for flag, value in (("--price-per-gpu-hour", args.price_per_gpu_hour), ("--carbon-intensity", args.carbon_intensity)):
        if value is not None and amount(value) is None:
            raise CliError(f"{flag} {value}: give a finite number of at least 0.")
    try:
        prices = parse_gpu_prices(args.gpu_price)
    except ValueError as e:
        raise CliError(f"--gpu-price: {e}") from None
    base = Settings()
    return Settings(args.price_per_gpu_hour if args.price_per_gpu_hour is not None else base.price_per_gpu_hour,
                    args.carbon_intensity if args.carbon_intensity is not None else base.carbon_g_per_kwh, prices)


def note_absent_prices(store: Store) -> None:
    """A price for a hardware no run is on is most likely a typo: say so on stderr."""
    for hw in store.unpriced_hardware():
        print(f"note: --gpu-price {hw}: no run in the store is on {hw}; check the name (`runs` lists them).",
              file=sys.stderr)


def add_format(p: argparse.ArgumentParser, choices=("table", "csv", "json")) -> None:
    p.add_argument("--format", choices=choices, default="table")


def add_objective(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--objective", action="append", default=[], required=required, metavar="NAME:min|max",
                   help="an objective and its direction (direction defaults to the registry's); repeatable")


def parse_filters(store: Store, specs: list[str]) -> dict:
    """Turn ['task=gpqa', 'batch_size>=8', 'hardware=H100,B200'] into the store's filter mapping
    (engine.filters reads each one, the same way Explore reads a link)."""
    from engine.cli import CliError

    try:
        return filter_lang.to_mapping(filter_lang.parse(spec, store) for spec in specs)
    except filter_lang.FilterError as e:
        raise CliError(str(e)) from None


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


def emit(df: pd.DataFrame, fmt: str, out=None, filters: Mapping | None = None) -> None:
    """Print runs as an aligned table, CSV, or JSON records; an empty table says which filters
    left nothing."""
    import pandas as pd
    out = out or sys.stdout
    if fmt == "csv":
        df.to_csv(out, index=False)
    elif fmt == "json":
        out.write(json.dumps(records(df), indent=1, default=str) + "\n")
    else:
        if df.empty:
            said = filter_lang.describe(filters)
            out.write(f"(no runs where {said})\n" if said else "(no runs)\n")
        else:
            with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
                out.write(df.to_string(index=False) + "\n")


def records(df: pd.DataFrame) -> list[dict]:
    """JSON-safe records: NaN/NA become null, numpy scalars plain Python."""
    clean = df.astype(object).where(df.notna(), None)
    return json.loads(clean.to_json(orient="records", date_format="iso"))

"""The store's own exchange format: a Parquet file of runs whose key-value metadata carries
the field registry (units, directions, roles), so two people can swap runs losslessly.
The bundled seed data in data/seed/ is such a file."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import duckdb

from engine import duck
from engine.derived import DERIVED
from engine.fields import CANONICAL_BY_NAME, Field, is_safe_identifier, quote
from engine.importers import Importer, Parsed
from engine.store import Store, first_row

META_KEY = "paretoscope_fields"
FORMAT_KEY = "paretoscope_format"
FORMAT_VERSION = "1"
_SKIP = ("import_id", "imported_at")  # belong to the receiving store, not to the run
_ROLES = ("id", "config", "metric", "info")
_DTYPES = ("text", "integer", "double", "timestamp")


def export_runs(store: Store, path: str | Path, filters: Mapping | None = None, include_failed: bool = True) -> int:
    """Write the (filtered) runs, with every non-empty column, to a Parquet file; returns the row count."""
    names = [n for n in store.non_empty_columns(filters) if n not in _SKIP and n not in DERIVED]
    registry = [store.field(n).as_row() for n in names]
    where, params = store.where(filters, include_failed)
    cols = ", ".join(quote(n) for n in names)
    meta = {META_KEY: json.dumps(registry), FORMAT_KEY: FORMAT_VERSION}
    kv = ", ".join(f"'{k}': {_sql_str(v)}" for k, v in meta.items())
    rel = f"SELECT {cols} FROM runs {where} ORDER BY run_id"
    # COPY cannot take parameters for the query, so the selection goes through a temp view.
    store.execute(f"CREATE OR REPLACE TEMP TABLE _export AS {rel}", params)
    try:
        store.execute(f"COPY _export TO {_sql_str(str(path))} (FORMAT parquet, COMPRESSION zstd, KV_METADATA {{{kv}}})")
        return first_row(store.execute("SELECT count(*) FROM _export"))[0]
    finally:
        store.drop_temp("_export")


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def is_export(path: str | Path) -> bool:
    try:
        return _read_meta(path) is not None
    except (duckdb.Error, OSError):
        return False


def _read_meta(path: str | Path) -> dict | None:
    with duck.connect() as con:
        rows = con.execute("SELECT key, value FROM parquet_kv_metadata(?)", [str(path)]).fetchall()
    meta = {bytes(k).decode() if isinstance(k, (bytes, bytearray)) else k:
            bytes(v).decode() if isinstance(v, (bytes, bytearray)) else v for k, v in rows}
    return meta if META_KEY in meta else None


def read_export(path: str | Path) -> Parsed:
    name = Path(path).name
    meta = _read_meta(path)
    if meta is None:
        raise ValueError(f"{name}: not a Paretoscope export (no '{META_KEY}' metadata).")
    try:
        rows = json.loads(meta[META_KEY])
        fields = [Field(**{k: r.get(k) or ("" if k in ("unit", "description") else None) for k in
                           ("name", "role", "dtype", "unit", "direction", "description")}, quality=bool(r.get("quality")))
                  for r in rows]
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"{name}: the Paretoscope field list in its metadata is not readable.") from None
    for f in fields:  # the registry is data from the file: every entry is checked before it is used
        if not isinstance(f.name, str) or not is_safe_identifier(f.name) or f.role not in _ROLES \
                or f.dtype not in _DTYPES or f.direction not in (None, "min", "max"):
            raise ValueError(f"{name}: the field list declares '{f.name}' as {f.role} {f.dtype}, which this "
                             "Paretoscope cannot store.")
    with duck.connect() as con:
        df = con.execute("SELECT * FROM read_parquet(?)", [str(path)]).df()
    extra = [f for f in fields if f.name not in CANONICAL_BY_NAME and f.name in df.columns]
    return Parsed(df, extra, source=name)


IMPORTER = Importer("paretoscope", "a Paretoscope export", "Paretoscope exports", "parquet",
                    is_export, lambda path, name: read_export(path))

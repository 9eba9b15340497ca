"""The DuckDB store of runs.

One table ``runs`` holds every run: the canonical columns of DESIGN.md plus one column per extra
field an import brought (added with ALTER TABLE, registered in ``fields``). ``imports`` records
each import batch (source file, content hash, time) so a batch can be listed and deleted and a
file is never imported twice. ``meta`` holds the schema version; ``MIGRATIONS`` move an older
file forward instead of breaking it.

SQL is always built with parameters for values; identifiers come only from the ``fields``
registry and pass ``fields.quote`` (a whitelist of shapes), never straight from user input.

DuckDB lets one process write a file at a time, so a Store holds its connection only while it
is used (``with Store(path) as s: ...``); other processes (a profiling sweep) can then take
their turn. ``open_store`` retries briefly while another process holds the lock.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from engine import derived
from engine.fields import CANONICAL, CANONICAL_BY_NAME, QUALITY_BY_NAME, Field, is_safe_identifier, quote

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = ROOT / "data" / "runs.duckdb"
SCHEMA_VERSION = 2
STATUSES = ("ok", "failed", "skipped")
_SQL_TYPES = {"text": "VARCHAR", "integer": "BIGINT", "double": "DOUBLE", "timestamp": "TIMESTAMP"}
# Columns that identify a run's content; everything else (provenance) is left out of the hash.
_PROVENANCE = ("run_id", "source", "import_id", "imported_at")


def first_row(cursor) -> tuple | None:
    """The first row of a result, consuming the rest (DuckDB refuses new work on a connection
    while a result is only partly fetched)."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


class StoreError(Exception):
    """A problem with the store or with what was asked of it, phrased for a person."""


def default_db_path() -> Path:
    return Path(os.environ.get("PARETOSCOPE_DB") or DEFAULT_DB)


def _create_v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    con.execute(
        """CREATE TABLE fields (
            name VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, dtype VARCHAR NOT NULL,
            unit VARCHAR, direction VARCHAR, description VARCHAR, canonical BOOLEAN NOT NULL)"""
    )
    con.execute(
        """CREATE TABLE imports (
            import_id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, kind VARCHAR NOT NULL,
            file_name VARCHAR, file_hash VARCHAR, imported_at TIMESTAMP NOT NULL,
            rows_added BIGINT NOT NULL, note VARCHAR)"""
    )
    cols = ", ".join(f"{quote(f.name)} {_SQL_TYPES[f.dtype]}" for f in CANONICAL)
    con.execute(f"CREATE TABLE runs ({cols})")
    for f in CANONICAL:
        con.execute("INSERT INTO fields VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [f.name, f.role, f.dtype, f.unit, f.direction, f.description, True])


def _add_quality_flag(con: duckdb.DuckDBPyConnection) -> None:
    """v2: the registry says which metrics are quality (accuracy, named benchmarks, fidelity)."""
    con.execute("ALTER TABLE fields ADD COLUMN quality BOOLEAN NOT NULL DEFAULT FALSE")
    known = ["accuracy", *QUALITY_BY_NAME]
    con.execute(f"UPDATE fields SET quality = TRUE WHERE role = 'metric' AND name IN ({', '.join('?' for _ in known)})", known)


MIGRATIONS = {1: _create_v1, 2: _add_quality_flag}  # version -> function that brings version-1 to version


def _register(con, f: Field, canonical: bool = False) -> None:
    con.execute(
        "INSERT INTO fields (name, role, dtype, unit, direction, description, canonical, quality) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [f.name, f.role, f.dtype, f.unit, f.direction, f.description, canonical, f.quality],
    )


@dataclass
class ImportResult:
    import_id: str | None
    added: int
    duplicates: int
    already_imported: bool = False


class Store:
    """A DuckDB file of runs. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path | None = None, read_only: bool = False, timeout_s: float = 30.0,
                 settings: derived.Settings | None = None):
        self.path = Path(path) if path else default_db_path()
        self.settings = settings or derived.Settings()
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"No store at {self.path}; run `python -m engine init` first.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._depth = 0  # nesting of transaction()
        self._fields: dict[str, Field] | None = None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as e:  # another process holds the write lock
                if "lock" not in str(e).lower() or time.monotonic() > deadline:
                    raise StoreError(f"Cannot open the store {self.path}: {e}") from e
                time.sleep(0.1)
        self.con.execute("SET enable_progress_bar = false")  # DuckDB draws it on stdout, into CLI output
        if not read_only:
            self._migrate()

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def _migrate(self) -> None:
        have = self.schema_version()
        if have > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {have}, newer than this Paretoscope ({SCHEMA_VERSION}).")
        for version in range(have + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                MIGRATIONS[version](self.con)
                self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(version)])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around the block; nested blocks join the outer one, so several
        writes (runs, quality figures, a batch's bookkeeping) land all together or not at all."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            self.con.execute("ROLLBACK")
            self._fields = None
            raise
        self._depth = 0
        self.con.execute("COMMIT")

    def schema_version(self) -> int:
        exists = first_row(self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
        ))[0]
        if not exists:
            return 0
        row = first_row(self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
        return int(row[0]) if row else 0

    # -- the field registry ----------------------------------------------------------------
    def fields(self, role: str | None = None) -> list[Field]:
        if self._fields is None:
            quality = "f.quality" if self.schema_version() >= 2 else "FALSE"  # a read-only older file
            rows = self.con.execute(
                f"""SELECT f.name, f.role, f.dtype, f.unit, f.direction, f.description, {quality}
                   FROM fields f JOIN information_schema.columns c
                     ON c.table_name = 'runs' AND c.column_name = f.name
                   ORDER BY c.ordinal_position"""
            ).fetchall()
            self._fields = {r[0]: Field(r[0], r[1], r[2], r[3] or "", r[4], r[5] or "", bool(r[6])) for r in rows}
            self._fields.update(derived.DERIVED)
        fs = list(self._fields.values())
        return [f for f in fs if role is None or f.role == role]

    def field(self, name: str) -> Field:
        self.fields()
        if name not in self._fields:
            raise StoreError(f"Unknown column '{name}'; known: {', '.join(sorted(self._fields))}.")
        return self._fields[name]

    def has_field(self, name: str) -> bool:
        self.fields()
        return name in self._fields

    def column_sql(self, name: str) -> str:
        """SQL for a registered field: its quoted column, or a derived metric's expression."""
        if name in derived.DERIVED:
            return derived.sql(name, self.settings)
        return quote(self.field(name).name)

    def select_sql(self, name: str) -> str:
        sql = self.column_sql(name)
        return sql if name not in derived.DERIVED else f"{sql} AS {quote(name)}"

    def metrics(self) -> list[Field]:
        """Numeric measurements a person can pick as objectives (canonical first)."""
        return self.fields("metric")

    def set_direction(self, name: str, direction: str | None) -> None:
        if direction not in ("min", "max", None):
            raise StoreError(f"Direction of '{name}' must be min or max, not '{direction}'.")
        if name in derived.DERIVED or name in CANONICAL_BY_NAME:
            raise StoreError(f"The direction of '{name}' is fixed.")
        self.field(name)
        self.con.execute("UPDATE fields SET direction = ? WHERE name = ?", [direction, name])
        self._fields = None

    def _add_field(self, f: Field) -> None:
        if not is_safe_identifier(f.name):
            raise StoreError(f"Column name '{f.name}' is not allowed (use lower-case letters, digits and _).")
        if f.dtype not in _SQL_TYPES or f.role not in ("config", "metric", "info"):
            raise StoreError(f"Field '{f.name}' has an unsupported type or role.")
        self.con.execute(f"ALTER TABLE runs ADD COLUMN {quote(f.name)} {_SQL_TYPES[f.dtype]}")
        _register(self.con, f)
        self._fields = None

    # -- writing ---------------------------------------------------------------------------
    def add_runs(
        self,
        runs: pd.DataFrame,
        *,
        source: str,
        kind: str,
        extra_fields: Sequence[Field] = (),
        file_name: str | None = None,
        file_hash: str | None = None,
        note: str | None = None,
        append_to: str | None = None,
    ) -> ImportResult:
        """Add runs as one import batch, all or nothing.

        ``runs`` has canonical columns and/or the columns named in ``extra_fields``; a column
        that is neither is an error (importers decide what a column means, not the store).
        Runs without a run_id get a content hash of their configuration and measurements, so
        the same run imported twice is stored once. A file whose ``file_hash`` was imported
        before adds nothing.
        """
        extra = {f.name: f for f in extra_fields}
        for col in runs.columns:
            if col in derived.DERIVED:
                raise StoreError(f"Column '{col}' is derived from other columns and cannot be imported.")
            if col not in CANONICAL_BY_NAME and col not in extra and not self.has_field(col):
                raise StoreError(f"Column '{col}' has no field definition.")
        if "imported_at" in runs.columns or "import_id" in runs.columns:
            runs = runs.drop(columns=[c for c in ("imported_at", "import_id") if c in runs.columns])
        if "status" in runs.columns:
            bad = set(runs["status"].dropna().unique()) - set(STATUSES)
            if bad:
                raise StoreError(f"Column 'status' has values {sorted(bad)}; allowed: {', '.join(STATUSES)}.")

        with self.transaction():
            if file_hash:
                seen = first_row(self.con.execute(
                    "SELECT import_id FROM imports WHERE file_hash = ?", [file_hash]
                ))
                if seen:
                    return ImportResult(seen[0], 0, len(runs), already_imported=True)
            for name, f in extra.items():
                if self.has_field(name):
                    known = self.field(name)
                    if known.dtype != f.dtype and not {known.dtype, f.dtype} <= {"integer", "double"}:
                        raise StoreError(
                            f"Column '{name}' is {f.dtype} here but {known.dtype} in the store."
                        )
                else:
                    self._add_field(f)
            now = datetime.now(timezone.utc).replace(tzinfo=None)
            if append_to and not first_row(self.con.execute("SELECT 1 FROM imports WHERE import_id = ?", [append_to])):
                raise StoreError(f"No import batch '{append_to}' to add runs to.")
            import_id = append_to or uuid.uuid4().hex[:12]
            added, dups = self._insert(runs, source, import_id, now)
            if append_to:
                self.con.execute("UPDATE imports SET rows_added = rows_added + ? WHERE import_id = ?", [added, import_id])
            else:
                self.con.execute(
                    "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [import_id, source, kind, file_name, file_hash, now, added, note],
                )
        return ImportResult(import_id, added, dups)

    def _insert(self, runs: pd.DataFrame, source: str, import_id: str, now: datetime) -> tuple[int, int]:
        cols = list(runs.columns)
        content = [c for c in cols if c not in _PROVENANCE]
        hash_expr = "md5(concat_ws('|', " + ", ".join(
            f"'{c}=' || coalesce(CAST({quote(c)} AS VARCHAR), '')" for c in sorted(content)
        ) + "))" if content else "md5(CAST(random() AS VARCHAR))"
        run_id = f"coalesce(CAST(run_id AS VARCHAR), {hash_expr})" if "run_id" in cols else hash_expr
        src = "coalesce(CAST(source AS VARCHAR), $src)" if "source" in cols else "$src"
        status = "coalesce(status, 'ok')" if "status" in cols else "'ok'"
        select_cols = [c for c in content if c != "status"]
        self.con.register("_incoming", runs)
        try:
            self.con.execute(
                f"""CREATE TEMP TABLE _staged AS
                    SELECT {run_id} AS run_id, {src} AS source, {status} AS status
                           {''.join(', ' + quote(c) for c in select_cols)}
                    FROM _incoming""",
                {"src": source},
            )
        finally:
            self.con.unregister("_incoming")
        try:
            total = first_row(self.con.execute("SELECT count(*) FROM _staged"))[0]
            before = first_row(self.con.execute("SELECT count(*) FROM runs WHERE import_id = ?", [import_id]))[0]
            target = ["run_id", "source", "status", "import_id", "imported_at"] + select_cols
            self.con.execute(
                f"""INSERT INTO runs ({', '.join(quote(c) for c in target)})
                    SELECT s.run_id, s.source, s.status, $iid, $now {''.join(', s.' + quote(c) for c in select_cols)}
                    FROM _staged s
                    WHERE s.run_id NOT IN (SELECT run_id FROM runs)
                    QUALIFY row_number() OVER (PARTITION BY s.run_id) = 1""",
                {"iid": import_id, "now": now},
            )
            added = first_row(self.con.execute("SELECT count(*) FROM runs WHERE import_id = ?", [import_id]))[0] - before
        finally:
            try:
                self.con.execute("DROP TABLE IF EXISTS _staged")
            except duckdb.Error:
                pass  # the insert failed and aborted the transaction: its rollback drops the table; keep that error
        return added, total - added

    def update_columns(self, table: pd.DataFrame, keys: Sequence[str], columns: Sequence[str],
                       new_fields: Sequence[Field] = ()) -> int:
        """Set ``columns`` of the runs matching ``table`` on ``keys`` to the table's columns of the
        same names, in one transaction (registering ``new_fields`` first). A key whose value is
        null in a table row matches any run; text keys compare case-insensitively. Returns runs
        updated."""
        for k in keys:
            self.field(k)
        new = {f.name: f for f in new_fields}
        for c in columns:
            if not self.has_field(c) and c not in new:
                raise StoreError(f"Unknown column '{c}'.")
        with self.transaction():
            for c in columns:
                if not self.has_field(c):
                    self._add_field(new[c])
            conds = []
            for k in keys:
                r, q = f"runs.{quote(k)}", f"q.{quote(k)}"
                if self.field(k).dtype == "text":
                    r, q = f"lower({r})", f"lower({q})"
                conds.append(f"(q.{quote(k)} IS NULL OR {r} = {q})")
            sets = ", ".join(f"{quote(c)} = q.{quote(c)}" for c in columns)
            self.con.register("_update", table)
            try:
                sql = f"UPDATE runs SET {sets} FROM _update q WHERE {' AND '.join(conds) or 'TRUE'}"
                return first_row(self.con.execute(sql))[0]
            finally:
                self.con.unregister("_update")

    def delete_import(self, import_id: str) -> int:
        """Remove an import batch and its runs; returns how many runs went."""
        with self.transaction():
            if not first_row(self.con.execute("SELECT 1 FROM imports WHERE import_id = ?", [import_id])):
                raise StoreError(f"No import batch '{import_id}'.")
            n = first_row(self.con.execute("SELECT count(*) FROM runs WHERE import_id = ?", [import_id]))[0]
            brought = self._filled_fields("WHERE import_id = ?", [import_id])
            from engine import timeseries

            timeseries.delete_runs(self, "WHERE import_id = ?", [import_id])
            self.con.execute("DELETE FROM runs WHERE import_id = ?", [import_id])
            self.con.execute("DELETE FROM imports WHERE import_id = ?", [import_id])
            self._drop_empty(brought)
        return n

    def _filled_fields(self, where: str, params: list) -> list[str]:
        """Extra (non-canonical) fields with a value in the selected runs."""
        names = [f.name for f in self.fields() if f.name not in CANONICAL_BY_NAME and f.name not in derived.DERIVED]
        if not names:
            return []
        counts = first_row(self.con.execute(
            f"SELECT {', '.join(f'count({quote(n)})' for n in names)} FROM runs {where}", params))
        return [n for n, c in zip(names, counts) if c]

    def _drop_empty(self, names: Sequence[str]) -> None:
        """Drop the fields among ``names`` that no run has a value for any more, so a deleted batch's
        columns leave the pickers and messages with it."""
        empty = set(names) - set(self._filled_fields("", [])) if names else set()
        for name in sorted(empty):
            self.con.execute(f"ALTER TABLE runs DROP COLUMN {quote(name)}")
            self.con.execute("DELETE FROM fields WHERE name = ?", [name])
        if empty:
            self._fields = None

    # -- reading ---------------------------------------------------------------------------
    def imports(self) -> pd.DataFrame:
        return self.con.execute("SELECT * FROM imports ORDER BY imported_at").df()

    def count(self, filters: Mapping | None = None, include_failed: bool = True) -> int:
        where, params = self.where(filters, include_failed)
        return first_row(self.con.execute(f"SELECT count(*) FROM runs {where}", params))[0]

    def where(self, filters: Mapping | None, include_failed: bool = False) -> tuple[str, list]:
        """SQL WHERE clause and parameters for a filter mapping.

        ``filters`` maps a column to a list of allowed values (an IN test) or to a
        ``{"min": x, "max": y}`` range (either bound optional).
        """
        clauses, params = [], []
        if not include_failed:
            clauses.append("status = 'ok'")
        for name, cond in (filters or {}).items():
            col = self.column_sql(name)
            if isinstance(cond, Mapping):
                if cond.get("min") is not None:
                    clauses.append(f"{col} >= ?")
                    params.append(cond["min"])
                if cond.get("max") is not None:
                    clauses.append(f"{col} <= ?")
                    params.append(cond["max"])
            else:
                values = list(cond) if isinstance(cond, Iterable) and not isinstance(cond, str) else [cond]
                if not values:
                    clauses.append("FALSE")
                    continue
                clauses.append(f"{col} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params

    def query(
        self,
        columns: Sequence[str] | None = None,
        filters: Mapping | None = None,
        include_failed: bool = False,
        limit: int | None = None,
        order_by: str | None = None,
    ) -> pd.DataFrame:
        names = list(columns) if columns else [f.name for f in self.fields()]
        select = ", ".join(self.select_sql(c) for c in names)
        where, params = self.where(filters, include_failed)
        sql = f"SELECT {select} FROM runs {where}"
        if order_by:
            sql += f" ORDER BY {self.column_sql(order_by)}"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self.con.execute(sql, params).df()

    def distinct(self, name: str, filters: Mapping | None = None) -> list:
        col = self.column_sql(name)
        where, params = self.where(filters)
        rows = self.con.execute(
            f"SELECT DISTINCT {col} FROM runs {where} ORDER BY {col} NULLS LAST", params
        ).fetchall()
        return [r[0] for r in rows if r[0] is not None]

    def value_range(self, name: str, filters: Mapping | None = None) -> tuple[float | None, float | None]:
        col = self.column_sql(name)
        where, params = self.where(filters)
        lo, hi = first_row(self.con.execute(f"SELECT min({col}), max({col}) FROM runs {where}", params))
        return lo, hi

    def non_empty_columns(self, filters: Mapping | None = None) -> list[str]:
        """Fields with at least one non-null value among the filtered runs."""
        names = [f.name for f in self.fields()]
        where, params = self.where(filters)
        counts = first_row(self.con.execute(
            f"SELECT {', '.join(f'count({self.column_sql(n)})' for n in names)} FROM runs {where}", params
        ))
        return [n for n, c in zip(names, counts) if c]


def open_store(path: str | Path | None = None, read_only: bool = False) -> Store:
    return Store(path, read_only=read_only)


def environment_json(env: Mapping) -> str:
    return json.dumps(env, sort_keys=True, default=str)

"""The DuckDB store of runs.

One table ``runs`` holds every run: the canonical columns of DESIGN.md plus one column per extra
field an import brought (added with ALTER TABLE, registered in ``fields``); in a store made new,
a canonical column stays virtual (NULL, nothing stored) until a write brings values (_lean_runs).
``imports`` records each import batch (source file, content hash, time) so a batch can be listed
and deleted and a file is never imported twice. ``meta`` holds the schema version; ``MIGRATIONS``
move an older file forward instead of breaking it.

SQL is always built with parameters for values; identifiers come only from the ``fields``
registry and pass ``fields.quote`` (a whitelist of shapes), never straight from user input.

DuckDB lets one process write a file at a time, so a Store holds its connection only while it
is used (``with Store(path) as s: ...``); other processes (a profiling sweep) can then take
their turn. Opening waits while another process holds the file (reporting the wait through
``on_wait``), then says in one sentence that the store is busy. Inside one process (the
Streamlit server's sessions share one DuckDB instance) write transactions take turns on a lock
per file, so a check and the write that depends on it cannot interleave with another
session's; a unique index on ``imports.file_hash`` backs this up in the file itself.

A path that is not a DuckDB file, a truncated or garbled file, and a file from a newer
Paretoscope are refused with one sentence and left untouched.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from engine import derived, duck, run_ids
from engine.fields import CANONICAL, CANONICAL_BY_NAME, QUALITY_BY_NAME, SOURCE_SUFFIX, Field, is_safe_identifier, quote
from engine.filters import from_mapping

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = ROOT / "data" / "runs.duckdb"
SCHEMA_VERSION = 5
STATUSES = ("ok", "failed", "skipped")
_SQL_TYPES = {"text": "VARCHAR", "integer": "BIGINT", "double": "DOUBLE", "timestamp": "TIMESTAMP"}
# Columns that identify a run's content; everything else (provenance) is left out of the hash.
_PROVENANCE = ("run_id", "source", "import_id", "imported_at")
_WRITTEN = ("run_id", "source", "status", "import_id", "imported_at")  # every run has these: add_runs writes them first
_CANONICAL_ORDER = {f.name: i for i, f in enumerate(CANONICAL)}


def first_row(cursor) -> tuple | None:
    """The first row of a result, consuming the rest (DuckDB refuses new work on a connection
    while a result is only partly fetched)."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


class StoreError(Exception):
    """A problem with the store or with what was asked of it, phrased for a person."""


class StoreBusy(StoreError):
    """Another process (or session) kept the store for longer than the wait allowed."""


# File names of tables people import; DuckDB would open such a path as a database of its own
# (a CSV read as a view, changes kept in memory) and the runs would be lost silently.
_TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".parquet", ".pq", ".json", ".jsonl", ".ndjson", ".xlsx", ".xls"}
_DAMAGE = re.compile(r"not a valid DuckDB database|Could not read enough bytes|Corrupt|checksum|"
                     r"Serialization|Failed to load metadata", re.I)


def init_command(path: str | Path) -> str:
    """The command that builds the store at ``path`` from the bundled data, as messages quote it."""
    return f"python -m engine init --db {path}"


def rebuild_hint(path: Path) -> str:
    return (f"move it aside and rebuild the store with `{init_command(path)}`, "
            f"then import your own files again")


def damaged(path: Path, detail: str) -> StoreError:
    return StoreError(f"The store {path} is damaged ({detail}); {rebuild_hint(path)}.")


def explain(e: BaseException, path: Path) -> StoreError | None:
    """A DuckDB error that means the file itself is damaged, as one sentence (else None)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, duckdb.Error) and _DAMAGE.search(msg) and not _is_lock(e):
        return damaged(path, re.sub(r"^[\w ]*Error: ", "", msg)[:160].rstrip("."))
    return None


_NO_SPACE = re.compile(r"No space left|disk is full|File too large|Could not write|out of disk", re.I)


def write_failure(e: BaseException, path: Path) -> StoreError | None:
    """A write the store refused, as one sentence (the transaction is rolled back: nothing was written)."""
    msg = _first_line(e)
    if _NO_SPACE.search(msg):
        detail = re.sub(r"^[\w ]*Error: ", "", msg)[:120]
        return StoreError(f"There is no space left for the store {path} ({detail}); nothing was written, free some "
                          f"space and try again.")
    if re.search(r"conflict|constraint|duplicate key", msg, re.I):
        return StoreError(f"Another writer changed the store {path} at the same time ({msg[:120]}); nothing was "
                          f"written, try again.")
    return explain(e, path)


def check_file(path: Path) -> None:
    """Refuse, before DuckDB touches it, a path that cannot be a store (nothing is written)."""
    if path.suffix.lower() in _TABLE_SUFFIXES:
        raise StoreError(f"{path} names a {path.suffix.lstrip('.').upper()} file, not a store; point --db "
                         f"(or PARETOSCOPE_DB) at a DuckDB file such as data/runs.duckdb, and bring tables in "
                         f"with `python -m engine import`.")
    if path.is_dir():
        raise StoreError(f"{path} is a folder; point --db (or PARETOSCOPE_DB) at a DuckDB file inside it.")


def _check_header(path: Path) -> None:
    """The DuckDB magic bytes. Read only while this process has no connection to the file:
    closing any descriptor of a file drops every POSIX lock the process holds on it, DuckDB's
    lock included (another process could then open the store while this one writes)."""
    if not path.exists():
        return
    with open(path, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12 or head[8:12] != b"DUCK":
        what = "it is empty" if not head else "it has no DuckDB header"
        raise StoreError(f"{path} is not a readable store ({what}: damaged, or another kind of file); "
                         f"{rebuild_hint(path)}.")


def _is_lock(e: BaseException) -> bool:
    """DuckDB's 'Could not set lock on file': another process has the store open."""
    return isinstance(e, duckdb.IOException) and "could not set lock" in str(e).lower()


def lock_holder(e: BaseException) -> str:
    """'another process (PID 123, python3.11)' from DuckDB's lock message."""
    m = re.search(r"held in (\S+) \(PID (\d+)\)", str(e))
    return f"another process (PID {m.group(2)}, {Path(m.group(1)).name})" if m else "another process"


_LOCKS: dict[str, threading.RLock] = {}
_OPEN: dict[str, int] = {}  # Stores open per file in this process
_LOCKS_GUARD = threading.Lock()


def _opened(path: Path, step: int) -> tuple[str, bool]:
    """Count this process's Stores on a file; the first opener checks the file's header."""
    key = str(path.resolve())
    with _LOCKS_GUARD:
        first = step > 0 and not _OPEN.get(key)
        if first:
            _check_header(path)
        _OPEN[key] = _OPEN.get(key, 0) + step
        return key, first


def _write_lock(path: Path) -> threading.RLock:
    """The lock that write transactions on one file take in this process."""
    key = str(path.resolve()) if str(path) != ":memory:" else f":memory:{threading.get_ident()}-{time.monotonic_ns()}"
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.RLock())


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


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
    con.execute("INSERT INTO fields VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(CANONICAL)),
                [v for f in CANONICAL for v in (f.name, f.role, f.dtype, f.unit, f.direction, f.description, True)])


def _add_quality_flag(con: duckdb.DuckDBPyConnection) -> None:
    """v2: the registry says which metrics are quality (accuracy, named benchmarks, fidelity)."""
    con.execute("ALTER TABLE fields ADD COLUMN quality BOOLEAN NOT NULL DEFAULT FALSE")
    known = ["accuracy", *QUALITY_BY_NAME]
    con.execute(f"UPDATE fields SET quality = TRUE WHERE role = 'metric' AND name IN ({', '.join('?' for _ in known)})", known)


def _guard_imports(con: duckdb.DuckDBPyConnection) -> None:
    """v3: a file can be claimed by one batch only (the idempotence check cannot race), and a
    quality attach keeps the values it replaced so it can be undone."""
    # A file the old code imported twice keeps its first batch as the owner of the hash.
    con.execute("""UPDATE imports SET file_hash = NULL WHERE import_id IN (
                     SELECT import_id FROM imports WHERE file_hash IS NOT NULL
                     QUALIFY row_number() OVER (PARTITION BY file_hash ORDER BY imported_at, import_id) > 1)""")
    con.execute("CREATE UNIQUE INDEX imports_file_hash ON imports (file_hash)")
    con.execute(
        """CREATE TABLE quality_changes (
            import_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL,
            old_value DOUBLE, old_source VARCHAR, source_set BOOLEAN NOT NULL)"""
    )


def _keep_md5_ids(con: duckdb.DuckDBPyConnection) -> None:
    """v4: runs without an id of their own are keyed by engine.run_ids' hash, no longer by md5 of
    their values' text. A store that holds runs keyed the old way says so, so an import still finds
    its runs there by the old key too (engine.run_ids.legacy_sql)."""
    if first_row(con.execute("SELECT count(*) FROM runs"))[0]:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('md5_run_ids', 'true')")


def _lean_runs(con: duckdb.DuckDBPyConnection) -> None:
    """v5: in a store without runs yet, the canonical columns beyond a run's id, source, status
    and batch are virtual (always NULL, nothing stored) until a write brings values
    (Store.store_columns). DuckDB writes every stored column for every row inserted, and a typical
    file fills a third of them: the 20 empty columns took 0.29 s of a 1,000,000-row import. The run
    ids are stored uncompressed: 20 random hex digits give a compressor little to find. On that
    import DuckDB's own pick cost 0.15-0.2 s more than zstd, and zstd 0.07 s more (0.2 s of CPU)
    than none, to save 8 MB of a 54 MB file (``make bench import``). A store with runs keeps its
    columns (DuckDB adds no virtual column to a table, and a rebuild would copy every run); a
    store made before keeps its zstd."""
    if first_row(con.execute("SELECT count(*) FROM runs"))[0]:
        return
    cols = con.execute("SELECT name, type FROM pragma_table_info('runs') ORDER BY cid").fetchall()
    con.execute("DROP TABLE runs")
    con.execute("CREATE TABLE runs (" + ", ".join(_lean_column(name, dtype) for name, dtype in cols) + ")")


def _lean_column(name: str, dtype: str) -> str:
    if name == "run_id":
        return f"{quote(name)} {dtype} USING COMPRESSION uncompressed"
    if name in CANONICAL_BY_NAME and name not in _WRITTEN:
        return f"{quote(name)} {dtype} GENERATED ALWAYS AS (CAST(NULL AS {dtype})) VIRTUAL"
    return f"{quote(name)} {dtype}"


MIGRATIONS = {1: _create_v1, 2: _add_quality_flag, 3: _guard_imports, 4: _keep_md5_ids, 5: _lean_runs}  # version -> function that brings version-1 to version


# DuckDB's memory limit for an insert that only streams runs in (Store._streaming): of 64, 128, 192,
# 256, 384 MB and none, the one whose insert of 1,000,000 runs of 14 columns from Arrow touched the
# fewest fresh pages (27,000 against 53,000 without; 64 and 128 MB thrashed).
STREAM_MEMORY = "256MB"
_TEMP_TABLES = ("_staged", "_qmatch", "_export")  # the temp tables the store's users build (names never from input)
MAX_FIELDS = 1000  # columns of the runs table: each new one is an ALTER TABLE over every stored run


def _check_field(f: Field) -> None:
    if not is_safe_identifier(f.name):
        raise StoreError(f"Column name '{f.name}' is not allowed (use lower-case letters, digits and _).")
    if f.dtype not in _SQL_TYPES or f.role not in ("config", "metric", "info"):
        raise StoreError(f"Field '{f.name}' has an unsupported type or role.")


@dataclass
class ImportResult:
    import_id: str | None
    added: int
    duplicates: int
    already_imported: bool = False


class Store:
    """A DuckDB file of runs. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path | None = None, read_only: bool = False, timeout_s: float = 30.0,
                 settings: derived.Settings | None = None, on_wait=None, alone: bool = False):
        """``on_wait(seconds_waited, holder)`` is called about once a second while another process
        holds the file or another session of this process is writing; after ``timeout_s`` the
        store is reported busy (StoreBusy). ``alone``: this process opens the store for one
        command and nothing else (the import command), so a setting DuckDB holds for the whole
        database, not one connection, may change for a statement (``_streaming``)."""
        self.path = Path(path) if path else default_db_path()
        self.alone = alone
        self.settings = settings or derived.Settings()
        self.read_only = read_only
        self.timeout_s, self.on_wait = timeout_s, on_wait
        self._depth = 0  # nesting of transaction()
        self._resets: list[str] = []  # settings _set_for could not put back in an aborted transaction
        self._fields: dict[str, Field] | None = None
        memory = str(self.path) == ":memory:"
        if not memory:
            if read_only and not self.path.exists():
                raise StoreError(f"No store at {self.path}; run `{init_command(self.path)}` first.")
            check_file(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _write_lock(self.path)
        self._key, first = (None, False) if memory else _opened(self.path, +1)
        logged = Path(str(self.path) + ".wal").exists()  # a log DuckDB replays on opening
        try:
            self.con = self._connect()
        except BaseException:
            self._release()
            raise
        if self.settings.gpu_prices:  # looked up by derived.sql's cost_usd: data, not SQL text
            hw, usd = zip(*self.settings.gpu_prices)
            self.con.register(derived.PRICES, pa.table({"gpu_name": list(hw), "usd_per_hour": list(usd)}))
        try:
            if first and not logged:
                self._check_size()  # else replayed or unsaved blocks in memory make the count larger than the file
            if read_only:
                self._check_version(self.schema_version())
            else:
                self._migrate()
        except BaseException as e:
            self.close()
            if isinstance(e, duckdb.Error):
                raise (explain(e, self.path) or StoreError(f"Cannot open the store {self.path}: {_first_line(e)}")) from None
            raise

    def _connect(self) -> duckdb.DuckDBPyConnection:
        start = time.monotonic()
        reported = 0.0
        while True:
            try:
                return duck.connect(str(self.path), read_only=self.read_only)
            except duckdb.Error as e:
                if not _is_lock(e):
                    raise (explain(e, self.path) or StoreError(f"Cannot open the store {self.path}: {_first_line(e)}")) from None
                reported = self._waiting(start, reported, lock_holder(e))
                time.sleep(0.1)

    def _waiting(self, start: float, reported: float, holder: str) -> float:
        """Report a wait about once a second; raise StoreBusy once it has lasted timeout_s."""
        waited = time.monotonic() - start
        if waited >= self.timeout_s:
            raise StoreBusy(f"The store {self.path} is busy: {holder} has held it for over {self.timeout_s:.0f} s; "
                            f"try again when it has finished.")
        if self.on_wait and waited - reported >= 1.0:
            self.on_wait(waited, holder)
            return waited
        return reported

    def _check_size(self) -> None:
        """A file shorter than the blocks its header lists was cut off (a full disk, a partial copy)."""
        row = first_row(self.con.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = current_database()"))
        if row and row[0] and row[1]:
            need, have = int(row[0]) * int(row[1]), self.path.stat().st_size
            if have < need:
                raise damaged(self.path, f"the file is {have:,} bytes but holds {need:,} bytes of blocks in use: "
                                         f"it was cut off")

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()
        self._release()

    def _release(self) -> None:
        if self._key:
            _opened(self.path, -1)
            self._key = None

    def _check_version(self, have: int) -> None:
        if have > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer Paretoscope (schema version {have}; this one knows "
                             f"up to {SCHEMA_VERSION}); open it with that version (the file is left as it is).")

    def _migrate(self) -> None:
        """Bring an older file to this version, all steps in one transaction (a failing step
        leaves the file at its old version)."""
        have = self.schema_version()
        self._check_version(have)
        if have == SCHEMA_VERSION:
            return
        with self.transaction():
            have = self.schema_version()  # another session of this process may have just done it
            if have == 0:
                other = first_row(self.con.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' LIMIT 1"))
                if other:
                    raise StoreError(f"{self.path} is a DuckDB database of something else (it has a table "
                                     f"'{other[0]}' but no Paretoscope schema); point --db at a store or a new file.")
            for version in range(have + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](self.con)
            # once, after the last step: the steps land together or not at all (an upsert of meta
            # took 2-3.5 ms a step, 14 ms of making a new store)
            self.con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction around the block; nested blocks join the outer one, so several
        writes (runs, quality figures, a batch's bookkeeping) land all together or not at all.
        The outermost block takes this file's write lock of this process, so sessions of one
        server write in turn (DuckDB would let both check, then both insert)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        start, reported = time.monotonic(), 0.0
        while not self._lock.acquire(timeout=0.2):
            reported = self._waiting(start, reported, "another session of this program")
        try:
            self.con.execute("BEGIN")
            self._depth = 1
            try:
                yield
            except BaseException as e:
                self._depth = 0
                self._fields = None
                try:
                    self.con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # DuckDB already ended the transaction (a failed write, a full disk)
                resets, self._resets = self._resets, []
                for reset in resets:  # what _set_for could not put back inside the aborted transaction
                    try:
                        self.con.execute(reset)
                    except duckdb.Error:
                        pass
                failure = write_failure(e, self.path) if isinstance(e, duckdb.Error) else None
                if failure:
                    raise failure from None
                raise
            self._depth = 0
            try:
                self.con.execute("COMMIT")
            except duckdb.Error as e:
                self._fields = None
                raise (write_failure(e, self.path) or e) from None
        finally:
            self._lock.release()

    def execute(self, sql: str, params: Sequence | Mapping | None = None) -> duckdb.DuckDBPyConnection:
        """Run one statement on the store's connection; the result answers .df(), .fetchall() and
        .fetchnumpy(). Values go in ``params``; identifiers only through column_sql / quote."""
        return self.con.execute(sql, params)

    @contextmanager
    def registered(self, name: str, df: pd.DataFrame | pa.Table) -> Iterator[str]:
        """``df`` readable by SQL as the view ``name`` for the block. A registered view outlives the
        statement that read it, so it is always unregistered, error or not."""
        self.con.register(name, df)
        try:
            yield name
        finally:
            self.unregister(name)

    def schema_version(self) -> int:
        """The file's schema version, 0 for a file without ``meta``. Outside a transaction the
        table is read straight away (a missing one is a catalog error): a first look at DuckDB's
        catalog (duckdb_tables()) took 13-17 ms on a connection to a store of 1,000,000 runs, and
        every page opens the store on every rerun. Inside one, an error would abort it."""
        if self._depth and not first_row(self.con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'meta'"))[0]:
            return 0
        try:
            row = first_row(self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
        except duckdb.CatalogException:
            if self._depth:
                raise
            return 0
        return int(row[0]) if row else 0

    # -- the field registry ----------------------------------------------------------------
    def fields(self, role: str | None = None) -> list[Field]:
        if self._fields is None:
            quality = "f.quality" if self.schema_version() >= 2 else "FALSE"  # a read-only older file
            rows = self.con.execute(  # pragma_table_info: 1-3 ms where duckdb_columns() took 13-17 ms
                f"""SELECT f.name, f.role, f.dtype, f.unit, f.direction, f.description, {quality}
                   FROM fields f JOIN pragma_table_info('runs') c ON c.name = f.name
                   ORDER BY c.cid"""
            ).fetchall()
            # canonical fields in DESIGN's order, whichever of them a write has given storage (moved last), then the rest
            rows.sort(key=lambda r: _CANONICAL_ORDER.get(r[0], len(_CANONICAL_ORDER)))
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

    def store_columns(self, names: Sequence[str]) -> None:
        """Give storage to those of ``names`` that are virtual (canonical columns no run had a value
        in: _lean_runs) before a write puts values in them, inside the caller's
        transaction. The column keeps its name, type and place among the fields."""
        # pragma_table_info gives a virtual column's expression as its default (a stored one has none):
        # 1 ms where duckdb_columns() took 12-25 ms in an import's transaction
        virtual = [r[0] for r in self.con.execute(
            """SELECT name FROM pragma_table_info('runs')
               WHERE dflt_value IS NOT NULL AND list_contains(?, name)""",
            [list(names)]).fetchall()] if names else []
        for name in virtual:
            self.con.execute(f"ALTER TABLE runs DROP COLUMN {quote(name)}")
            self.con.execute(f"ALTER TABLE runs ADD COLUMN {quote(name)} {_SQL_TYPES[CANONICAL_BY_NAME[name].dtype]}")
        if virtual:
            self._fields = None

    def add_fields(self, fields: Sequence[Field]) -> None:
        """Register the fields the store lacks, in one step (inside the caller's transaction): all
        checked first, then their columns added and the registry written once (it was re-read
        after every column: a 1,000-column file took 26 s and 1.5 GB)."""
        new = list({f.name: f for f in fields if not self.has_field(f.name)}.values())
        for f in new:
            _check_field(f)
        if not new:
            return
        have = first_row(self.con.execute("SELECT count(*) FROM fields"))[0]
        if have + len(new) > MAX_FIELDS:
            raise StoreError(f"{len(new):,} new columns would take the store past its limit of {MAX_FIELDS:,} columns "
                             f"(it has {have:,}); skip the columns you do not need.")
        for f in new:  # DuckDB adds one column per ALTER (a rebuilt table measured slower)
            self.con.execute(f"ALTER TABLE runs ADD COLUMN {quote(f.name)} {_SQL_TYPES[f.dtype]}")
        self.con.executemany(
            "INSERT INTO fields (name, role, dtype, unit, direction, description, canonical, quality) "
            "VALUES (?, ?, ?, ?, ?, ?, FALSE, ?)",
            [[f.name, f.role, f.dtype, f.unit, f.direction, f.description, f.quality] for f in new])
        self._fields = None

    def new_batch(self, *, source: str, kind: str, file_name: str | None = None, file_hash: str | None = None,
                  note: str | None = None, rows: int = 0, at: datetime | None = None) -> str:
        """Record an import batch (inside the caller's transaction); returns its id."""
        import_id = uuid.uuid4().hex[:12]
        at = at or datetime.now(timezone.utc).replace(tzinfo=None)
        self.con.execute("INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [import_id, source, kind, file_name, file_hash, at, rows, note])
        return import_id

    # -- writing ---------------------------------------------------------------------------
    def add_runs(
        self,
        runs: pd.DataFrame | pa.Table,
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

        ``runs`` (a DataFrame, or a pyarrow Table that DuckDB reads without a copy) has canonical
        columns and/or the columns named in ``extra_fields``; a column
        that is neither is an error (importers decide what a column means, not the store).
        Runs without a run_id get a content hash of their configuration and measurements, so
        the same run imported twice is stored once. A file whose ``file_hash`` was imported
        before adds nothing; runs that are all in the store already record no batch (an empty
        batch would hold the file's hash and block its import after the real batch is deleted).
        """
        extra = {f.name: f for f in extra_fields}
        for f in extra.values():
            _check_field(f)
        arrow = isinstance(runs, pa.Table)  # a pyarrow Table (tabular files): registered as it is
        columns = list(runs.column_names if arrow else runs.columns)
        for col in columns:
            if col in derived.DERIVED:
                raise StoreError(f"Column '{col}' is derived from other columns and cannot be imported.")
            if col not in CANONICAL_BY_NAME and col not in extra and not self.has_field(col):
                raise StoreError(f"Column '{col}' has no field definition.")
        provenance = [c for c in ("imported_at", "import_id") if c in columns]
        if provenance:
            runs = runs.drop_columns(provenance) if arrow else runs.drop(columns=provenance)
        if "status" in columns:
            status = runs["status"].unique().drop_null().to_pylist() if arrow else runs["status"].dropna().unique()
            bad = set(status) - set(STATUSES)
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
            if append_to and not first_row(self.con.execute("SELECT 1 FROM imports WHERE import_id = ?", [append_to])):
                raise StoreError(f"No import batch '{append_to}' to add runs to.")
            runs, staged, cols, md5, distinct = self._staged(runs)
            with self.registered("_incoming", runs):
                try:
                    params = {"src": source}  # $src: where a run names no source of its own
                    if md5:  # the md5 key is costly: worked out once, not in both statements below
                        self.con.execute(f"CREATE TEMP TABLE _staged AS {staged}", params)
                        staged, params = "SELECT * FROM _staged", {}
                    total = len(runs)
                    known = " AND (md5_id IS NULL OR md5_id NOT IN (SELECT run_id FROM runs))" if md5 else ""
                    fresh = f"FROM ({staged}) s WHERE run_id NOT IN (SELECT run_id FROM runs){known}"
                    streams = distinct and not first_row(self.con.execute("SELECT 1 FROM runs LIMIT 1"))
                    if streams:
                        left = new = total  # a first import of ids none alike: nothing to count (0.1 s of 1,000,000 runs)
                        fresh = f"FROM ({staged}) s"  # nor to look up: the anti-join took 0.05 s of the insert
                    else:
                        counts = "count(*)" if distinct else "count(DISTINCT run_id)"
                        left, new = first_row(self.con.execute(f"SELECT count(*), {counts} {fresh}", params))
                    if not new and not append_to:
                        return ImportResult(None, 0, total)
                    self.add_fields(list(extra.values()))
                    self.store_columns(cols)
                    now = datetime.now(timezone.utc).replace(tzinfo=None)
                    # a new batch's row goes in first: it claims the file's hash (a unique index)
                    import_id = append_to or self.new_batch(source=source, kind=kind, file_name=file_name,
                                                            file_hash=file_hash, note=note, at=now)
                    target = [*_WRITTEN, *cols]
                    once = "" if left == new else "QUALIFY row_number() OVER (PARTITION BY s.run_id) = 1"  # first of each id
                    with self._unordered(not once), self._streaming(streams and not md5):
                        added = first_row(self.con.execute(
                            f"""INSERT INTO runs ({', '.join(quote(c) for c in target)})
                                SELECT s.run_id, s.source, s.status, $iid, $now {''.join(', s.' + quote(c) for c in cols)}
                                {fresh} {once}""",
                            {"iid": import_id, "now": now} | params))[0]
                    self.con.execute("UPDATE imports SET rows_added = rows_added + ? WHERE import_id = ?",
                                     [added, import_id])
                finally:
                    self.drop_temp("_staged")
        return ImportResult(import_id, added, total - added)

    def _unordered(self, on: bool = True) -> AbstractContextManager[None]:
        """DuckDB free to store the rows of the block's statements in any order (this connection
        only). An insert from Arrow keeps its source's order by merging what its threads wrote, and
        an Arrow read of a CSV comes in pieces of about 74,000 rows, less than a row group: the
        merge then runs on one thread. Unordered, the 1,000,000 runs of ``make bench import`` went
        in 0.52-0.65 s against 0.92-1.04 s, and the whole import from 2.45x to 2.14x DuckDB's
        read. The store promises no order: every read that shows runs in an order asks for it.
        Kept where duplicates are dropped (the first of each id stays the first)."""
        return self._set_for(on, "SET SESSION preserve_insertion_order = false", "RESET SESSION preserve_insertion_order")

    def _streaming(self, on: bool) -> AbstractContextManager[None]:
        """In a store this process has to itself (``alone``), DuckDB's memory limit lowered to
        STREAM_MEMORY for an insert that only streams runs in (read, hashed id, written: no lookup,
        no duplicate to drop). DuckDB keeps in memory every block such an insert has written to the
        file while memory is plentiful; under the limit it lets them go and reuses their buffers.
        1,000,000 runs into a new store by the import command (``make bench import``'s CSV, medians
        of 9): 107,000 fresh pages touched instead of 128,000 and 1.85 s instead of 1.95 s, on
        machines where a fresh page costs the kernel several microseconds. Not where the insert
        drops duplicates (the window over every run thrashed under it: 2.2 s to 2.45 s) or looks
        up the store's runs (a hash table as large as the store). The limit is the database's,
        every connection's, hence only ``alone``."""
        return self._set_for(on and self.alone, f"SET GLOBAL memory_limit = '{STREAM_MEMORY}'", "RESET GLOBAL memory_limit")

    @contextmanager
    def _set_for(self, on: bool, set_sql: str, reset_sql: str) -> Iterator[None]:
        """A DuckDB setting changed for the block (``set_sql``) and put back after it (``reset_sql``)."""
        if not on:
            yield
            return
        self.con.execute(set_sql)
        try:
            yield
        finally:
            try:
                self.con.execute(reset_sql)
            except duckdb.Error:  # a failed statement aborted the transaction: transaction() resets it after the rollback
                self._resets.append(reset_sql)

    def _staged(self, runs: pd.DataFrame | pa.Table) -> tuple[pa.Table, str, list[str], bool, bool]:
        """The incoming runs as an Arrow table to register as ``_incoming`` (with engine.run_ids'
        hash of each run's content), the SELECT that gives each its run id (its own, else that
        hash), source (``$src`` where it has none) and status, the content columns to store beside
        those, and whether the SELECT also gives ``md5_id``: in a store that holds md5-keyed runs,
        the older key of each run without an id of its own, and whether the run ids are surely all
        different (every run hashed, engine.run_ids.surely_distinct). Runs go from there into
        ``runs`` directly, not through a copy (0.3-0.6 s of a 1,000,000-row import)."""
        if not isinstance(runs, pa.Table):  # as DuckDB reads it: the types the hash sees are the stored ones
            with self.registered("_incoming", runs):
                runs = self.con.sql("SELECT * FROM _incoming").to_arrow_table()
        cols = list(runs.column_names)
        content = [c for c in cols if c not in _PROVENANCE]
        every_own = "run_id" in cols and runs.column("run_id").null_count == 0  # nothing to hash (seed, profiler)
        distinct = False
        if every_own:
            hashed = "NULL"
        elif content:
            ids = run_ids.content_ids(runs.select(content))
            distinct = "run_id" not in cols and run_ids.surely_distinct(ids)
            runs = runs.append_column("_content_id", ids)
            hashed = "_content_id"
        else:
            hashed = "md5(CAST(random() AS VARCHAR))"
        own = "CAST(run_id AS VARCHAR)" if "run_id" in cols else "NULL"
        md5 = (f", CASE WHEN {own} IS NULL THEN {run_ids.legacy_sql(content)} END AS md5_id"
               if content and not every_own and self._md5_ids() else "")
        src = "coalesce(CAST(source AS VARCHAR), $src)" if "source" in cols else "$src"
        status = "coalesce(status, 'ok')" if "status" in cols else "'ok'"
        select_cols = [c for c in content if c != "status"]
        sql = (f"SELECT coalesce({own}, {hashed}) AS run_id, {src} AS source, {status} AS status {md5} "
               f"{''.join(', ' + quote(c) for c in select_cols)} FROM _incoming")
        return runs, sql, select_cols, bool(md5), distinct

    def _md5_ids(self) -> bool:
        return bool(first_row(self.con.execute("SELECT 1 FROM meta WHERE key = 'md5_run_ids'")))

    def delete_import(self, import_id: str) -> int:
        """Remove an import batch and its runs, or undo a quality batch (restoring the values it
        replaced); returns how many runs went or were restored."""
        with self.transaction():
            row = first_row(self.con.execute("SELECT kind, imported_at FROM imports WHERE import_id = ?", [import_id]))
            if not row:
                raise StoreError(f"No import batch '{import_id}' (deleted already?); nothing was deleted.")
            if row[0] == "quality":
                return self._undo_quality(import_id, row[1])
            n = first_row(self.con.execute("SELECT count(*) FROM runs WHERE import_id = ?", [import_id]))[0]
            self.con.execute("DELETE FROM quality_changes WHERE run_id IN (SELECT run_id FROM runs WHERE import_id = ?)",
                             [import_id])
            brought = self._filled_fields("WHERE import_id = ?", [import_id])
            from engine import timeseries

            timeseries.delete_runs(self, "WHERE import_id = ?", [import_id])
            self.con.execute("DELETE FROM runs WHERE import_id = ?", [import_id])
            self.con.execute("DELETE FROM imports WHERE import_id = ?", [import_id])
            self._drop_empty(brought)
        return n

    def _undo_quality(self, import_id: str, at: datetime) -> int:
        later = first_row(self.con.execute(
            """SELECT l.import_id, l.metric FROM quality_changes c
               JOIN quality_changes l ON l.run_id = c.run_id AND l.metric = c.metric AND l.import_id <> c.import_id
               JOIN imports i ON i.import_id = l.import_id
               WHERE c.import_id = ? AND i.imported_at >= ? ORDER BY i.imported_at DESC LIMIT 1""", [import_id, at]))
        if later:
            raise StoreError(f"Quality batch {import_id} cannot be undone yet: the later quality batch {later[0]} also "
                             f"set {later[1]} on its runs; undo {later[0]} first.")
        n, touched = set(), []
        for (metric,) in self.con.execute("SELECT DISTINCT metric FROM quality_changes WHERE import_id = ?",
                                          [import_id]).fetchall():
            col = quote(self.field(metric).name)
            src = metric + SOURCE_SUFFIX
            touched += [metric, src]
            for with_source in (False, True):
                sets = f"{col} = c.old_value" + (f", {quote(src)} = c.old_source" if with_source else "")
                if with_source and not self.has_field(src):
                    continue
                rows = self.con.execute(
                    f"""UPDATE runs SET {sets} FROM quality_changes c
                        WHERE c.import_id = ? AND c.metric = ? AND c.source_set = ? AND runs.run_id = c.run_id
                        RETURNING runs.run_id""", [import_id, metric, with_source]).fetchall()
                n.update(r[0] for r in rows)
        self.con.execute("DELETE FROM quality_changes WHERE import_id = ?", [import_id])
        self.con.execute("DELETE FROM imports WHERE import_id = ?", [import_id])
        self._drop_empty([t for t in touched if self.has_field(t)])  # a metric only this batch brought goes with it
        return len(n)

    def verify(self) -> None:
        """Read every value of every table (DuckDB checks each block's checksum as it reads), so
        a garbled file is named here rather than halfway through some later command."""
        try:
            for table in ("meta", "fields", "imports", "runs", "quality_changes"):
                self.con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {table}").fetchall()
        except duckdb.Error as e:
            raise (explain(e, self.path) or damaged(self.path, _first_line(e))) from None

    def drop_temp(self, name: str) -> None:
        """Drop a temp table; after a failed statement DuckDB refuses everything until the
        rollback (which removes it anyway), and that refusal must not hide the real error."""
        if name not in _TEMP_TABLES:
            raise ValueError(f"'{name}' is not one of the store's temp tables")
        try:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        except duckdb.Error:
            pass

    def unregister(self, name: str) -> None:
        """Unregister a DataFrame view, quietly for the same reason as drop_temp."""
        try:
            self.con.unregister(name)
        except duckdb.Error:
            pass

    def batch_kind(self, import_id: str) -> str | None:
        row = first_row(self.con.execute("SELECT kind FROM imports WHERE import_id = ?", [import_id]))
        return row[0] if row else None

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
        names = [n for n in names if n not in CANONICAL_BY_NAME]
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
        """SQL WHERE clause and parameters for a filter mapping: ``filters`` maps a column to a list
        of allowed values or to bounds such as ``{"min": x, "max": y}`` (engine.filters says them all).
        Each column becomes SQL through column_sql (registered fields only), each value a parameter."""
        clauses, params = ([] if include_failed else ["status = 'ok'"]), []
        for f in from_mapping(filters):
            sql, values = f.sql(self.column_sql(f.column))
            clauses.append(sql)
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

    def unpriced_hardware(self) -> list[str]:
        """Hardware the settings give a price that no run is on: most likely a typo, to name."""
        known = set(self.distinct("hardware")) if self.settings.gpu_prices else set()
        return [hw for hw, _ in self.settings.gpu_prices if hw not in known]

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

"""Generic tables (CSV, TSV, Parquet, JSON array of records, JSONL) read with DuckDB.

A file is read into the table ``raw`` of a private in-memory DuckDB connection (CSV with the
header parsed here and every parser option explicit, strict mode on, so a ragged row fails with
its line number; a CSV with columns of numbers is held as the Arrow table DuckDB reads it into).
Column types are detected over the whole column in SQL. ``propose_mapping`` suggests, from
names and units, where each column goes: a canonical name (DESIGN.md) with a conversion factor,
an extra metric, a configuration field, or nowhere. The mapping is a list of plain
``ColumnMap`` records a person can edit before ``apply_mapping`` turns the table into runs.
Everything stays in DuckDB and Arrow: no per-row Python, so a million rows take about a second.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import re
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from engine import duck
from engine.arrow_kernels import call, cast
from engine.fields import (
    CANONICAL_BY_NAME,
    CI_HI,
    CI_LO,
    Field,
    allowed_sql,
    ci_fields,
    is_safe_identifier,
    normalize_name,
    refusal,
)
from engine.importers import Parsed

if TYPE_CHECKING:
    import pandas as pd

# Same limit as .streamlit/config.toml [server] maxUploadSize (Streamlit counts MB as 2**20 bytes).
MAX_UPLOAD_MB = 200
MAX_BYTES = MAX_UPLOAD_MB * 1024 * 1024
# Each new column is an ALTER TABLE over every stored run: a run log with more columns than this is
# almost surely a matrix, not runs (a 1 MB file of 100,000 columns once ran the store out of memory).
MAX_COLUMNS = 500
FORMATS = ("csv", "tsv", "parquet", "json", "jsonl")
_NULLS = ["", "NA", "N/A", "n/a", "null", "NULL", "None", "none", "-"]
KINDS = ("canonical", "metric", "config", "spread", "skip")
# A measurement's spread, kept beside it as information (never an objective): the ends of its 95 %
# interval, or a standard deviation that, with the repeat count, gives one (a t-interval of the mean).
STD = "_std"
SPREAD_SUFFIXES = (CI_LO, CI_HI, STD)
REPEAT_NAMES = ("n", "repeats", "n_repeats", "num_repeats", "n_runs", "num_runs", "runs")

# -- units: token -> (dimension, factor into the canonical unit of that dimension) -------------
_UNITS = {
    "time": {"ms": 1.0, "msec": 1.0, "millis": 1.0, "milliseconds": 1.0, "s": 1000.0, "sec": 1000.0, "secs": 1000.0,
             "seconds": 1000.0, "us": 1e-3, "μs": 1e-3, "usec": 1e-3, "microseconds": 1e-3, "ns": 1e-6, "minutes": 60000.0},
    "energy": {"j": 1.0, "joule": 1.0, "joules": 1.0, "kj": 1e3, "wh": 3600.0, "kwh": 3.6e6, "mwh": 3.6e9},
    "memory": {"mb": 1.0, "gb": 1e3, "kb": 1e-3, "b": 1e-6, "bytes": 1e-6, "mib": 1.048576, "gib": 1073.741824,
               "kib": 1.024e-3, "tb": 1e6},
    "power": {"w": 1.0, "watt": 1.0, "watts": 1.0, "kw": 1e3, "mw": 1e-3},
}
_UNIT_LABEL = {"time": "ms", "energy": "J", "memory": "MB", "power": "W"}
_DIM = {"latency_ms": "time", "latency_p90_ms": "time", "latency_p99_ms": "time", "itl_ms": "time",
        "itl_p90_ms": "time", "itl_p95_ms": "time", "itl_p99_ms": "time", "energy_j": "energy",
        "peak_memory_mb": "memory", "power_w": "power"}

# base name (unit stripped) -> canonical name
_SYNONYMS = {
    "energy_j": ["energy", "energy_per_token", "energy_per_item", "energy_per_sample", "energy_per_image",
                 "energy_per_unit", "energy_per_work_unit", "energy_j"],
    "latency_ms": ["latency", "latency_median", "median_latency", "latency_p50", "p50_latency", "e2e_latency",
                   "latency_ms", "batch_latency"],
    "latency_p90_ms": ["latency_p90", "p90_latency", "latency_p90_ms"],
    "latency_p99_ms": ["latency_p99", "p99_latency", "latency_p99_ms"],
    "itl_ms": ["itl", "inter_token_latency", "median_itl", "itl_median", "tpot", "time_per_output_token", "itl_ms"],
    "itl_p90_ms": ["itl_p90", "p90_itl", "itl_p90_ms"],
    "itl_p95_ms": ["itl_p95", "p95_itl", "itl_p95_ms"],
    "itl_p99_ms": ["itl_p99", "p99_itl", "itl_p99_ms"],
    "peak_memory_mb": ["memory", "peak_memory", "max_memory", "mem", "peak_mem", "vram", "gpu_memory",
                       "memory_peak", "peak_vram", "peak_memory_mb", "max_allocated"],
    "power_w": ["power", "avg_power", "power_draw", "average_power", "power_w"],
    "throughput": ["throughput", "tokens_per_s", "tokens_per_second", "tok_s", "samples_per_s",
                   "samples_per_second", "items_per_s", "images_per_s", "qps", "rps", "requests_per_s"],
    "accuracy": ["accuracy", "acc", "top1", "top1_accuracy"],
    "model": ["model", "model_name", "model_id", "checkpoint"],
    "hardware": ["hardware", "gpu", "gpu_model", "gpu_name", "device", "accelerator", "cpu_model"],
    "precision": ["precision", "dtype", "torch_dtype", "weight_precision", "quantization", "quant"],
    "batch_size": ["batch_size", "bs", "batch", "max_num_seqs"],
    "task": ["task", "benchmark", "workload", "dataset"],
    "num_gpus": ["num_gpus", "gpus", "n_gpus", "gpu_count"],
    "work_unit": ["work_unit", "unit_of_work"],
    "params_b": ["params_b", "params_billions", "parameters_b"],
    "run_id": ["run_id"],
    "status": ["status"],
    "reason": ["reason", "error"],
}
_LOOKUP = {syn: canon for canon, syns in _SYNONYMS.items() for syn in syns}
_SKIP_NAMES = {"import_id", "imported_at"}  # belong to the receiving store


@dataclass
class ColumnMap:
    """Where one source column goes. ``kind``: canonical | metric | config | spread (a metric's
    ``_ci_lo`` / ``_ci_hi`` / ``_std``, converted like the metric) | skip."""

    source: str
    target: str
    kind: str
    dtype: str = "text"  # detected: integer | double | text
    unit: str = ""
    factor: float = 1.0
    direction: str | None = None

    def as_row(self) -> dict:
        return asdict(self)


@dataclass
class Table:
    """A file read into the DuckDB table ``raw`` of a private in-memory connection.

    A CSV's columns whose first lines are all numbers are parsed as DOUBLE by the CSV reader itself
    (``parsed_numbers``), not kept as text and cast in every later pass: DuckDB's CSV reader and
    ``try_cast(text AS DOUBLE)`` read the same strings to the same numbers, so types, checks and
    stored values are those of the text. Where the text itself is wanted (a message quoting a
    cell, a number mapped to a text field, the preview) ``as_text`` reads the file again as text.
    Such a read is held as an Arrow table, which has no ``rowid``: a check that finds a bad value
    reads the file as text (a temporary table, numbered) to name its line.
    """

    name: str
    fmt: str
    con: duckdb.DuckDBPyConnection
    columns: list[str]
    types: dict[str, str]  # column -> integer | double | text
    rows: int
    row_label: str = "row"  # how a person counts positions in this format
    row_offset: int = 1  # rowid + offset = the position shown in messages
    file_hash: str | None = None  # sha256 of the file, where reading it saw every byte (text formats)
    parsed_numbers: frozenset[str] = frozenset()  # CSV columns read as DOUBLE by the reader
    text_sql: str | None = None  # the CSV read with every column as text
    data: pa.Table | None = None  # the Arrow read that ``raw`` is, where parsed_numbers

    def preview(self, n: int = 20) -> pd.DataFrame:
        src = f"({self.text_sql})" if self.parsed_numbers else "raw"
        return self.con.execute(f"SELECT * FROM {src} LIMIT {int(n)}").df()

    def as_text(self) -> None:
        """Read the CSV again with every column as text (a no-op if it was read so)."""
        if self.parsed_numbers:
            self.con.unregister("raw")
            self.con.execute(f"CREATE TEMP TABLE raw AS {self.text_sql}")
            self.parsed_numbers, self.data = frozenset(), None

    def where(self, rowid: int) -> str:
        return f"{self.row_label} {rowid + self.row_offset}"

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Table":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ident(name: str) -> str:
    """Quote any source column name as a DuckDB identifier (only used on the reading connection)."""
    return '"' + str(name).replace('"', '""') + '"'


def _lit(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


# -- reading -----------------------------------------------------------------------------------
def format_of(path: str | Path, name: str | None = None) -> str | None:
    ext = Path(name or path).suffix.lower().lstrip(".")
    return {"csv": "csv", "txt": "csv", "tsv": "tsv", "tab": "tsv", "parquet": "parquet", "pq": "parquet",
            "json": "json", "jsonl": "jsonl", "ndjson": "jsonl"}.get(ext)


def check_size(path: str | Path, name: str, max_bytes: int = MAX_BYTES) -> None:
    size = Path(path).stat().st_size
    if size > max_bytes:
        raise ValueError(f"{name} is {_over(size, max_bytes)} upload limit.")
    if size == 0:
        raise ValueError(f"{name} is empty.")


def _over(size: int, limit: int) -> str:
    """'500 MB, over the 200 MB', in the limit's unit (Streamlit's MB is 2**20 bytes), with as many
    decimals as it takes for the size to read larger than the limit, else in bytes."""
    unit, scale = ("MB", 2**20) if limit >= 2**20 else ("KB", 2**10) if limit >= 2**10 else ("bytes", 1)
    d_lim = 0 if limit % scale == 0 else 1
    shown_limit = f"{limit / scale:,.{d_lim}f} {unit}"
    d = next((d for d in range(d_lim, 4) if round(size / scale, d) > round(limit / scale, d)), None)
    if scale == 1 or d is None:
        exact = "" if scale == 1 else f" ({limit:,} bytes)"
        return f"{size:,} bytes, over the {shown_limit}{exact}"
    return f"{size / scale:,.{d}f} {unit}, over the {shown_limit}"


def check_text(path: str | Path, name: str) -> str:
    """Refuse binary files and text that is not UTF-8, naming the line of the first bad byte.
    Returns the file's sha256 (the store's ``file_hash``), computed in the same pass so an import
    reads the file once here and once in DuckDB, not a third time to hash it."""
    check_head(path, name)
    return _check_body(path, name)


def check_head(path: str | Path, name: str) -> None:
    """The quick part of check_text: a UTF-16 mark or a binary file, seen in the first 8 KB."""
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(f"{name} is UTF-16 encoded; save it as UTF-8 and upload it again.")
    if b"\x00" in head or head.startswith(b"PAR1"):
        raise ValueError(f"{name} is a binary file, not text; expected {format_of(path, name) or 'CSV'} text.")


def _check_body(path: str | Path, name: str) -> str:
    """The pass over the whole file: UTF-8 throughout, and its sha256."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
            if chunk.isascii() and not decoder.getstate()[0]:  # nothing to decode (and no character cut in two before it)
                continue
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                line += _lines_before(fh, chunk, e.start)
                raise ValueError(
                    f"{name} is not UTF-8 text (byte 0x{chunk[e.start]:02x} on line {line}); "
                    "save it as UTF-8 and upload it again."
                ) from None
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ValueError(f"{name} is not UTF-8 text (it ends inside a character); save it as UTF-8.") from None
    return digest.hexdigest()


def _lines_before(fh, chunk: bytes, at: int) -> int:
    """Newlines in the file before byte ``at`` of ``chunk`` (the chunk just read from ``fh``)."""
    end = fh.tell() - len(chunk)
    fh.seek(0)
    n = 0
    while end > 0 and (block := fh.read(min(1 << 22, end))):
        n += block.count(b"\n")
        end -= len(block)
    return n + chunk.count(b"\n", 0, at)


def _header(path: str | Path, name: str, fmt: str) -> tuple[list[str], str]:
    with open(path, "rb") as fh:
        first = fh.readline(1 << 20).decode("utf-8-sig").rstrip("\r\n").split("\r")[0]
    if not first.strip():
        raise ValueError(f"{name}: the first line is empty; expected a header row of column names.")
    delim = "\t" if fmt == "tsv" else ","
    if fmt == "csv" and "," not in first:
        delim = ";" if ";" in first else ("\t" if "\t" in first else ",")
    try:
        header = next(csv.reader(io.StringIO(first), delimiter=delim))
    except csv.Error as e:
        raise ValueError(f"{name}: the header row cannot be read as {fmt.upper()} ({e}).") from None
    return [h.strip() for h in header], delim


def check_width(n: int, name: str) -> None:
    if n > MAX_COLUMNS:
        raise ValueError(f"{name} has {n:,} columns, over the limit of {MAX_COLUMNS:,} columns per file; keep the "
                         f"columns that describe runs and import that.")


def _check_names(names: list[str], name: str) -> None:
    seen: dict[str, str] = {}
    for i, col in enumerate(names):
        if not col:
            raise ValueError(f"{name}: column {i + 1} of the header has no name.")
        key = normalize_name(col)
        if key in seen:
            if seen[key] == col:
                raise ValueError(f"{name}: duplicate column '{col}' (columns {names.index(col) + 1} and {i + 1}).")
            raise ValueError(f"{name}: duplicate column: '{seen[key]}' and '{col}' both become '{key}'.")
        seen[key] = col


def read_table(path: str | Path, name: str | None = None, fmt: str | None = None,
               max_bytes: int = MAX_BYTES) -> Table:
    """Read a tabular file into DuckDB; raises ValueError with one sentence naming the file (and line)."""
    path = Path(path)
    name = name or path.name
    fmt = fmt or format_of(path, name) or "csv"
    if fmt not in FORMATS:
        raise ValueError(f"{name}: unknown table format '{fmt}'; use one of {', '.join(FORMATS)}.")
    check_size(path, name, max_bytes)
    body = None  # the pass over a text file's bytes (UTF-8 and sha256), beside DuckDB's read
    if fmt != "parquet":
        check_head(path, name)
        body = _in_background(_check_body, path, name)
    con = duck.connect()  # no progress bar on stdout, into CLI output
    numbers, texts, text_sql, data = frozenset(), frozenset(), None, None
    try:
        if fmt in ("csv", "tsv"):
            names, delim = _header(path, name, fmt)
            check_width(len(names), name)
            _check_names(names, name)
            text_sql = _csv_sql(path, names, delim, frozenset())
            numbers, texts = _sample(con, _csv_sql(path, names, delim, frozenset(), SAMPLE_BUFFER), names)
            sql = _csv_sql(path, names, delim, numbers)
            label, offset = "line", 2
        elif fmt == "parquet":
            sql = f"SELECT * FROM read_parquet({_lit(str(path))})"
            label, offset = "row", 1
        else:
            form = "array" if fmt == "json" else "newline_delimited"
            sql = f"SELECT * FROM read_json({_lit(str(path))}, format='{form}', records=true, sample_size=-1)"
            label, offset = "record", 1
        try:
            if fmt not in ("csv", "tsv"):  # the schema first: a wide file is refused before it is read
                check_width(len(con.execute(f"DESCRIBE {sql}").fetchall()), name)
            try:
                if numbers:  # read into Arrow, not a table: 0.1 s less for 1,000,000 rows (no row numbers: see Table)
                    data = con.sql(sql).to_arrow_table()
                    con.register("raw", data)
                else:
                    con.execute(f"CREATE TEMP TABLE raw AS {sql}")
            except duckdb.Error:
                if not numbers:
                    raise
                # a column numeric in its first lines holds text further on (or the file is broken):
                # read it all as text, which also words any error exactly as before
                numbers, sql, data = frozenset(), text_sql, None
                con.execute(f"CREATE TEMP TABLE raw AS {sql}")
        except duckdb.Error as e:
            raise ValueError(_reader_error(name, fmt, e)) from None
        described = con.execute("DESCRIBE raw").fetchall()
        names = [r[0] for r in described]
        _check_names(names, name)
        rows = con.execute("SELECT count(*) FROM raw").fetchall()[0][0]
        if rows == 0:
            raise ValueError(f"{name} has a header but no data rows.")
        types = _detect_types(con, described, numbers, texts)
        digest = body.result() if body else None
        return Table(name, fmt, con, names, types, rows, label, offset, digest, numbers, text_sql, data)
    except BaseException as e:
        con.close()
        if body is not None and isinstance(e, Exception):
            try:  # a file that is not UTF-8 text is said to be so, whatever the reader made of it
                body.result()
            except ValueError as bad:
                raise bad from None
        raise


def _in_background(fn, *args) -> Future:
    """fn(*args) on a thread of its own: check_text's pass over a file (its reads and sha256
    release the GIL) runs beside DuckDB's read of it, 0.06-0.08 s off read_table for a 100 MB CSV."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


SAMPLE_LINES = 20_000  # lines of a CSV that decide which columns the reader parses as numbers
# The sample's reads: 2 MiB holds DuckDB's longest line (max_line_size, 2,000,000 bytes), and spares the 32 MB
# buffers a whole read is given: the sample of make bench import's CSV in 0.025-0.03 s, not 0.04-0.05 s.
SAMPLE_BUFFER = 1 << 21


def _csv_sql(path: Path, names: list[str], delim: str, numbers: frozenset[str], buffer: int | None = None) -> str:
    """The CSV read with every parser option explicit (strict: a ragged row fails with its line
    number); the columns in ``numbers`` as DOUBLE, the others as text; ``buffer``: bytes read at a time."""
    cols = "{" + ", ".join(f"{_lit(c)}: '{'DOUBLE' if c in numbers else 'VARCHAR'}'" for c in names) + "}"
    size = f", buffer_size={int(buffer)}" if buffer else ""
    return (f"SELECT * FROM read_csv({_lit(str(path))}, header=false, skip=1, auto_detect=false, "
            f"delim={_lit(delim)}, quote='\"', escape='\"', strict_mode=true, null_padding=false, "
            f"columns={cols}, nullstr=[{', '.join(_lit(s) for s in _NULLS)}], encoding='utf-8'{size})")


def _sample(con, text_sql: str, names: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """What the first SAMPLE_LINES lines say of each column: (numbers, texts). ``numbers``: all
    its cells there are numbers (at least one), worth parsing as numbers in the reader; a guess
    only, as ``_detect_types`` still judges every value and a later cell that is not a number sends
    the whole file back to a text read. ``texts``: a cell there is not a number, so the column is
    text whatever follows (no need to judge the rest)."""
    exprs = []
    for c in names:
        v = ident(c)
        exprs += [f"count({v})", f"count(try_cast({v} AS DOUBLE))"]
    try:
        res = con.execute(f"SELECT {', '.join(exprs)} FROM ({text_sql} LIMIT {SAMPLE_LINES})").fetchall()[0]
    except duckdb.Error:
        return frozenset(), frozenset()  # the full read says what is wrong, with its line
    counts = {c: (res[2 * i], res[2 * i + 1]) for i, c in enumerate(names)}
    return (frozenset(c for c, (n, d) in counts.items() if n and n == d),
            frozenset(c for c, (n, d) in counts.items() if n != d))


def _reader_error(name: str, fmt: str, e: Exception) -> str:
    msg = str(e)
    line = re.search(r"CSV Error on Line: (\d+)", msg)
    found = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", msg)
    if line and found:
        return (f"{name}: line {line.group(1)} has {found.group(2)} fields but the header has "
                f"{found.group(1)} columns.")
    if line and "unicode" in msg.lower():
        return f"{name} is not UTF-8 text (line {line.group(1)}); save it as UTF-8 and upload it again."
    if line:
        detail = msg.split("\n")[2] if len(msg.split("\n")) > 2 else "unreadable"
        return f"{name}: line {line.group(1)} cannot be read as {fmt.upper()} ({detail.strip()})."
    rec = re.search(r"Malformed JSON.*?(record/value \d+)?: ([^.\n]*)", msg)
    if rec:
        where = f" at {rec.group(1).replace('record/value', 'record')}" if rec.group(1) else ""
        return f"{name}: malformed JSON{where} ({rec.group(2).strip()})."
    if fmt == "parquet":
        return f"{name} is not a readable Parquet file."
    first = msg.split("\n")[0].replace("Invalid Input Error: ", "")
    return f"{name} cannot be read as {fmt.upper()}: {first}"


def _detect_types(con, described, numbers: frozenset[str] = frozenset(),
                  texts: frozenset[str] = frozenset()) -> dict[str, str]:
    """integer | double | text per column, judged on every value (not a sample). A CSV column the
    reader parsed as numbers (``numbers``) is judged as its text would be: integer where every
    value is whole; one with a cell that is not a number in its first lines (``texts``) is text."""
    exprs, kinds = [], {}
    for col, sqltype, *_ in described:
        t = sqltype.upper()
        if col in texts:
            kinds[col] = "text"
        elif col in numbers:
            d = ident(col)
            exprs.append("TRUE")
            exprs.append(f"count({d}) = count({d}) FILTER (WHERE {d} = floor({d}) AND abs({d}) < 9e15)")
            kinds[col] = None
        elif t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
            kinds[col] = "double"
        elif t in _NUMERIC_SQL or t in ("VARCHAR", "JSON"):  # an integer column beyond 9e15 is a double
            v = _cell_sql(col, t)
            d = f"try_cast({v} AS DOUBLE)"
            exprs.append(f"count({v}) > 0 AND count({v}) = count({d})")
            exprs.append(f"count({d}) = count({d}) FILTER (WHERE {d} = floor({d}) AND abs({d}) < 9e15)")
            kinds[col] = None
        else:
            kinds[col] = "text"
    pending = [c for c, k in kinds.items() if k is None]
    res = _select_wide(con, exprs)
    for i, col in enumerate(pending):
        numeric, integral = res[2 * i], res[2 * i + 1]
        kinds[col] = ("integer" if integral else "double") if numeric else "text"
    return kinds


def _select_wide(con, exprs: list[str], chunk: int = 30) -> list:
    """One row of many aggregates over ``raw``, ``chunk`` at a time: DuckDB plans a very wide
    SELECT in quadratic time (800 expressions over a 400-column file: 4.2 s in one query, 1.8 s in
    chunks of 30)."""
    res = []
    for i in range(0, len(exprs), chunk):
        res += con.execute(f"SELECT {', '.join(exprs[i:i + chunk])} FROM raw").fetchall()[0]
    return res


def _text_expr(col: str, sqltype: str = "VARCHAR") -> str:
    return f"({ident(col)} ->> '$')" if sqltype.upper() == "JSON" else f"CAST({ident(col)} AS VARCHAR)"


# -- mapping -----------------------------------------------------------------------------------
def split_unit(raw: str) -> tuple[str, str | None, str | None]:
    """'Energy (kWh)' -> ('energy', 'energy', 'kwh'); 'latency_s' -> ('latency', 'time', 's')."""
    name = normalize_name(raw)
    parts = name.split("_")
    if len(parts) > 1:
        tail = parts[-1]
        for dim, units in _UNITS.items():
            if tail in units:
                base = "_".join(parts[:-1])
                base = base[:-3] if base.endswith("_in") else base
                return base, dim, tail
    return name, None, None


def propose_mapping(table: Table) -> list[ColumnMap]:
    """Suggest a target for every column: canonical by name and unit, else extra metric / config;
    a numeric ``<metric>_ci_lo`` / ``_ci_hi`` / ``_std`` follows its metric's name and unit."""
    out, used = [], set()
    for col in table.columns:
        dtype, name = table.types[col], normalize_name(col)
        sfx = next((x for x in SPREAD_SUFFIXES if name.endswith(x) and len(name) > len(x)), None)
        if sfx and dtype in ("integer", "double"):
            of = _propose(name[:-len(sfx)], "double", set())
            if of.kind in ("canonical", "metric"):
                out.append(ColumnMap(col, of.target + sfx, "spread", dtype, of.unit, of.factor, None))
                continue
        m = _propose(col, dtype, used)
        used.add(m.target)
        out.append(m)
    return out


def _propose(col: str, dtype: str, used: set) -> ColumnMap:
    name = normalize_name(col)
    base, dim, unit = split_unit(col)
    canon = _LOOKUP.get(name) or _LOOKUP.get(base)
    if canon and canon in _DIM and dim and _DIM[canon] != dim:
        canon = None  # e.g. 'memory_s' is not a memory
    if canon and canon not in used:
        f = CANONICAL_BY_NAME[canon]
        factor = _UNITS[dim][unit] if (dim and canon in _DIM) else 1.0
        return ColumnMap(col, canon, "canonical", dtype, f.unit, factor, f.direction)
    target = name if name not in CANONICAL_BY_NAME else name + "_x"
    if name in _SKIP_NAMES:
        return ColumnMap(col, name, "skip", dtype)
    if dtype in ("integer", "double"):
        return ColumnMap(col, target, "metric", dtype, unit or "", 1.0, None)
    return ColumnMap(col, target, "config", dtype)


def mapping_from_records(records) -> list[ColumnMap]:
    """Rebuild a mapping from edited rows (a list of dicts, or a DataFrame from st.data_editor)."""
    import pandas as pd
    if isinstance(records, pd.DataFrame):
        records = records.to_dict("records")
    out = []
    for r in records:
        direction = r.get("direction")
        direction = direction if direction in ("min", "max") else None
        factor = r.get("factor")
        factor = 1.0 if factor is None or pd.isna(factor) else float(factor)
        out.append(ColumnMap(str(r["source"]), str(r.get("target") or "").strip(), str(r.get("kind") or "skip"),
                             str(r.get("dtype") or "text"), str(r.get("unit") or ""), factor, direction))
    return out


def _validate_mapping(table: Table, mapping: list[ColumnMap]) -> None:
    name = table.name
    targets: dict[str, str] = {}
    for m in mapping:
        if m.source not in table.types:
            raise ValueError(f"{name}: the mapping names a column '{m.source}' that the file does not have.")
        if m.kind not in KINDS:
            raise ValueError(f"{name}: column '{m.source}' has kind '{m.kind}'; use one of {', '.join(KINDS)}.")
        if m.kind == "skip":
            continue
        if m.kind == "canonical" and m.target not in CANONICAL_BY_NAME:
            raise ValueError(f"{name}: column '{m.source}' maps to '{m.target}', which is not a canonical name.")
        if m.kind != "canonical" and (m.target in CANONICAL_BY_NAME or not is_safe_identifier(m.target)):
            raise ValueError(f"{name}: column '{m.source}' cannot become a field named '{m.target}' "
                             "(use lower-case letters, digits and _, not a canonical name).")
        if m.target in _SKIP_NAMES:
            raise ValueError(f"{name}: column '{m.source}' cannot map to '{m.target}' (set by the store).")
        if m.kind == "spread" and not any(m.target.endswith(x) and len(m.target) > len(x) for x in SPREAD_SUFFIXES):
            raise ValueError(f"{name}: column '{m.source}' is a spread, so its target must be a metric's name followed by "
                             f"{', '.join(SPREAD_SUFFIXES)} (not '{m.target}').")
        if m.target in targets:
            raise ValueError(f"{name}: columns '{targets[m.target]}' and '{m.source}' both map to '{m.target}'.")
        if m.factor == 0 or not math.isfinite(m.factor):
            raise ValueError(f"{name}: column '{m.source}' has a conversion factor of {m.factor}.")
        targets[m.target] = m.source


def _numeric(m: ColumnMap) -> bool:
    if m.kind == "canonical":
        f = CANONICAL_BY_NAME[m.target]
        return f.dtype in ("integer", "double")
    return m.kind in ("metric", "spread") or (m.kind == "config" and m.dtype in ("integer", "double"))


_NUMERIC_SQL = ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT",
                "UTINYINT", "UHUGEINT", "DOUBLE", "FLOAT", "REAL")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}([,' ]\d{3})+(\.\d+)?$")


def _cell_sql(col: str, sqltype: str) -> str:
    """A cell as SQL: native numbers as they are, anything else as its text (JSON null is NULL)."""
    t = sqltype.upper()
    if t in _NUMERIC_SQL or t.startswith("DECIMAL"):
        return ident(col)
    return _text_expr(col, t) if t in ("VARCHAR", "JSON") else f"CAST({ident(col)} AS VARCHAR)"


def _number_sql(col: str, sqltype: str) -> str:
    """A column as DOUBLE (NULL where a cell is not a number)."""
    return f"try_cast({_cell_sql(col, sqltype)} AS DOUBLE)"


def _target_field(table: Table, m: ColumnMap) -> Field:
    """The field a mapped column fills: a canonical one, or the new field it brings."""
    if m.kind == "canonical":
        return CANONICAL_BY_NAME[m.target]
    if m.kind == "spread":
        sfx = next(x for x in SPREAD_SUFFIXES if m.target.endswith(x))
        of = m.target[:-len(sfx)]
        what = {CI_LO: "95 % interval, lower end", CI_HI: "95 % interval, upper end", STD: "standard deviation"}[sfx]
        return Field(m.target, "info", "double", m.unit or "", None, f"{what} of {of}, from column '{m.source}' of "
                     f"{table.name}", lo=0 if sfx == STD else None)
    role = "metric" if m.kind == "metric" else "config"
    dtype = "double" if m.kind == "metric" else ("integer" if _numeric(m) and m.dtype == "integer"
                                                  and m.factor == 1 else ("double" if _numeric(m) else "text"))
    return Field(m.target, role, dtype, m.unit or "", m.direction if role == "metric" else None,
                 f"from column '{m.source}' of {table.name}")


def _check_values(table: Table, kept: list[tuple[ColumnMap, Field]]) -> None:
    """Refuse, in one SQL pass over the raw values, the first one that is not a number or that its
    field's range (engine.fields.limits) does not allow, naming line and column."""
    sqltypes = _sqltypes(table)
    checks, labels = [], []
    row = "0" if table.parsed_numbers else "rowid"  # an Arrow read (Table) says only that a value fails
    for m, f in kept:
        if f.dtype not in ("integer", "double"):
            continue
        v = _number_sql(m.source, sqltypes[m.source])
        scaled = v + (f" * {float(m.factor)!r}" if m.factor != 1 else "")
        if m.source not in table.parsed_numbers:  # else the reader made every cell a number
            checks.append(f"min({row}) FILTER (WHERE {_cell_sql(m.source, sqltypes[m.source])} IS NOT NULL AND {v} IS NULL)")
            labels.append((m, f, "number"))
        checks.append(f"min({row}) FILTER (WHERE NOT {allowed_sql(f, scaled)})")
        labels.append((m, f, "range"))
    if not checks:
        return
    res = _select_wide(table.con, checks)
    if table.parsed_numbers and any(rowid is not None for rowid in res):
        table.as_text()  # the message quotes the cell as the file wrote it
        return _check_values(table, kept)
    for rowid, (m, f, what) in zip(res, labels):
        if rowid is None:
            continue
        text, number = table.con.execute(
            f"SELECT CAST({_cell_sql(m.source, sqltypes[m.source])} AS VARCHAR), {_number_sql(m.source, sqltypes[m.source])} FROM raw "
            "WHERE rowid = ?", [rowid]).fetchall()[0]
        shown = text if len(str(text)) <= 40 else str(text)[:37] + "..."
        where = f"{table.name}: {table.where(rowid)}, column '{m.source}'"
        if what == "number":
            hint = "; write it without thousands separators" if _THOUSANDS.match(str(text).strip()) else ""
            raise ValueError(f"{where}: '{shown}' is not a number (it maps to {m.target}{hint}).")
        value = None if number is None else number * m.factor
        if m.factor != 1 and value is not None:
            shown = f"{shown} × {m.factor:g} = {value:g}"  # the unit conversion is what left the range
        why = refusal(f, shown, value)
        tail = f" (it maps to {m.target})" if m.source != m.target and not why.startswith(m.target + " ") else ""
        raise ValueError(f"{where}: {why}{tail}.")


def _sqltypes(table: Table) -> dict[str, str]:
    return {r[0]: r[1] for r in table.con.execute("DESCRIBE raw").fetchall()}


def apply_mapping(table: Table, mapping: list[ColumnMap]) -> Parsed:
    """Turn the table into canonical runs and extra fields; checks every value in one SQL pass
    before any cast, so a value out of its field's range is refused, never rounded or clipped.
    The runs come back as an Arrow table (``Parsed.data``), in the file's order, each numeric
    column marked as checked against its field (``Parsed.checked``), so the store's checks need
    not read them again."""
    _validate_mapping(table, mapping)
    kept = [(m, _target_field(table, m)) for m in mapping if m.kind != "skip"]
    if not kept:
        raise ValueError(f"{table.name}: every column is skipped; map at least one column.")
    if any(f.dtype not in ("integer", "double") and m.source in table.parsed_numbers for m, f in kept):
        table.as_text()  # a column of numbers kept as text: the text the file wrote, not the number's
    try:
        _check_values(table, kept)
        runs = _mapped_in_arrow(table, kept)
        if runs is None:
            runs = _mapped_in_sql(table, kept)
    except (duckdb.Error, pa.ArrowException) as e:  # a value or type the checks did not foresee: still one sentence
        raise ValueError(f"{table.name} cannot be read: {str(e).splitlines()[0]}") from None
    fields = [f for _, f in kept]
    extra = [f for m, f in kept if m.kind != "canonical"]
    checked = {f.name: f for f in fields if f.dtype in ("integer", "double")}
    if _has_intervals(runs.column_names):
        from engine.importers import frame

        runs = frame(runs)
        extra += intervals_from_std(runs, fields)
    return Parsed(runs, extra, source=table.name, row_label=table.row_label,
                  row_numbers=range(table.row_offset, table.row_offset + len(runs)), checked=checked,
                  file_hash=table.file_hash)


def _mapped_in_sql(table: Table, kept: list[tuple[ColumnMap, Field]]) -> pa.Table:
    """The runs as one SELECT over ``raw`` gives them, into Arrow: numbers through try_cast and
    the factor, NaN missing; text as the file wrote it."""
    sqltypes = _sqltypes(table)
    selects = []
    for m, f in kept:
        src = sqltypes[m.source].upper()
        if f.dtype in ("integer", "double"):
            val = _number_sql(m.source, src) + (f" * {float(m.factor)!r}" if m.factor != 1 else "")
            val = f"nullif({val}, 'NaN'::DOUBLE)"  # NaN is a missing value, as an empty cell is
            expr = f"CAST({val} AS BIGINT)" if f.dtype == "integer" else f"CAST({val} AS DOUBLE)"
        else:
            expr = _text_expr(m.source, src) if src == "JSON" else f"CAST({ident(m.source)} AS VARCHAR)"
        selects.append(f"{expr} AS {ident(m.target)}")
    # no ORDER BY: DuckDB keeps a table's insertion order (preserve_insertion_order), the file's
    return table.con.sql(f"SELECT {', '.join(selects)} FROM raw").to_arrow_table()


def _mapped_in_arrow(table: Table, kept: list[tuple[ColumnMap, Field]]) -> pa.Table | None:
    """The runs taken from a CSV's Arrow read (``Table.data``) as apply_mapping's SELECT would give
    them: a text column as it is; a number times its factor, NaN missing, a whole number where the
    field is one (the checks passed, so every value is whole and in range). 0.02 s for 1,000,000
    rows of 9 columns, against 0.09 s for DuckDB's SELECT into Arrow (``make bench import``). None
    where a column needs the SELECT's conversions (text mapped to a number: try_cast)."""
    if table.data is None:
        return None
    columns = []
    for m, f in kept:
        col = table.data.column(m.source)
        number = pa.types.is_floating(col.type)
        if f.dtype not in ("integer", "double"):
            if number or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                return None
            columns.append(col)
            continue
        if not number:
            return None
        if m.factor != 1:
            col = call("multiply", col, _double(m.factor))
        if call("any", call("is_nan", col)).as_py():
            col = call("if_else", call("is_nan", col), pa.nulls(1, pa.float64())[0], col)
        columns.append(cast(col, pa.int64() if f.dtype == "integer" else pa.float64()))
    return pa.table(columns, names=[m.target for m, _ in kept])


def _double(x: float) -> pa.Scalar:
    """An Arrow double made from its bytes: pyarrow's conversion of a Python value imports pandas
    (tests/test_import_integrity.py: a CLI import loads no pandas)."""
    return pa.Array.from_buffers(pa.float64(), 1, [None, pa.py_buffer(struct.pack("<d", float(x)))])[0]


def _has_intervals(columns: list[str]) -> bool:
    """Whether intervals_from_std has intervals to add to runs of these columns."""
    return any(c in columns for c in REPEAT_NAMES) and any(
        c.endswith(STD) and c[:-len(STD)] in columns for c in columns)


def intervals_from_std(df: pd.DataFrame, fields: list[Field]) -> list[Field]:
    """Add ``<metric>_ci_lo`` / ``_ci_hi`` to ``df`` where a metric comes with ``<metric>_std`` and
    the table has a repeat count (n, repeats, ...): the 95 % t-interval of a mean of n repeats.
    Rows with n < 2 get none; an interval the file states itself is kept as it is."""
    import pandas as pd
    by_name = {f.name: f for f in fields}
    n_col = next((c for c in REPEAT_NAMES if c in df.columns), None)
    if n_col is None:
        return []
    from scipy.stats import t

    n = pd.to_numeric(df[n_col], errors="coerce").where(lambda v: v >= 2)
    added = []
    for name in [c for c in df.columns if c.endswith(STD) and c[:-len(STD)] in df.columns]:
        metric = name[:-len(STD)]
        if metric + CI_LO in df.columns or metric + CI_HI in df.columns:
            continue
        half = pd.Series(t.ppf(0.975, n - 1), index=df.index) * pd.to_numeric(df[name], errors="coerce") / n ** 0.5
        value = pd.to_numeric(df[metric], errors="coerce")
        df[metric + CI_LO], df[metric + CI_HI] = value - half, value + half
        of = by_name.get(metric) or CANONICAL_BY_NAME.get(metric) or Field(metric, "metric", "double")
        added += ci_fields(Field(of.name, of.role, of.dtype, of.unit))  # from a spread: no range to hold it to
    return added


def parse_file(path: str | Path, name: str | None = None, fmt: str | None = None,
               mapping: list[ColumnMap] | None = None, max_bytes: int = MAX_BYTES,
               table: Table | None = None) -> Parsed:
    """Read and map one file; ``table``: the file already read (for a preview), used as it is and
    left open for its owner to close."""
    if table is not None:
        return apply_mapping(table, mapping if mapping is not None else propose_mapping(table))
    with read_table(path, name, fmt, max_bytes) as table:
        return apply_mapping(table, mapping if mapping is not None else propose_mapping(table))

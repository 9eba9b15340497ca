"""Run ids from a run's content, so the same run imported twice is stored once.

A run that brings no id of its own gets an 80-bit hash of its values, written as 20 hex digits:
column by column in name order, each value salted with its column's name and kind, a missing
value as a value of its own. Two runs get the same id when they hold the same values in the same
columns, whatever the order of the columns or of the rows.

The hash is ours, in numpy over the Arrow buffers, because neither library at hand has a fast one
that stays the same from release to release: DuckDB's ``hash()`` changed between 1.2 and 1.3
(duckdb/duckdb#17596, closed as not a bug: it is DuckDB's internal hash), and md5 over the values'
text, which keyed stores before schema version 4, spent 1.2 s of a 1,000,000-row import casting
numbers to text (``make bench import``); this takes 0.2 s there on 2 cores (0.4-0.6 s on one).
Stores keyed by md5 keep their ids: ``legacy_sql`` rebuilds that key, so a re-import still finds
its runs in them.

80 bits: two runs of a store of a hundred million collide with a chance of about 4 in 10^9 (the
birthday bound n^2 / 2^81); each hex digit stored costs time on a large import, so not 128.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.fields import quote

HEX_DIGITS = 20
_PARALLEL_ROWS = 100_000  # below this, threads cost more than they save
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint16)  # byte -> its two hex digits


def _mix(z: np.ndarray, tmp: np.ndarray) -> None:
    """splitmix64's finaliser, in place: every input bit reaches every output bit (uint64, wrapping)."""
    for shift, mult in ((30, _M1), (27, _M2), (31, None)):
        np.right_shift(z, np.uint64(shift), out=tmp)
        z ^= tmp
        if mult is not None:
            z *= mult


def _words(text: str) -> tuple[int, int]:
    """Two 64-bit words of a string, the same on every machine and release (blake2b)."""
    d = hashlib.blake2b(text.encode("utf-8"), digest_size=16, person=b"paretoscope-id").digest()
    return int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little")


def _bits(arr: pa.Array) -> np.ndarray:
    """A boolean Arrow array (no nulls) as a numpy bool array, without pandas (pyarrow's
    to_numpy imports it, a second a process)."""
    raw = np.unpackbits(np.frombuffer(arr.buffers()[1], dtype=np.uint8), bitorder="little")
    return raw[arr.offset:arr.offset + len(arr)].astype(bool)


def _fixed(arr: pa.Array, dtype) -> np.ndarray:
    """The values buffer of a fixed-width Arrow array (null slots hold anything)."""
    dtype = np.dtype(dtype)
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _text(col: pa.ChunkedArray) -> pa.Array:
    """A column as text: Arrow's cast where it has one, else Python's str of each value (lists,
    structs, intervals: rare in a run's content, and slow only there)."""
    try:
        return pc.cast(col, pa.large_string()).combine_chunks()
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.large_string())


def _column(col: pa.ChunkedArray) -> tuple[str, np.ndarray, np.ndarray, np.ndarray | None]:
    """(kind, two uint64 lanes of each value, which values are missing or None)."""
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        # unsigned 64-bit values past 2^63 wrap (safe=False) rather than fail
        kind, arr = ("bool" if pa.types.is_boolean(t) else "int"), pc.cast(col, pa.int64(), safe=False).combine_chunks()
        lo = _fixed(arr, np.int64).view(np.uint64)
        hi = lo
    elif pa.types.is_floating(t) or pa.types.is_decimal(t):
        kind, arr = "float", pc.cast(col, pa.float64()).combine_chunks()
        x = _fixed(arr, np.float64) + 0.0  # a copy with -0.0 made 0.0
        x[np.isnan(x)] = np.nan  # one NaN
        lo = hi = x.view(np.uint64)
    else:  # text, and anything else as the text Arrow writes for it
        kind, arr = "text", pc.dictionary_encode(_text(col))
        words = np.array([_words(s) for s in arr.dictionary.to_pylist()], dtype=np.uint64).reshape(-1, 2)
        if len(words):
            idx = np.clip(_fixed(arr.indices, np.int32), 0, len(words) - 1)  # a null's slot holds any index
            lo, hi = np.take(words[:, 0].copy(), idx), np.take(words[:, 1].copy(), idx)
        else:  # every value missing
            lo = hi = np.zeros(len(arr), dtype=np.uint64)
    missing = _bits(pc.is_null(arr)) if arr.null_count else None
    return kind, lo, hi, missing


def content_ids(table: pa.Table) -> pa.Array:
    """One id per row of ``table`` (its columns are the run's content): an Arrow string array.
    A large table is hashed in slices on several threads (numpy and Arrow let go of the GIL):
    1,000,000 rows on 2 cores, 0.2 s against 0.4-0.6 s on one."""
    n, workers = table.num_rows, min(os.cpu_count() or 1, 4)
    if n < _PARALLEL_ROWS or workers < 2:
        return _ids(table)
    step = -(-n // workers)
    with ThreadPoolExecutor(workers) as pool:
        return pa.concat_arrays(list(pool.map(_ids, [table.slice(i, step) for i in range(0, n, step)])))


def _ids(table: pa.Table) -> pa.Array:
    n = table.num_rows
    h1, h2 = np.full(n, 0x9E3779B97F4A7C15, dtype=np.uint64), np.full(n, 0x3C6EF372FE94F82B, dtype=np.uint64)
    null1, null2 = (np.uint64(w) for w in _words("\x00missing"))
    tmp = np.empty(n, dtype=np.uint64)
    for name in sorted(table.column_names):  # h = mix(h ^ salted value): a bijection of h for each column
        kind, lo, hi, missing = _column(table.column(name))
        s1, s2 = (np.uint64(w) for w in _words(f"{name}\x00{kind}"))
        for h, v, s, null in ((h1, lo, s1, null1), (h2, hi, s2, null2)):
            h ^= v
            h ^= s
            if missing is not None:
                h[missing] ^= v[missing] ^ null  # a missing value counts as the marker, not its slot's bits
            _mix(h, tmp)
    raw = np.empty((n, HEX_DIGITS // 2), dtype=np.uint8)  # lane 1's 8 big-endian bytes, then lane 2's first 2
    raw[:, :8] = h1.astype(">u8").view(np.uint8).reshape(n, 8)
    raw[:, 8:] = h2.astype(">u8").view(np.uint8).reshape(n, 8)[:, :HEX_DIGITS // 2 - 8]
    data = np.take(_HEX, raw).view(np.uint8).reshape(-1)
    offsets = np.arange(0, n * HEX_DIGITS + 1, HEX_DIGITS, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def legacy_sql(columns: list[str]) -> str:
    """SQL for the id stores of schema version 3 and before gave a run of these content columns:
    md5 of 'name=value' pairs in name order, joined by '|'."""
    return "md5(concat_ws('|', " + ", ".join(
        f"'{c}=' || coalesce(CAST({quote(c)} AS VARCHAR), '')" for c in sorted(columns)) + "))"

"""Run ids from a run's content, so the same run imported twice is stored once.

A run that brings no id of its own gets an 80-bit hash of its values, written as 20 hex digits:
column by column in name order, each value salted with its column's name and kind, a missing
value as a value of its own. Two runs get the same id when they hold the same values in the same
columns, whatever the order of the columns or of the rows.

The hash is ours, in numpy over the Arrow buffers, because neither library at hand has a fast one
that stays the same from release to release: DuckDB's ``hash()`` changed between 1.2 and 1.3
(duckdb/duckdb#17596, closed as not a bug: it is DuckDB's internal hash), and md5 over the values'
text, which keyed stores before schema version 4, spent 1.2 s of a 1,000,000-row import casting
numbers to text (``make bench import``); this takes 0.2 s there on 2 cores (0.3 s on one).
Stores keyed by md5 keep their ids: ``legacy_sql`` rebuilds that key, so a re-import still finds
its runs in them.

80 bits: two runs of a store of a hundred million collide with a chance of about 4 in 10^9 (the
birthday bound n^2 / 2^81); each hex digit stored costs time on a large import, so not 128.
"""
from __future__ import annotations

import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from engine.arrow_kernels import call, cast
from engine.fields import quote

HEX_DIGITS = 20
_PARALLEL_ROWS = 100_000  # below this, threads cost more than they save
_BLOCK_ROWS = 1 << 16  # rows hashed at a time, in buffers reused from block to block
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_LITTLE = sys.byteorder == "little"
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


_NULL = tuple(np.uint64(w) for w in _words("\x00missing"))  # what a missing value counts as


def _bits(arr: pa.Array) -> np.ndarray:
    """A boolean Arrow array (no nulls) as a numpy bool array, without pandas (pyarrow's
    to_numpy imports it, a second a process)."""
    raw = np.unpackbits(np.frombuffer(arr.buffers()[1], dtype=np.uint8), bitorder="little")
    return raw[arr.offset:arr.offset + len(arr)].astype(bool)


def _fixed(arr: pa.Array, dtype) -> np.ndarray:
    """The values buffer of a fixed-width Arrow array (null slots hold anything)."""
    dtype = np.dtype(dtype)
    return np.frombuffer(arr.buffers()[1], dtype=dtype, count=len(arr), offset=arr.offset * dtype.itemsize)


def _text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as text: as it is when it is text, else Arrow's cast where it has one, else
    Python's str of each value (lists, structs, intervals: rare in a run's content, and slow only there)."""
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col
    try:
        return cast(col, pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.chunked_array([pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.large_string())])


class _Column:
    """One content column ready to hash: its kind, its values as Arrow int64 or float64, or for
    text its dictionary codes and the two 64-bit words of each distinct value, and its salts."""

    def __init__(self, name: str, col: pa.ChunkedArray):
        t, self.words = col.type, None
        if pa.types.is_integer(t) or pa.types.is_boolean(t):
            # unsigned 64-bit values past 2^63 wrap (safe=False) rather than fail
            self.kind, self.values = ("bool" if pa.types.is_boolean(t) else "int"), cast(col, pa.int64(), safe=False)
        elif pa.types.is_floating(t) or pa.types.is_decimal(t):
            self.kind, self.values = "float", cast(col, pa.float64())
        else:  # text, and anything else as the text Arrow writes for it
            self.kind, self.values = "text", call("dictionary_encode", _text(col)).unify_dictionaries()
            values = self.values.chunks[0].dictionary if self.values.num_chunks else pa.array([], pa.string())
            words = np.array([_words(v) for v in values.to_pylist()], dtype=np.uint64).reshape(-1, 2)
            self.words = (words[:, 0].copy(), words[:, 1].copy())
        self.salts = tuple(np.uint64(w) for w in _words(f"{name}\x00{self.kind}"))


class _Block:
    """Buffers for hashing up to ``rows`` rows at a time, reused block after block: arrays made
    afresh for every column and step were most of the hash's time in a new process (page faults:
    0.25-0.9 s for 1,000,000 rows of 9 columns, against 0.15 s once they were warm)."""

    def __init__(self, rows: int):
        self.h1, self.h2, self.tmp = (np.empty(rows, dtype=np.uint64) for _ in range(3))
        self.lo, self.hi = np.empty(rows, dtype=np.uint64), np.empty(rows, dtype=np.uint64)
        self.missing = np.empty(rows, dtype=bool)
        self.digits = np.empty((rows, HEX_DIGITS // 2), dtype=np.intp)  # each byte of the id, as an index into _HEX

    def lanes(self, c: _Column, start: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The two uint64 lanes of rows start..start+n of ``c``, and which of them are missing."""
        part, at = c.values.slice(start, n), 0
        lo, hi = self.lo[:n], (self.hi[:n] if c.kind == "text" else self.lo[:n])
        for chunk in part.chunks:
            k = len(chunk)
            if c.kind == "float":
                x = lo[at:at + k].view(np.float64)
                np.add(_fixed(chunk, np.float64), 0.0, out=x)  # -0.0 made 0.0
                x[np.isnan(x)] = np.nan  # one NaN
            elif c.kind != "text":
                lo[at:at + k] = _fixed(chunk, np.int64).view(np.uint64)
            elif len(c.words[0]):
                idx = np.clip(_fixed(chunk.indices, np.int32), 0, len(c.words[0]) - 1)  # a null's slot holds any index
                np.take(c.words[0], idx, out=lo[at:at + k])
                np.take(c.words[1], idx, out=hi[at:at + k])
            else:  # every value missing
                lo[at:at + k] = 0
                hi[at:at + k] = 0
            at += k
        if not part.null_count:
            return lo, hi, None
        missing, at = self.missing[:n], 0
        for chunk in part.chunks:
            missing[at:at + len(chunk)] = _bits(call("is_null", chunk)) if chunk.null_count else False
            at += len(chunk)
        return lo, hi, missing

    def hash(self, columns: list[_Column], start: int, n: int, out: np.ndarray) -> None:
        """Rows start..start+n as their hex digits, into ``out``."""
        h1, h2, tmp = self.h1[:n], self.h2[:n], self.tmp[:n]
        h1.fill(0x9E3779B97F4A7C15)
        h2.fill(0x3C6EF372FE94F82B)
        for c in columns:  # h = mix(h ^ salted value): a bijection of h for each column
            lo, hi, missing = self.lanes(c, start, n)
            for h, v, salt, null in ((h1, lo, c.salts[0], _NULL[0]), (h2, hi, c.salts[1], _NULL[1])):
                h ^= v
                h ^= salt
                if missing is not None:
                    h[missing] ^= v[missing] ^ null  # a missing value counts as the marker, not its slot's bits
                _mix(h, tmp)
        if _LITTLE:  # big-endian bytes, in place
            h1.byteswap(inplace=True)
            h2.byteswap(inplace=True)
        digits = self.digits[:n]  # lane 1's 8 bytes, then lane 2's first 2
        digits[:, :8] = h1.view(np.uint8).reshape(n, 8)
        digits[:, 8:] = h2.view(np.uint8).reshape(n, 8)[:, :HEX_DIGITS // 2 - 8]
        np.take(_HEX, digits, out=out.view(np.uint16).reshape(n, HEX_DIGITS // 2))


def content_ids(table: pa.Table) -> pa.Array:
    """One id per row of ``table`` (its columns are the run's content): an Arrow string array.
    Rows are hashed in blocks; a large table's columns are readied (text dictionary-encoded), then
    its blocks hashed, on several threads (numpy and Arrow let go of the GIL): 1,000,000 rows on 2
    cores, 0.15-0.2 s against 0.3 s on one."""
    n = table.num_rows
    names = sorted(table.column_names)
    out = np.empty(n * HEX_DIGITS, dtype=np.uint8)
    starts = range(0, n, _BLOCK_ROWS)
    workers = min(os.cpu_count() or 1, 4, len(starts)) if n >= _PARALLEL_ROWS else 1

    def run(mine: range) -> None:
        block = _Block(min(n, _BLOCK_ROWS))
        for i in mine:
            k = min(_BLOCK_ROWS, n - i)
            block.hash(columns, i, k, out[i * HEX_DIGITS:(i + k) * HEX_DIGITS])

    if workers < 2:
        columns = [_Column(name, table.column(name)) for name in names]
        run(starts)
    else:
        with ThreadPoolExecutor(workers) as pool:
            columns = list(pool.map(lambda name: _Column(name, table.column(name)), names))
            list(pool.map(run, [starts[w::workers] for w in range(workers)]))
    offsets = np.arange(0, n * HEX_DIGITS + 1, HEX_DIGITS, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


def surely_distinct(ids: pa.Array) -> bool:
    """True when no two of ``ids`` (content_ids' output: 20 hex digits each, end to end) are
    equal; False when two may be. Each id's digits fold into one 64-bit number and the numbers are
    sorted: ids that differ fold alike with a chance of about n^2 / 2^65, and then this says False
    and the caller counts the ids as it would without it. 1,000,000 ids: 0.06-0.09 s in an
    import's process, most of it numpy's sort of 64-bit numbers (an introsort: its radix sort is
    for 16 bits and less), against 0.1 s for DuckDB's count(DISTINCT); and ids surely distinct
    let a first import into an empty store insert without the anti-join (Store.add_runs)."""
    n = len(ids)
    if n < 2:
        return True
    offsets, data = ids.buffers()[1:3]
    if ids.offset or ids.null_count or not pa.types.is_string(ids.type) or not np.array_equal(
            np.frombuffer(offsets, dtype=np.int32, count=n + 1), np.arange(0, (n + 1) * HEX_DIGITS, HEX_DIGITS)):
        return False  # not laid out as content_ids writes them

    def word(at: int) -> np.ndarray:  # digits at..at+8 of every id, as a number (read in place)
        return np.ndarray((n,), dtype=np.uint64, buffer=data, offset=at, strides=(HEX_DIGITS,))

    folded = word(0) * _M1  # digits 1-8, then 9-16 and 13-20
    folded ^= word(8)
    folded *= _M1
    folded ^= word(HEX_DIGITS - 8)
    folded.sort()
    return not (folded[1:] == folded[:-1]).any()


def legacy_sql(columns: list[str]) -> str:
    """SQL for the id stores of schema version 3 and before gave a run of these content columns:
    md5 of 'name=value' pairs in name order, joined by '|'."""
    return "md5(concat_ws('|', " + ", ".join(
        f"'{c}=' || coalesce(CAST({quote(c)} AS VARCHAR), '')" for c in sorted(columns)) + "))"

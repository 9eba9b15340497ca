"""Import files into the store: every file is read and checked first, then each becomes its own
import batch, all of them in one transaction. A bad file, or a store that refuses one batch,
leaves the store exactly as it was: a set of files goes in whole or not at all."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from engine import timeseries
from engine.counts import counted
from engine.fields import CANONICAL_BY_NAME, Field, limits, outside, refusal, whole
from engine.importers import Parsed, frame
from engine.importers.detect import detect, parse
from engine.importers.tabular import MAX_BYTES, ColumnMap, Table
from engine.store import ImportResult, Store, StoreBusy, StoreError, write_failure

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class FileImport:
    name: str
    format: str
    result: ImportResult

    def message(self) -> str:
        r = self.result
        if r.already_imported:
            return f"{self.name}: already imported (batch {r.import_id}); nothing added."
        if r.import_id is None:
            held = "its run is" if r.duplicates == 1 else f"its {r.duplicates:,} runs are"
            return f"{self.name}: nothing added; {held} already in the store."
        dup = f", {r.duplicates:,} already in the store" if r.duplicates else ""
        return f"{self.name} ({self.format}): {counted(r.added, 'run')} added as batch {r.import_id}{dup}."


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def companions(paths: list[Path]) -> set[Path]:
    """optimum-benchmark configs that a report in the same folder consumes (not runs themselves)."""
    reports = {p.parent for p in paths if p.name == "benchmark_report.json"}
    return {p for p in paths if p.name == "benchmark_config.json" and p.parent in reports}


def read_files(paths, fmt: str | None = None, mappings: dict[str, list[ColumnMap]] | None = None,
               names: dict[str, str] | None = None, max_bytes: int = MAX_BYTES,
               tables: dict[str, Table] | None = None) -> list[tuple[Path, str, str, Parsed]]:
    """Parse every file (raising on the first bad one): (path, shown name, format, Parsed).
    ``tables``: tabular files already read (by path), mapped without reading them again."""
    paths = [Path(p) for p in paths]
    skip = companions(paths)
    out = []
    for p in paths:
        if p in skip:
            continue
        name = (names or {}).get(str(p), p.name)
        f = fmt or detect(p, name) if p.exists() else fmt
        table = (tables or {}).get(str(p))
        if table is not None and (table.fmt, table.name) != (f, name):
            table = None  # read as another format or under another name: read it again, as asked
        parsed = parse(p, name, f, (mappings or {}).get(str(p)), max_bytes, table)
        if not parsed.n_runs:
            raise ValueError(f"{name} holds no runs.")
        out.append((p, name, f, parsed))
    return out


def check_fields(store: Store, name: str, parsed: Parsed) -> None:
    """Refuse, before writing, a field whose type clashes with the same name in the store."""
    numeric = {"integer", "double"}
    for f in parsed.extra_fields:
        if store.has_field(f.name):
            known = store.field(f.name)
            if known.dtype != f.dtype and not {known.dtype, f.dtype} <= numeric:
                raise ValueError(f"{name}: column '{f.name}' holds {f.dtype} values but the store's '{f.name}' is "
                                 f"{known.dtype}; map it to another name.")
    check_values(store, name, parsed)


def _shown(v) -> str:
    text = str(int(v)) if isinstance(v, float) and v.is_integer() and abs(v) < 1e16 else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _floats(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column as floats (NaN where missing) and a mask of the cells that are not numbers."""
    import pandas as pd
    if raw.dtype != object:
        try:
            return raw.astype("float64").to_numpy(), np.zeros(len(raw), dtype=bool)
        except (TypeError, ValueError):
            pass
    values, notnum = np.full(len(raw), np.nan), np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw.to_numpy(dtype=object)):
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            continue
        try:
            values[i] = np.inf if isinstance(v, int) and abs(v) > 2**1000 else float(v)
            notnum[i] = isinstance(v, bool)
        except OverflowError:
            values[i] = np.inf
        except (TypeError, ValueError):
            notnum[i] = True
    return values, notnum


def check_values(store: Store, name: str, parsed: Parsed) -> None:
    """Refuse the first value that its column's field (the store's, else the file's) does not
    allow, naming row and column: every importer's runs pass here before anything is written
    (the ranges are engine.fields.limits). Numbers held as text or objects become floats, NaN missing.
    A column the importer already held to the same range (``Parsed.checked``) is not read again."""
    extra = {f.name: f for f in parsed.extra_fields}
    for col in parsed.columns:
        f: Field | None = store.field(col) if store.has_field(col) else (extra.get(col) or CANONICAL_BY_NAME.get(col))
        if f is None or f.dtype not in ("integer", "double"):
            continue
        done = parsed.checked.get(col)
        if done is not None and limits(done) == limits(f) and whole(done) == whole(f):
            continue
        raw = frame(parsed.data.select([col]))[col] if isinstance(parsed.data, pa.Table) else parsed.runs[col]
        values, notnum = _floats(raw)
        bad = notnum | outside(f, values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            where = f"{name}: {parsed.where(i)}, column '{col}'"
            if notnum[i]:
                raise ValueError(f"{where}: '{_shown(raw.iloc[i])}' is not a number.")
            raise ValueError(f"{where}: {refusal(f, _shown(values[i]), values[i])}.")
        if raw.dtype == object:
            parsed.runs[col] = values


def import_files(store: Store, paths, fmt: str | None = None, mappings: dict[str, list[ColumnMap]] | None = None,
                 names: dict[str, str] | None = None, max_bytes: int = MAX_BYTES) -> list[FileImport]:
    return add_files(store, read_files(paths, fmt, mappings, names, max_bytes))


def add_files(store: Store, files: list[tuple[Path, str, str, Parsed]]) -> list[FileImport]:
    """Store files already read (read_files: parse first, so the store is held only to write)."""
    done = []
    with store.transaction():  # all files or none; the checks inside too (no session changes the registry between)
        for _, name, _, parsed in files:
            check_fields(store, name, parsed)
        for p, name, f, parsed in files:
            try:
                res = store.add_runs(parsed.data, source=name, kind=f, extra_fields=parsed.extra_fields,
                                     file_name=name, file_hash=parsed.file_hash or file_hash(p),
                                     note="; ".join(parsed.notes) or None)
                if parsed.series is not None and not res.already_imported:  # the runs and their timelines together
                    for run_id, rows in parsed.series.groupby("run_id", sort=False):
                        timeseries.write(store, run_id, rows)
            except StoreBusy:
                raise
            except StoreError as e:
                raise ValueError(f"{name}: {str(e).rstrip('.')}{_none_of(files)}.") from None
            except duckdb.Error as e:  # a full disk, or a clash the checks above did not foresee: still one sentence
                failure = write_failure(e, store.path)
                if failure:
                    raise failure from None
                raise ValueError(f"{name}: the store cannot take these runs ({str(e).splitlines()[0]})"
                                 f"{_none_of(files)}.") from None
            done.append(FileImport(name, f, res))
    return done


def _none_of(files) -> str:
    return f"; none of the {len(files)} files was imported" if len(files) > 1 else ""

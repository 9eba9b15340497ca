"""`python -m engine runs`: list runs with all their columns."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb

from engine.cli import CliError
from engine.commands import (
    add_db,
    add_filter,
    add_format,
    add_settings,
    emit,
    existing_store,
    note_absent_prices,
    parse_filters,
    settings_from,
)
from engine.counts import counted

OUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json"}


def add_parser(sub):
    p = sub.add_parser("runs", help="list runs, all columns")
    add_filter(p)
    add_settings(p)
    add_db(p)
    add_format(p)
    p.add_argument("--include-failed", action="store_true", help="also list failed and skipped runs")
    p.add_argument("--out", metavar="FILE",
                   help="write the runs to FILE instead: FILE.parquet is a Paretoscope exchange file (fields, units "
                        "and directions travel with it), FILE.csv and FILE.json the rows as --format would print them")
    return p


def run(args) -> int:
    out = Path(args.out) if getattr(args, "out", None) else None
    kind = _out_kind(out) if out else None
    with existing_store(args.db, settings=settings_from(args)) as store:
        note_absent_prices(store)
        filters = parse_filters(store, args.filter)
        if out:
            n = _write(store, out, kind, filters, args.include_failed)
            print(f"Wrote {counted(n, 'run')} to {out}.")
            return 0
        cols = store.non_empty_columns(filters)
        emit(store.query(cols, filters, include_failed=args.include_failed, order_by="run_id"), args.format,
             filters=filters)
    return 0


def _out_kind(out: Path) -> str:
    kind = OUT_FORMATS.get(out.suffix.lower())
    if kind is None:
        raise CliError(f"--out {out}: name the file .parquet (a Paretoscope exchange file), .csv or .json.")
    if not out.parent.is_dir():
        raise CliError(f"Cannot write {out}: there is no folder {out.parent}.")
    if out.is_dir():
        raise CliError(f"Cannot write {out}: it is a folder.")
    return kind


def _write(store, out: Path, kind: str, filters, include_failed: bool) -> int:
    """Write into a temporary file beside ``out``, then move it into place: a failed export leaves
    neither a half-written file nor a changed one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # the permissions a plain new file gets
    try:
        if kind == "parquet":
            from engine.exchange import export_runs

            n = export_runs(store, tmp, filters, include_failed=include_failed)
        else:
            rows = store.query(store.non_empty_columns(filters), filters, include_failed=include_failed, order_by="run_id")
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                emit(rows, kind, out=fh)
            n = len(rows)
        os.replace(tmp, out)
        return n
    except (OSError, duckdb.Error) as e:
        raise CliError(f"Cannot write {out}: {str(e).splitlines()[0]}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

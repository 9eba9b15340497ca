"""`python -m engine import FILE... [--format NAME]`: bring run logs into the store; also
`--list` / `--delete ID` for import batches and `--quality FILE` to attach quality scores."""
from __future__ import annotations

import argparse
import sys

from engine import quality
from engine.cli import CliError
from engine.commands import add_db, emit, existing_store
from engine.counts import counted
from engine.importers.detect import check_readable, detect
from engine.importers.registry import FORMATS, LISTED
from engine.importers.tabular import FORMATS as TABLES
from engine.importers.tabular import KINDS, ColumnMap, propose_mapping, read_table
from engine.ingest import add_files, read_files
from engine.store import Store


def add_parser(sub):
    formats = "\n".join(f"  {i.name:<18} {i.description}" for i in LISTED)
    p = sub.add_parser("import", help=f"import run logs (CSV, Parquet, JSON tables; {', '.join(i.kind for i in LISTED)})",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=f"formats (detected from the content; --format skips detection):\n{formats}\n"
                              f"  {', '.join(TABLES)}  tables, one run per row")
    p.add_argument("files", nargs="*", metavar="FILE", help="files to import; each becomes its own import batch")
    add_db(p)
    p.add_argument("--format", choices=FORMATS, default=None, help="skip detection and read every FILE as this format (listed below)")
    p.add_argument("--map", action="append", default=[], metavar="COLUMN=TARGET",
                   help="tabular files: send COLUMN to TARGET (a canonical name, a new field name, or 'skip'); "
                        "optionally COLUMN=TARGET*FACTOR to convert units; repeatable")
    p.add_argument("--direction", action="append", default=[], metavar="FIELD=min|max",
                   help="better-direction of an extra metric; repeatable")
    p.add_argument("--preview", action="store_true", help="show the detected format and column mapping, import nothing")
    p.add_argument("--list", action="store_true", help="list import batches")
    p.add_argument("--delete", metavar="IMPORT_ID",
                   help="delete an import batch and its runs, or undo a quality batch (restoring the values it replaced)")
    p.add_argument("--quality", metavar="FILE", help="attach quality scores (model[, precision], accuracy) to existing runs")
    p.add_argument("--metric", default="accuracy", help="with --quality: the column to attach (default accuracy)")
    p.add_argument("--task", default=None, help="with --quality: the task to take from a file that scores several")
    return p


def _mapping(args, path, tables: dict) -> list[ColumnMap] | None:
    """The proposed mapping as --map and --direction change it; the table read for it is kept in
    ``tables`` (by path) to be imported without reading the file again."""
    if not args.map and not args.direction:
        return None
    table = tables[str(path)] = read_table(path)
    mapping = propose_mapping(table)
    by_source = {m.source: m for m in mapping}
    for spec in args.map:
        col, sep, target = spec.partition("=")
        if not sep or col not in by_source:
            raise CliError(f"--map '{spec}' must name a column of {path} as COLUMN=TARGET.")
        m = by_source[col]
        target, _, factor = target.partition("*")
        from engine.fields import CANONICAL_BY_NAME
        if target == "skip":
            m.kind = "skip"
        elif target in CANONICAL_BY_NAME:
            m.kind, m.target, m.unit, m.direction = "canonical", target, CANONICAL_BY_NAME[target].unit, CANONICAL_BY_NAME[target].direction
        else:
            m.target = target
            m.kind = m.kind if m.kind in ("metric", "config") else ("metric" if m.dtype != "text" else "config")
        if factor:
            try:
                m.factor = float(factor)
            except ValueError:
                raise CliError(f"--map '{spec}': '{factor}' is not a number.") from None
    for spec in args.direction:
        name, _, d = spec.partition("=")
        if d not in ("min", "max"):
            raise CliError(f"--direction '{spec}' must be FIELD=min or FIELD=max.")
        hits = [m for m in mapping if m.target == name and m.kind == "metric"]
        if not hits:
            raise CliError(f"--direction '{spec}': no extra metric '{name}' in {path}.")
        hits[0].direction = d
    assert all(m.kind in KINDS for m in mapping)
    return mapping


def run(args) -> int:
    if args.list or args.delete or args.quality:
        table = quality.read_table(args.quality, task=args.task) if args.quality else None
        with existing_store(args.db) as store:  # only an import of files may create a new store
            return _manage(args, store, table)
    if not args.files:
        raise CliError("Name at least one FILE to import (or use --list, --delete ID, --quality FILE).")
    mappings, tables = {}, {}
    try:
        return _import(args, mappings, tables)
    finally:
        for table in tables.values():
            table.close()


def _import(args, mappings: dict, tables: dict) -> int:
    for f in args.files:  # named as given, before detect() opens them
        check_readable(f, f)
    for f in args.files:
        m = _mapping(args, f, tables) if (args.format or detect(f)) in ("csv", "tsv", "parquet", "json", "jsonl") else None
        if m is not None:
            mappings[str(f)] = m
    if args.preview:
        for f in args.files:
            fmt = args.format or detect(f)
            print(f"{f}: {fmt}")
            if fmt in ("csv", "tsv", "parquet", "json", "jsonl"):
                if str(f) in mappings:
                    maps = mappings[str(f)]
                else:
                    with read_table(f, fmt=fmt) as table:
                        maps = propose_mapping(table)
                import pandas as pd
                emit(pd.DataFrame([m.as_row() for m in maps]), "table")
        return 0
    files = read_files(args.files, args.format, mappings, tables=tables)  # before the store is opened: it is held only to write
    with Store(args.db, alone=True) as store:  # this process opens it for the import alone
        done = add_files(store, files)
    for d in done:
        print(d.message())
    return 0


def _manage(args, store: Store, table) -> int:
    if args.list:
        emit(store.imports(), "table")
        return 0
    if args.delete:
        kind = store.batch_kind(args.delete)
        n = store.delete_import(args.delete)
        print(f"Undid quality batch {args.delete}: the earlier values are back on {counted(n, 'run')}." if kind == "quality"
              else f"Deleted import batch {args.delete} and its {counted(n, 'run')}.")
        return 0
    res = quality.attach(store, table, args.metric, name=args.quality)
    print(res.message() + (f" Undo: python -m engine import --delete {res.batch}" if res.batch else ""))
    if len(res.unmatched):
        print("Rows that matched no run:", file=sys.stderr)
        emit(res.unmatched, "table", out=sys.stderr)
    return 0

"""`python -m engine runs`: list runs with all their columns."""
from __future__ import annotations

from engine.commands import add_db, add_filter, add_format, emit, parse_filters
from engine.store import Store


def add_parser(sub):
    p = sub.add_parser("runs", help="list runs, all columns")
    add_filter(p)
    add_db(p)
    add_format(p)
    p.add_argument("--include-failed", action="store_true", help="also list failed and skipped runs")
    p.add_argument("--out", metavar="FILE.parquet", help="write the runs to a Paretoscope exchange file instead")
    return p


def run(args) -> int:
    with Store(args.db) as store:
        filters = parse_filters(store, args.filter)
        if getattr(args, "out", None):
            from engine.exchange import export_runs

            n = export_runs(store, args.out, filters, include_failed=args.include_failed)
            print(f"Wrote {n} runs to {args.out}.")
            return 0
        cols = store.non_empty_columns(filters)
        emit(store.query(cols, filters, include_failed=args.include_failed, order_by="run_id"), args.format)
    return 0

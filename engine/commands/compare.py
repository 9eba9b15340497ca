"""`python -m engine compare RUN_ID RUN_ID ...`: runs side by side, with differences and the best per metric."""
from __future__ import annotations

import json
import sys

import pandas as pd

from engine.commands import add_db, add_settings, existing_store, note_absent_prices, records, settings_from
from engine.compare import compare


def add_parser(sub):
    p = sub.add_parser("compare", help="put 2 to 8 runs side by side (ids or unique id prefixes)")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    add_settings(p)
    add_db(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    return p


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run(args) -> int:
    with existing_store(args.db, read_only=True, settings=settings_from(args)) as store:
        note_absent_prices(store)
        cmp = compare(store, args.run_ids)
    if args.format == "json":
        out = {"runs": records(cmp.runs), "fields": records(cmp.rows)}
        sys.stdout.write(json.dumps(out, indent=1, default=str) + "\n")
        return 0
    for label, rid in zip(cmp.labels, cmp.runs["run_id"]):
        print(f"{label}: {rid}")
    cols = ["field"] + cmp.labels + [c for c in cmp.rows.columns if c.endswith((" ratio", " diff"))] + \
        (["best"] if "best" in cmp.rows.columns else [])
    table = cmp.rows[cols].map(_cell)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                           "display.max_colwidth", 48):
        print(table.to_string(index=False))
    return 0

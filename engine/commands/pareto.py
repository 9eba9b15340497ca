"""`python -m engine pareto`: the non-dominated runs for the given objectives."""
from __future__ import annotations

import sys

from engine.commands import (
    add_db,
    add_filter,
    add_format,
    add_objective,
    add_settings,
    emit,
    existing_store,
    note_absent_prices,
    parse_filters,
    parse_objectives,
    settings_from,
)
from engine.explore import front_table


def add_parser(sub):
    p = sub.add_parser("pareto", help="the Pareto front of the stored runs")
    add_objective(p)
    add_filter(p)
    add_settings(p)
    add_db(p)
    add_format(p)
    return p


def run(args) -> int:
    with existing_store(args.db, settings=settings_from(args)) as store:
        note_absent_prices(store)
        filters = parse_filters(store, args.filter)
        names, maximize = parse_objectives(store, args.objective)
        result = front_table(store, names, maximize, filters)
    for warning in result.warnings:
        print(f"note: {warning}", file=sys.stderr)
    emit(result.front, args.format, filters=filters)
    return 0

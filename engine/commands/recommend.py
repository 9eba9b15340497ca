"""`python -m engine recommend`: a suggested configuration from the measured runs."""
from __future__ import annotations

import json
import math
import sys

import pandas as pd

from engine.cli import CliError
from engine.commands import (
    add_db,
    add_filter,
    add_format,
    add_objective,
    add_settings,
    existing_store,
    note_absent_prices,
    parse_filters,
    parse_objectives,
    records,
    settings_from,
)
from engine.counts import counted
from engine.fields import CONFIG_COLUMNS
from engine.filters import describe
from engine.recommend import recommend


def add_parser(sub):
    p = sub.add_parser("recommend", help="the feasible Pareto set and one suggested pick, with the reason")
    add_objective(p)
    p.add_argument("--constraint", action="append", default=[], metavar="NAME<=VALUE",
                   help="a hard limit: NAME<=V, NAME>=V, or relative to the best run, e.g. accuracy>=best-1%%; repeatable")
    p.add_argument("--weight", action="append", default=[], metavar="NAME=W",
                   help="preference weight of an objective (pick the front point nearest the weights instead of the knee)")
    add_settings(p)
    add_filter(p)
    add_db(p)
    add_format(p, choices=("table", "json"))
    return p


def _weights(specs: list[str], names: list[str]) -> list[float] | None:
    if not specs:
        return None
    given = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or name.strip() not in names:
            raise CliError(f"Weight '{spec}' must look like NAME=W with NAME one of the objectives ({', '.join(names)}).")
        try:
            given[name.strip()] = float(value)
        except ValueError:
            raise CliError(f"Weight '{spec}': '{value}' is not a number.") from None
        if not math.isfinite(given[name.strip()]) or given[name.strip()] < 0:
            raise CliError(f"Weight '{spec}': '{value}' is not a finite number of at least 0.")
    return [given.get(n, 0.0) for n in names]


def run(args) -> int:
    with existing_store(args.db, settings=settings_from(args)) as store:
        note_absent_prices(store)
        filters = parse_filters(store, args.filter)
        names, maximize = parse_objectives(store, args.objective)
        rec = recommend(store, names, maximize, args.constraint, filters, _weights(args.weight, names))
    if args.format == "json":
        one = lambda r: records(pd.DataFrame([r]))[0] if r else None  # noqa: E731
        out = {
            "pick": one(rec.pick), "runner_up": one(rec.runner_up), "front": records(rec.front),
            "reason": rec.reason, "binding": rec.binding, "feasible": rec.infeasible is None,
            "limits": rec.limits,
            "constraint_costs": [{"constraint": c.constraint, "limit": c.limit, "best_with": c.best_with,
                                  "best_without": c.best_without, "change_pct": round(c.change_pct, 2),
                                  "text": c.text} for c in rec.costs],
            "per_hardware": records(rec.per_hardware) if rec.per_hardware is not None else [],
            "lacking": [{"metric": g.metric, "runs": g.runs, "models": g.models} for g in rec.lacking],
        }
        sys.stdout.write(json.dumps(out, indent=1, default=str) + "\n")
        return 0 if rec.pick else 2
    if rec.pick is None:
        print(f"Nothing is feasible: {rec.reason}")
        return 2
    cols = [c for c in CONFIG_COLUMNS if c != "task" and c in rec.front.columns]
    cols += [o for o in names if o not in cols] + [c.split()[0] for c in rec.constraints if c.split()[0] not in cols + names]
    show = rec.front[cols].copy()
    show.insert(0, "", [""] * len(show))
    show.iloc[0, 0] = "pick"
    if len(show) > 1:
        show.iloc[1, 0] = "runner-up"
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
        print(rec.reason)
        among = f" of the runs where {said}" if (said := describe(filters)) else ""
        print(f"\nFeasible Pareto front{among} ({counted(len(rec.front), 'run')}, in order of preference):")
        print(show.to_string(index=False))
        if rec.costs:
            print("\nWhat each constraint costs:")
            for c in rec.costs:
                print(f"  {c.text}")
        if rec.per_hardware is not None:
            print("\nBest configuration per hardware:")
            hw = [c for c in ("hardware", "model", "num_gpus", "precision", "batch_size") if c in rec.per_hardware.columns] + names
            print(rec.per_hardware[hw].to_string(index=False))
    return 0

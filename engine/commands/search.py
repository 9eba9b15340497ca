"""`python -m engine search`: multi-objective search over a task's measured configurations
(lookup) or a profiler workload's grid (measure), with a strict evaluation budget."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from engine import search as S
from engine.cli import CliError
from engine.commands import (
    add_db,
    add_format,
    add_settings,
    existing_store,
    note_absent_prices,
    parse_objectives,
    records,
    settings_from,
)
from engine.counts import counted
from engine.profiler import catalog
from engine.store import Store, default_db_path


def add_parser(sub):
    p = sub.add_parser("search", help="search a configuration space for the Pareto front, within a budget of evaluations")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--task", help="a task in the store: its measured configurations are the space")
    which.add_argument("--workload", help=f"a profiler workload ({catalog.described()}): its grid is the space")
    p.add_argument("--objective", action="append", default=[], metavar="NAME:min|max",
                   help="objective and direction; repeatable (default: energy_j with itl_p90_ms or latency_ms for a task)")
    p.add_argument("--budget", type=int, required=True, help="most configurations to evaluate")
    p.add_argument("--evaluator", choices=("lookup", "measure"), default=None,
                   help="lookup: the stored measurement (default for --task); measure: run the profiler now (default for --workload)")
    p.add_argument("--algorithm", choices=list(S.ALGORITHMS), default=S.DEFAULT_ALGORITHM,
                   help=f"search algorithm (default {S.DEFAULT_ALGORITHM}; see engine/search/algorithms.py)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="workload grid (measure); repeatable")
    p.add_argument("--filter", action="append", default=[], metavar="COL=VALUE", help="narrow a task's space, e.g. hardware=H100")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ray", metavar="ADDRESS",
                   help="measure on a Ray cluster (local, auto, HOST:PORT): as many configurations "
                        "proposed at a time as it has free workers; this process alone writes the store")
    p.add_argument("--ray-retries", type=int, default=1, metavar="N",
                   help="with --ray, run a configuration again at most N times when its worker or node dies (default 1)")
    p.add_argument("--progress-file", metavar="FILE",
                   help="JSON file kept up to date: the state, one entry per evaluation (its configuration, "
                        "the hypervolume trace, the note), and the result at the end (the Search tab reads it)")
    p.add_argument("--cancel-file", metavar="FILE",
                   help="the search stops before its next evaluation once this file exists; the runs it "
                        "measured stay stored and the result holds them")
    add_settings(p)
    add_db(p)
    add_format(p, choices=("table", "json"))
    return p


class Progress:
    """The --progress-file: one JSON object replaced whole at each change (as the profiler's sweep
    does), so engine.profiler.launch.status() reads a search as it reads a sweep."""

    def __init__(self, path: str | None, task: str | None, budget: int | None, ray: str | None):
        self.path = Path(path) if path else None
        self.t0 = time.monotonic()
        self.info = {"kind": "search", "task": task, "state": "starting", "pid": os.getpid(), "n": budget, "i": 0,
                     "ray": ray, "results": [], "elapsed_s": 0.0, "started": time.time()}

    def write(self, **changes) -> None:
        if self.path is None:
            return
        self.info.update(changes, elapsed_s=round(time.monotonic() - self.t0, 2))
        tmp = self.path.with_name(self.path.name + ".tmp")  # whole or not at all: a reader never sees half
        tmp.write_text(json.dumps(self.info, default=str))
        os.replace(tmp, self.path)

    def step(self, entry: dict) -> None:
        self.info["results"].append(entry)
        self.write(i=len(self.info["results"]))


def run(args) -> int:
    progress = Progress(args.progress_file, args.workload or args.task, args.budget, args.ray)
    progress.write()
    try:
        return _run(args, progress)
    except KeyboardInterrupt:
        progress.write(state="cancelled", error="Interrupted.")
        raise
    except Exception as e:
        progress.write(state="failed", error=str(e) or type(e).__name__)
        raise


def _run(args, progress: Progress) -> int:
    from engine.commands import parse_filters
    from engine.profiler import cluster

    evaluator = args.evaluator or ("lookup" if args.task else "measure")
    if args.budget < 1:
        raise CliError("--budget must be at least 1.")
    if args.ray and (args.task or evaluator != "measure"):
        raise CliError("--ray measures on a cluster; use it with --workload NAME (the measure evaluator).")
    if args.ray_retries < 0:
        raise CliError("--ray-retries must be 0 or more.")
    if args.ray:
        args.ray = cluster.check(args.ray)  # a bad or unreachable address fails here, in seconds
    db = args.db or default_db_path()
    if args.task:
        if evaluator != "lookup":
            raise CliError("A task's space is evaluated by lookup; use --workload NAME to measure on this machine.")
        with existing_store(db, settings=settings_from(args)) as store:
            note_absent_prices(store)
            filters = parse_filters(store, args.filter)
            names, maximize = (parse_objectives(store, args.objective) if args.objective
                               else S.default_objectives(store, args.task))
            space = S.task_space(store, args.task, names, filters)
        ev = S.LookupEvaluator(space)
    else:
        if evaluator != "measure":
            raise CliError("A workload's grid has no stored values to look up; use --evaluator measure (or --task).")
        space = S.workload_space(args.workload, args.grid)
        if args.objective:
            with Store(db) as store:
                names, maximize = _objectives_any(store, args.objective)
        else:
            names, maximize = S.WORKLOAD_OBJECTIVES
        measure, hw, stored_form = S.profiler_measure(db)
        ev = S.MeasureEvaluator(space, db, measure, hw, stored_form)

    budget = min(args.budget, len(space))
    with contextlib.ExitStack() as stack:
        pool, where, on = None, "", {}
        if args.ray:
            c = stack.enter_context(cluster.connect(args.ray))
            pool = cluster.SearchPool(c, space, db, retries=args.ray_retries)
            stack.callback(pool.close)
            where = f"; on {c.describe()}, {pool.slots} at a time"
            on = {"cluster": c.describe(), "slots": pool.slots}
        print(f"search {space.name}: {counted(len(space), 'configuration')} over {', '.join(space.knobs)}; "
              f"budget {budget}; {evaluator} evaluator; objectives {', '.join(names)}{where}", file=sys.stderr, flush=True)

        known = space.values(names) is not None  # the trace is a share of the true front's hypervolume

        progress.write(state="running", n=budget, space_size=len(space), knobs=space.knobs, objectives=names,
                       maximize=maximize, **on)

        def step(n, row, hv):
            cfg = " ".join(f"{k}={row.get(k)}" for k in space.knobs)
            vals = ", ".join(f"{o}={row.get(o):.4g}" if isinstance(row.get(o), (int, float)) else f"{o}=-" for o in names)
            node = f" on {row['node']}" if row.get("node") else ""
            note = f" ({row['search_note']})" if row.get("search_note") else ""
            line = f"[{n}/{budget}] {cfg}{node}: {vals}  {S.hv_text(hv, known)}{note}"
            print(line, file=sys.stderr, flush=True)
            progress.step({"n": n, **{k: _plain(row.get(k)) for k in [*space.knobs, *names, "status", "node"]},
                           "trace": hv, "note": row.get("search_note"), "line": line})

        cancel = Path(args.cancel_file) if args.cancel_file else None
        res = S.search(space, ev, names, maximize, budget, seed=args.seed, algorithm=args.algorithm,
                       on_step=step, pool=pool, stop=(lambda: cancel.exists()) if cancel else None)
    cols = [c for c in space.knobs + names if c in res.front.columns]
    progress.write(state="cancelled" if res.stopped else "done", result={
        "summary": res.summary(), "trace_label": res.trace_label, "trace": [round(h, 6) for h in res.trace],
        "notes": res.notes, "front": records(res.front[cols]), "columns": cols, "evaluated": len(res.evaluated),
        "space_size": len(space)})
    if res.stopped:
        print(f"Cancelled after {counted(len(res.evaluated), 'evaluation')}; the runs measured stay stored.", file=sys.stderr, flush=True)
    if args.format == "json":
        out = {"evaluated": records(_clean(res.evaluated)), "front": records(_clean(res.front)),
               "hypervolume": [round(h, 6) for h in res.hypervolume], "hv_true": res.hv_true,
               "hypervolume_share": res.share and [round(h, 6) for h in res.share], "summary": res.summary(),
               "notes": res.notes, "space_size": len(space), "knobs": space.knobs, "objectives": names}
        sys.stdout.write(json.dumps(out, indent=1, default=str) + "\n")
        return 0
    print(f"Evaluated {len(res.evaluated)} of {counted(len(space), 'configuration')}; {res.summary()}.")
    print(f"Pareto front found ({len(res.front)}):")
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(res.front[cols].to_string(index=False))
    for note in res.notes:
        print(f"Note: {note}.")
    return 0


def _objectives_any(store: Store, specs):
    try:
        return parse_objectives(store, specs)
    except CliError:  # a fresh store may not have the profiler's metrics registered yet
        names, maximize = [], []
        for spec in specs:
            name, _, d = spec.partition(":")
            if d not in ("min", "max"):
                raise CliError(f"Objective '{spec}' needs a direction: {name}:min or {name}:max.") from None
            names.append(name.strip())
            maximize.append(d == "max")
        return names, maximize


def _plain(v):
    """A value as JSON holds it (numpy scalars to Python, NaN to None)."""
    if hasattr(v, "item"):
        v = v.item()
    return None if isinstance(v, float) and v != v else v


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in ("environment",) if c in df.columns])

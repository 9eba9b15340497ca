"""Search quality on the bundled ML.ENERGY data (lookup evaluator): the fraction of the true
front's hypervolume reached after evaluating 10 % / 25 % / 50 % of each task's configurations,
for the surrogate search, plain pymoo NSGA-II and uniform random sampling, over several seeds,
in the same run. Objectives are log-scaled to [0, 1] with the task's true min / max, reference
point 1.1; exhaustive evaluation is 100 % at 100 % by definition. Targets (DESIGN.md): >= 95 % at
10 % and >= 99 % at 25 %."""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine import seed as seed_mod
from engine.search import LookupEvaluator, default_objectives, search, task_space, true_front_hv
from engine.store import Store

FRACTIONS = (0.10, 0.25, 0.50)
SEEDS = int(os.environ.get("BENCH_SEARCH_SEEDS", 15))
ALGORITHMS = tuple(os.environ.get("BENCH_SEARCH_ALGOS", "surrogate,nsga2,random").split(","))
TARGET = {0.10: 0.95, 0.25: 0.99}


def _store() -> Path:
    path = Path(tempfile.mkdtemp()) / "bench-search.duckdb"
    with Store(path) as s:
        seed_mod.load(s)
    return path


def run_task(store: Store, task: str) -> dict:
    objectives, maximize = default_objectives(store, task, with_quality=False)
    space = task_space(store, task, objectives)
    hv_true, bounds = true_front_hv(space, objectives, maximize)
    budget = max(1, int(np.ceil(max(FRACTIONS) * len(space))))
    out = {"task": task, "n": len(space), "objectives": objectives}
    for algo in ALGORITHMS:
        curves = []
        t = time.perf_counter()
        for s in range(SEEDS):
            res = search(space, LookupEvaluator(space), objectives, maximize, budget, seed=s,
                         algorithm=algo, bounds=bounds)
            curves.append(np.array(res.hypervolume) / hv_true)
        out[algo] = {f: float(np.mean([c[max(1, int(np.floor(f * len(space)))) - 1] for c in curves]))
                     for f in FRACTIONS}
        out[algo + "_s"] = time.perf_counter() - t
    return out


def main() -> None:
    path = _store()
    rows = []
    with Store(path) as store:
        tasks = [t for t in store.distinct("task")]
        if len(sys.argv) > 1 and sys.argv[1] not in ("search", "bench_search"):
            tasks = [t for t in tasks if t in sys.argv[1:]]
        for task in tasks:
            rows.append(run_task(store, task))
            r = rows[-1]
            print(f"  {task}: " + "  ".join(f"{a} " + "/".join(f"{100*r[a][f]:.1f}" for f in FRACTIONS)
                                                + f" ({r[a + '_s']:.1f}s)" for a in ALGORITHMS), flush=True)
    head = f"{'task':<16}{'configs':>8}  {'objectives':<22}" + "".join(
        f"{a[:9] + ' ' + str(int(f * 100)) + '%':>16}" for f in FRACTIONS for a in ALGORITHMS)
    print(f"\nhypervolume fraction of the true front, mean of {SEEDS} seeds (exhaustive: 100 % at 100 %)")
    print(head)
    for r in rows:
        print(f"{r['task']:<16}{r['n']:>8}  {'+'.join(o.replace('_ms', '').replace('_j', '') for o in r['objectives']):<22}"
              + "".join(f"{100 * r[a][f]:>15.1f}%" for f in FRACTIONS for a in ALGORITHMS))
    print(f"{'mean':<48}" + "".join(f"{100 * np.mean([r[a][f] for r in rows]):>15.1f}%" for f in FRACTIONS for a in ALGORITHMS))
    for f, target in TARGET.items():
        for a in ALGORITHMS:
            worst = min(r[a][f] for r in rows)
            mean = np.mean([r[a][f] for r in rows])
            print(f"target >= {100 * target:.0f} % at {int(f * 100)} % of the space, {a}: mean over tasks "
                  f"{100 * mean:.1f} % ({'met' if mean >= target else 'NOT met'}), worst task {100 * worst:.1f} % "
                  f"({'met' if worst >= target else 'NOT met'} on every task)")


if __name__ == "__main__":
    main()

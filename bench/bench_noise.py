"""Noise-aware fronts: how often repeated sweeps disagree about which runs are on the front.

The same local sweep (digits-mlp, two precisions, five batch sizes, one thread) runs 5 times, once
with each configuration's interval from its one measurement window, once with ``rounds=3`` (each
configuration measured in 3 rounds interleaved over the sweep; value and interval over the rounds).
Objectives: median latency (min) and throughput (max), each with the 95 % interval the profiler
stores. For every pair of sweeps and every configuration:
- point flip: the configuration is on the point-value front in one sweep and off it in the other;
- confident flip: it is ``front`` in one sweep and ``dominated`` (beaten with confidence) in the
  other, by engine.pareto.membership; ``tied`` is neither, so it never counts.
Printed: both rates over all pairs x configurations, and their ratio (the second should be far
rarer), plus how often the stored interval of a sweep holds the median of the 5 sweeps' values,
a check that the intervals are not too narrow for the sweep-to-sweep drift of this machine.
Nothing is written to a store.
"""
from __future__ import annotations

import itertools
import time

import numpy as np

from engine import pareto
from engine.fields import CI_HI, CI_LO
from engine.profiler import knobs
from engine.profiler.sweep import Options, Sweep
from engine.profiler.workloads import get_workload

GRID = {"precision": ["float32", "bfloat16"], "batch_size": [1, 4, 16, 64, 256], "threads": [1]}
OBJECTIVES = (("latency_ms", False), ("throughput", True))
SWEEPS = 5


def one_sweep(workload, configs, min_time: float, rounds: int) -> list[dict]:
    return Sweep(workload, configs, db=False, options=Options(repeats=5, min_time_s=min_time, warmup=2, rounds=rounds),
                 log=lambda m: None).run()


def memberships(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(point-value front mask, noise-aware membership) of one sweep's rows."""
    names = [o for o, _ in OBJECTIVES]
    maximize = [m for _, m in OBJECTIVES]
    pts = np.array([[r.get(o, np.nan) for o in names] for r in rows], float)
    lo = np.array([[r.get(o + CI_LO, np.nan) for o in names] for r in rows], float)
    hi = np.array([[r.get(o + CI_HI, np.nan) for o in names] for r in rows], float)
    return pareto.non_dominated(pts, maximize), pareto.membership(pts, maximize, lo, hi)


def flip_rates(workload, configs, min_time: float, rounds: int) -> None:
    t0 = time.perf_counter()
    sweeps = [one_sweep(workload, configs, min_time, rounds) for _ in range(SWEEPS)]
    keys = [tuple(r.get(k) for k in GRID) for r in sweeps[0]]
    for s in sweeps:
        assert [tuple(r.get(k) for k in GRID) for r in s] == keys, "sweeps measured different configurations"
    marks = [memberships(s) for s in sweeps]
    pairs = list(itertools.combinations(range(SWEEPS), 2))
    point = sum(int((marks[a][0] != marks[b][0]).sum()) for a, b in pairs)
    confident = sum(int((((marks[a][1] == pareto.FRONT) & (marks[b][1] == pareto.DOMINATED))
                         | ((marks[a][1] == pareto.DOMINATED) & (marks[b][1] == pareto.FRONT))).sum()) for a, b in pairs)
    n = len(pairs) * len(keys)
    how = "one measurement window" if rounds == 1 else f"{rounds} interleaved rounds (--rounds {rounds})"
    print(f"\n-- intervals from {how}, {min_time:g} s windows: {SWEEPS} sweeps in {time.perf_counter() - t0:.0f} s")
    print(f"{'configuration':<16}" + "".join(f"{'sweep ' + str(i + 1):>15}" for i in range(SWEEPS)))
    for i, k in enumerate(keys):
        print(f"{' '.join(str(v) for v in k[:2]):<16}"
              + "".join(f"{('F' if m[0][i] else '-') + ' ' + str(m[1][i]):>15}" for m in marks))
    print("(F: on the point-value front; then the noise-aware membership)")
    print(f"point-value front flips:   {point:4d} of {n} sweep pairs x configurations = {100 * point / n:5.1f} %")
    print(f"front <-> dominated flips: {confident:4d} of {n} sweep pairs x configurations = {100 * confident / n:5.1f} %")
    print(f"ratio confident / point: {confident / point:.2f}" if point else "ratio: no point-value flips in this run")
    for o, _ in OBJECTIVES:
        vals = np.array([[r[o] for r in s] for s in sweeps], float)
        med = np.median(vals, axis=0)
        held = np.mean([[r[o + CI_LO] <= m <= r[o + CI_HI] for r, m in zip(s, med)] for s in sweeps])
        spread = np.mean(np.std(vals, axis=0, ddof=1) / np.mean(vals, axis=0))
        width = np.mean([[(r[o + CI_HI] - r[o + CI_LO]) / 2 / r[o] for r in s] for s in sweeps])
        print(f"{o}: sweep-to-sweep CV {100 * spread:.1f} %, mean interval half-width {100 * width:.1f} %, "
              f"a sweep's interval holds the {SWEEPS}-sweep median in {100 * held:.0f} % of cases")


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in (argv or [])
    w = get_workload("digits-mlp")
    configs = knobs.expand(GRID, w.defaults)
    print(f"digits-mlp, {len(configs)} configurations ({', '.join(f'{k}={v}' for k, v in GRID.items())}), "
          f"objectives {' and '.join(o + (':max' if m else ':min') for o, m in OBJECTIVES)}")
    flip_rates(w, configs, 0.1 if quick else 0.3, 1)
    flip_rates(w, configs, 0.1, 3)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

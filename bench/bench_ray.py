"""Ray benchmark: one 8-configuration sweep measured in this process, then on a private local Ray
instance with 1 and with 2 workers (DESIGN.md: two workers >= 1.7x faster than one; Ray's
overhead <= 0.5 s per configuration).

- ratio: wall-clock of the 1-worker sweep over the 2-worker sweep;
- overhead per configuration, two ways: the time around the measurement (a sweep's wall-clock less
  the time its configurations took inside Sweep.profile), the 1-worker Ray sweep's less this
  process's, / 8, which leaves out the measurement's own variation between sweeps; and plainly
  (1-worker Ray sweep - the same sweep in this process) / 8;
- a worker's cold start (its first task imports torch and builds the workload) is said apart:
  each Ray instance is warmed up with one configuration per worker before the timed sweep.
Each configuration asks for one CPU (threads=1); each figure is the best of 2 sweeps (1 with
--quick). Nothing is written to a store. On a shared 2-core machine the neighbours' load moves
these figures: two workers need both cores free to be twice as fast.
"""
from __future__ import annotations

import time

from engine.profiler import cluster, knobs
from engine.profiler.sweep import Options, Sweep
from engine.profiler.workloads import get_workload

WORKLOAD = "digits-mlp"
GRID = {"precision": ["float32", "int8"], "batch_size": [1, 16, 64, 256], "threads": [1]}


def _sweep(w, configs, opt, c=None) -> tuple[float, float]:
    """(wall-clock seconds, seconds the configurations took inside Sweep.profile) of one sweep."""
    s = Sweep(w, configs, db=False, options=opt, cluster=c, spec={"name": WORKLOAD}, log=lambda _m: None)
    t = time.perf_counter()
    rows = s.run()
    wall = time.perf_counter() - t
    assert all(r["status"] == "ok" for r in rows), [r.get("reason") for r in rows]
    return wall, sum(r["wall_s"] for r in rows)


def on_ray(w, configs, opt, workers: int, rounds: int) -> dict:
    t = time.perf_counter()
    with cluster.connect("local", num_cpus=workers) as c:
        start = time.perf_counter() - t
        cold = _sweep(w, configs[:workers], opt, c)[0]  # starts each worker: imports, the workload
        runs = [_sweep(w, configs, opt, c) for _ in range(rounds)]
    return {"start": start, "cold": cold, "best": min(runs)}


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in (argv or []) or "quick" in (argv or [])
    opt = Options(repeats=5, min_time_s=0.3 if quick else 1.0, warmup=2)
    rounds = 1 if quick else 2
    w = get_workload(WORKLOAD)
    configs = knobs.expand(GRID, w.defaults)
    assert len(configs) == 8
    _sweep(w, configs[:2], opt)  # this process warmed up as the workers are
    local = min(_sweep(w, configs, opt) for _ in range(rounds))
    one, two = on_ray(w, configs, opt, 1, rounds), on_ray(w, configs, opt, 2, rounds)
    n = len(configs)
    print(f"{WORKLOAD}, {n} configurations (precision x batch size, 1 thread each), at least {opt.min_time_s:g} s "
          f"measured per configuration; best of {rounds} sweeps each")
    print(f"{'where':<16} {'wall s':>8} {'inside s':>9} {'Ray start s':>12} {'cold start s':>13}")
    print(f"{'this process':<16} {local[0]:>8.2f} {local[1]:>9.2f} {'-':>12} {'-':>13}")
    for name, r in (("Ray, 1 worker", one), ("Ray, 2 workers", two)):
        print(f"{name:<16} {r['best'][0]:>8.2f} {r['best'][1]:>9.2f} {r['start']:>12.2f} {r['cold']:>13.2f}")
    outside = ((one["best"][0] - one["best"][1]) - (local[0] - local[1])) / n
    print(f"\n2 workers against 1: {one['best'][0] / two['best'][0]:.2f}x faster (target >= 1.7)")
    print(f"Ray's overhead per configuration (target <= 0.5 s): {outside:+.3f} s outside the measurement "
          f"(time around Sweep.profile, Ray's sweep less this process's); {(one['best'][0] - local[0]) / n:+.3f} s "
          f"of wall-clock against this process (measurement noise included)")


if __name__ == "__main__":
    main()

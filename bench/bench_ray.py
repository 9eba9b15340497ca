"""Ray benchmark: one 8-configuration sweep measured in this process, then on a private local Ray
instance with 1 and with 2 workers (DESIGN.md: two workers >= 1.7x faster than one; Ray's
overhead <= 0.5 s per configuration).

- ratio: wall-clock of the 1-worker sweep over the 2-worker sweep;
- overhead per configuration, two ways: (1-worker Ray sweep - the same sweep in this process) / 8,
  and (1-worker Ray sweep - the time its configurations took inside the workers) / 8, which
  leaves out the measurement's own variation between runs;
- a worker's cold start (its first task imports torch and builds the workload) is said apart:
  each Ray instance is warmed up with one configuration per worker before the timed sweep.
Each configuration asks for one CPU (threads=1). Nothing is written to a store. On a shared
2-core machine the neighbours' load moves these figures; the ratio is the one to read.
"""
from __future__ import annotations

import time

from engine.profiler import cluster, knobs
from engine.profiler.sweep import Options, Sweep
from engine.profiler.workloads import get_workload

WORKLOAD = "digits-mlp"
GRID = {"precision": ["float32", "int8"], "batch_size": [1, 16, 64, 256], "threads": [1]}


def _sweep(w, configs, opt, c=None) -> tuple[float, list[dict]]:
    s = Sweep(w, configs, db=False, options=opt, cluster=c, spec={"name": WORKLOAD}, log=lambda _m: None)
    t = time.perf_counter()
    rows = s.run()
    return time.perf_counter() - t, rows


def on_ray(w, configs, opt, workers: int) -> dict:
    t = time.perf_counter()
    with cluster.connect("local", num_cpus=workers) as c:
        start = time.perf_counter() - t
        cold, _ = _sweep(w, configs[:workers], opt, c)  # starts each worker: imports, the workload
        wall, rows = _sweep(w, configs, opt, c)
    assert all(r["status"] == "ok" for r in rows), [r.get("reason") for r in rows]
    return {"start": start, "cold": cold, "wall": wall, "inside": sum(r["wall_s"] for r in rows), "rows": rows}


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in (argv or []) or "quick" in (argv or [])
    opt = Options(repeats=5, min_time_s=0.3 if quick else 1.0, warmup=2)
    w = get_workload(WORKLOAD)
    configs = knobs.expand(GRID, w.defaults)
    assert len(configs) == 8
    _sweep(w, configs[:2], opt)  # this process warmed up as the workers are
    local, rows = _sweep(w, configs, opt)
    local_inside = sum(r["wall_s"] for r in rows)
    one, two = on_ray(w, configs, opt, 1), on_ray(w, configs, opt, 2)
    n = len(configs)
    print(f"{WORKLOAD}, {n} configurations (precision x batch size, 1 thread each), at least {opt.min_time_s:g} s "
          f"measured per configuration")
    print(f"{'where':<26} {'wall s':>8} {'inside s':>9} {'Ray start s':>12} {'cold start s':>13}")
    print(f"{'this process':<26} {local:>8.2f} {local_inside:>9.2f} {'-':>12} {'-':>13}")
    for name, r in (("Ray, 1 worker", one), ("Ray, 2 workers", two)):
        print(f"{name:<26} {r['wall']:>8.2f} {r['inside']:>9.2f} {r['start']:>12.2f} {r['cold']:>13.2f}")
    print(f"\n2 workers against 1: {one['wall'] / two['wall']:.2f}x faster (target >= 1.7)")
    print(f"Ray's overhead per configuration: {(one['wall'] - local) / n:+.3f} s against this process, "
          f"{(one['wall'] - one['inside']) / n:+.3f} s beyond the time inside the worker (target <= 0.5 s)")


if __name__ == "__main__":
    main()

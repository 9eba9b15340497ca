"""Profiler benchmark: the sampler thread's overhead and the repeatability of a sweep.

- overhead: the same workload configuration measured with the background sampler on and off,
  alternating, several times; ratio of the best (lowest) median latencies, on / off: on a shared
  2-core machine a neighbour's burst slows a whole round, and the best round is the one
  measurement such bursts cannot bias towards either side.
- repeatability: 5 repeated sweeps of each CPU workload's small grid; for every configuration the
  coefficient of variation of its median latency across the 5 sweeps, with 1 torch thread and
  with torch's default (all cores): on a small shared machine a second thread that gets
  descheduled stalls every parallel region, and the medians turn bimodal.
Nothing is written to a store. Figures are ratios / CVs measured in this run, on this machine.
"""
from __future__ import annotations

import statistics
import time

from engine.profiler import knobs
from engine.profiler.sweep import Options, Sweep
from engine.profiler.workloads import get_workload

WORKLOADS = {
    "digits-mlp": {"precision": ["float32", "int8"], "batch_size": [1, 64]},
    "digits-cnn": {"precision": ["float32"], "batch_size": [1, 64]},
    "tiny-gpt": {"precision": ["float32"], "batch_size": [1], "seq_len": [16], "gen_len": [8]},
}


def sweep(workload, grid, sample=True, min_time=0.3):
    configs = knobs.expand(grid, workload.defaults)
    return Sweep(workload, configs, db=False, options=Options(repeats=5, min_time_s=min_time, warmup=2, sample=sample),
                 log=lambda m: None).run()


def overhead(name: str, rounds: int = 8) -> tuple[float, float, float]:
    w = get_workload(name)
    grid = {**{k: v[:1] for k, v in WORKLOADS[name].items()}, "threads": [1]}
    on, off = [], []
    for _ in range(rounds):
        off.append(sweep(w, grid, sample=False)[0]["latency_ms"])
        on.append(sweep(w, grid, sample=True)[0]["latency_ms"])
    a, b = min(on), min(off)
    return a, b, a / b


def repeatability(name: str, n: int = 5) -> list[tuple[str, float, float]]:
    w = get_workload(name)
    by_cfg: dict[str, list[float]] = {}
    grid = {**WORKLOADS[name], "threads": [1, None]}
    for _ in range(n):
        for r in sweep(w, grid, min_time=0.2):
            key = f"{r['precision']} b{r['batch_size']} t{r['threads']}"
            by_cfg.setdefault(key, []).append(r["latency_ms"])
    return [(k, statistics.median(v), statistics.stdev(v) / statistics.mean(v)) for k, v in by_cfg.items()]


def main() -> None:
    t0 = time.perf_counter()
    print("sampler overhead (best of 8 alternating rounds; median latency of one configuration, 1 thread, sampler every 50 ms)")
    print(f"{'workload':<12} {'sampler on ms':>14} {'off ms':>10} {'on/off':>8}")
    for name in WORKLOADS:
        on, off, ratio = overhead(name)
        print(f"{name:<12} {on:>14.4f} {off:>10.4f} {ratio:>8.3f}", flush=True)
    print("\nrepeatability (5 sweeps; CV of the median latency across them)")
    print(f"{'workload':<12} {'config':<18} {'median ms':>10} {'CV':>8}")
    for name in WORKLOADS:
        for key, med, cv in repeatability(name):
            print(f"{name:<12} {key:<18} {med:>10.4f} {cv:>8.3f}", flush=True)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

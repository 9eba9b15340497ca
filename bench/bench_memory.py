"""Memory predicted before running vs measured: the prediction error over a sweep.

A Llama-style model built from a config with random weights (51.6 M parameters: hidden 512, 6
layers, intermediate 1536, 8 heads / 2 KV heads, a 32,000-row vocabulary), saved like a real
checkpoint and profiled through `hf:FOLDER` over precision x quant x batch x prompt. For each
configuration: memory.predict's peak (before it runs) against the measured peak_memory_mb (on
the CPU: the model's tensor bytes plus the rise of RSS from then to its peak, as measure.py
says; on a GPU: torch's peak allocated).
Prints every configuration and the median and worst absolute error in % (target: median <= 15 %,
worst <= 30 %). Nothing is written to a store.
"""
from __future__ import annotations

import statistics
import tempfile
import time

from engine.profiler import hf_tiny, knobs
from engine.profiler.sweep import Options, Sweep
from engine.profiler.workloads import get_workload

GRID = {"precision": ["float32", "bfloat16"], "quant": ["none", "int8-weight", "int8-dynamic"],
        "batch_size": [1, 8], "prompt_len": [32, 256], "gen_len": [4], "threads": [2]}


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = hf_tiny.save(f"{tmp}/bench-llama", "llama", hidden=512, layers=6, vocab=1024, intermediate=1536,
                              heads=8, kv_heads=2, model_vocab=32000)
        w = get_workload(f"hf:{folder}")
        w.eval_chunks = 1  # quality is not what this measures
        configs = knobs.expand(GRID, w.defaults)
        # bfloat16 matmuls are slow on a CPU without native bfloat16: its long prompts are left out
        configs = [c for c in configs if c["precision"] == "float32" or c["prompt_len"] <= 32]
        rows = Sweep(w, configs, db=False, options=Options(repeats=1, min_time_s=0.0, warmup=0),
                     log=lambda m: None).run()
    print(f"{'precision':<9} {'quant':<13} {'batch':>5} {'prompt':>6} {'predicted MB':>13} {'measured MB':>12} {'error':>7}")
    errors = []
    for r in rows:
        if r["status"] != "ok" or not r.get("peak_memory_mb"):
            print(f"{r['precision']:<9} {r['quant']:<13} {r['batch_size']:>5} {r['prompt_len']:>6}  "
                  f"{r['status']}: {r.get('reason') or 'no peak memory measured'}")
            continue
        err = (r["predicted_memory_mb"] - r["peak_memory_mb"]) / r["peak_memory_mb"] * 100
        errors.append(abs(err))
        print(f"{r['precision']:<9} {r['quant']:<13} {r['batch_size']:>5} {r['prompt_len']:>6} "
              f"{r['predicted_memory_mb']:>13.1f} {r['peak_memory_mb']:>12.1f} {err:>+6.1f}%", flush=True)
    print(f"\nprediction error over {len(errors)} configurations: median {statistics.median(errors):.1f} %, "
          f"worst {max(errors):.1f} % (target: median <= 15 %, worst <= 30 %)")
    print(f"(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

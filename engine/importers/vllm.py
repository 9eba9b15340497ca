"""vLLM serving benchmark results: the JSON that ``benchmarks/benchmark_serving.py --save-result``
(``vllm bench serve --save-result`` today) writes, one object per benchmark run: date, backend,
model_id, tokenizer_id, num_prompts, request_rate ("inf" when all requests are sent at once),
burstiness, max_concurrency, then the metrics: duration, completed, total_input_tokens,
total_output_tokens, request_throughput, output_throughput, total_token_throughput and
mean_/median_/std_/pNN_ of ttft_ms, tpot_ms, itl_ms (and e2el_ms when selected). One file is one run."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from engine.fields import BACKEND, TTFT_MS, Field
from engine.importers import Importer, Parsed

# source key -> canonical or extra name (all milliseconds or per-second already)
_METRICS = {
    "output_throughput": "throughput",  # output tokens/s: work unit token
    "median_itl_ms": "itl_ms", "p90_itl_ms": "itl_p90_ms", "p95_itl_ms": "itl_p95_ms", "p99_itl_ms": "itl_p99_ms",
    "median_e2el_ms": "latency_ms", "p90_e2el_ms": "latency_p90_ms", "p99_e2el_ms": "latency_p99_ms",
    "median_ttft_ms": "ttft_ms", "p99_ttft_ms": "ttft_p99_ms", "median_tpot_ms": "tpot_ms",
    "request_throughput": "request_throughput",
}
EXTRA = {f.name: f for f in (
    TTFT_MS,
    Field("ttft_p99_ms", "metric", "double", "ms", "min", "p99 time to first token"),
    Field("tpot_ms", "metric", "double", "ms", "min", "median time per output token after the first"),
    Field("request_throughput", "metric", "double", "1/s", "max", "completed requests per second"),
    Field("request_rate", "config", "double", "1/s", None, "requests sent per second (empty: all at once)"),
    Field("num_prompts", "config", "integer", "count", None, "requests in the benchmark"),
    BACKEND,
    Field("benchmark_date", "info", "text", "", None, "when the benchmark ran (its YYYYMMDD-HHMMSS)"),
)}


def looks_like(data) -> bool:
    return isinstance(data, dict) and {"model_id", "completed", "duration", "output_throughput"} <= set(data)


def _num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def parse_file(path: str | Path, name: str) -> Parsed:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not looks_like(data):
        raise ValueError(f"{name}: not a vLLM benchmark_serving result (needs model_id, completed, output_throughput).")
    conc = data.get("max_concurrency")
    row = {"task": "text-generation", "model": data["model_id"], "work_unit": "token",
           "batch_size": conc if isinstance(conc, int) and not isinstance(conc, bool) else None,
           "backend": data.get("backend") or data.get("endpoint_type"), "request_rate": _num(data.get("request_rate")),
           "num_prompts": data.get("num_prompts"), "benchmark_date": data.get("date")}
    row.update({col: _num(data.get(key)) for key, col in _METRICS.items() if key in data})
    used = [f for f in EXTRA.values() if f.name in row]
    return Parsed(pd.DataFrame([row]), used, source=name)


IMPORTER = Importer("vllm-serving", "a vLLM benchmark_serving result",
                    "vLLM benchmark_serving results (--save-result JSON)", "json", looks_like, parse_file)

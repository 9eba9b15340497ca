"""vLLM serving benchmark results: the JSON that ``benchmarks/benchmark_serving.py --save-result``
(``vllm bench serve --save-result`` today) writes, one object per benchmark run: date, backend,
model_id, tokenizer_id, num_prompts, request_rate ("inf" when all requests are sent at once),
burstiness, max_concurrency, then the metrics: duration, completed, total_input_tokens,
total_output_tokens, request_throughput, output_throughput, total_token_throughput and
mean_/median_/std_/pNN_ of ttft_ms, tpot_ms, itl_ms (and e2el_ms when selected). One object is one
run: a file written with ``--save-result`` holds one; with ``--append-result`` each benchmark adds
its object as a new line (JSON Lines), so a sweep over concurrency or request rate is one file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from engine.fields import BACKEND, TTFT_MS, Field
from engine.importers import Importer, Parsed

if TYPE_CHECKING:
    pass

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


def _records(path: Path, name: str) -> list[dict]:
    """The file's result objects: one JSON document, or one per line (--append-result)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as e:
        if e.msg != "Extra data":  # one broken document: detect.parse names the line and column
            raise
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{name}: line {n}: malformed JSON at column {e.colno} ({e.msg}).") from None
            if not looks_like(out[-1]):
                raise ValueError(f"{name}: line {n} is not a vLLM benchmark_serving result "
                                 "(needs model_id, completed, duration, output_throughput).")
    return out


def _row(data: dict) -> dict:
    conc = data.get("max_concurrency")
    row = {"task": "text-generation", "model": data["model_id"], "work_unit": "token",
           "batch_size": conc if isinstance(conc, int) and not isinstance(conc, bool) else None,
           "backend": data.get("backend") or data.get("endpoint_type"), "request_rate": _num(data.get("request_rate")),
           "num_prompts": data.get("num_prompts"), "benchmark_date": data.get("date")}
    row.update({col: _num(data.get(key)) for key, col in _METRICS.items() if key in data})
    return row


def parse_file(path: str | Path, name: str) -> Parsed:
    import pandas as pd
    records = _records(path, name)
    if not records or not all(looks_like(r) for r in records):
        raise ValueError(f"{name}: not a vLLM benchmark_serving result (needs model_id, completed, output_throughput).")
    runs = pd.DataFrame([_row(r) for r in records])
    used = [f for f in EXTRA.values() if f.name in runs.columns]
    return Parsed(runs, used, source=name)


IMPORTER = Importer("vllm-serving", "a vLLM benchmark_serving result",
                    "vLLM benchmark_serving results (--save-result JSON, --append-result JSON Lines)",
                    ("json", "jsonl"), looks_like, parse_file)

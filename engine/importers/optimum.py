"""optimum-benchmark results: ``benchmark.json`` ({"config": BenchmarkConfig, "report":
BenchmarkReport}) or ``benchmark_report.json`` with ``benchmark_config.json`` beside it.

A report has one section per measured target (load, forward, prefill, decode, per_token, call,
...), each with latency {unit "s", values, count, total, mean, p50, p90, p95, p99, stdev},
throughput {value, unit "tokens/s" | "samples/s" | ...}, memory {unit "MB", max_ram,
max_global_vram, max_process_vram, max_reserved, max_allocated}, energy {unit "kWh", cpu, ram,
gpu, total} and efficiency {value, unit "tokens/kWh" | ...}; absent measurements are null.
One file is one run. The main section is decode for text generation (tokens), else forward
or call; per_token gives inter-token latency."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from engine.fields import BACKEND, Field
from engine.importers import Importer, Parsed
from engine.store import environment_json

if TYPE_CHECKING:
    pass

SECTIONS = ("load", "prefill", "decode", "per_token", "forward", "call", "train", "overall", "warmup")
_MEASURES = {"memory", "latency", "throughput", "energy", "efficiency"}
_TIME = {"s": 1000.0, "ms": 1.0}
_ENERGY_J = {"kWh": 3.6e6, "Wh": 3600.0, "J": 1.0}
_WORK_UNIT = {"tokens": "token", "samples": "sample", "images": "image", "steps": "step", "videos": "video"}

EXTRA = {f.name: f for f in (
    Field("prefill_latency_ms", "metric", "double", "ms", "min", "optimum-benchmark prefill latency (p50): time to first token"),
    Field("prefill_throughput", "metric", "double", "1/s", "max", "optimum-benchmark prefill throughput"),
    Field("load_latency_ms", "metric", "double", "ms", "min", "optimum-benchmark model load time"),
    Field("ram_peak_mb", "metric", "double", "MB", "min", "peak host RAM of the process"),
    Field("vram_reserved_mb", "metric", "double", "MB", "min", "peak memory reserved by the framework allocator"),
    Field("run_energy_j", "metric", "double", "J", "min", "energy of the measured section, all work units together"),
    Field("sequence_length", "config", "integer", "tokens", None, "input sequence length"),
    Field("new_tokens", "config", "integer", "tokens", None, "tokens generated per request"),
    BACKEND,
    Field("benchmark_name", "info", "text", "", None, "optimum-benchmark experiment name"),
)}


def is_report(data) -> bool:
    return isinstance(data, dict) and bool(data) and all(
        k in SECTIONS or (isinstance(v, dict) and set(v) <= _MEASURES) for k, v in data.items()
    ) and any(isinstance(v, dict) and set(v) & _MEASURES for v in data.values())


def is_config(data) -> bool:
    return isinstance(data, dict) and {"backend", "scenario", "launcher"} <= set(data)


def looks_like(data) -> bool:
    return isinstance(data, dict) and (
        ("config" in data and "report" in data and is_config(data["config"]) and isinstance(data["report"], dict))
        or is_report(data)
    )


def parse_file(path: str | Path, name: str | None = None) -> Parsed:
    import pandas as pd
    path = Path(path)
    name = name or path.name
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and "report" in data and "config" in data:
        config, report = data["config"], data["report"]
    elif is_report(data):
        beside = path.with_name("benchmark_config.json")
        if not beside.exists():
            raise ValueError(f"{name} is an optimum-benchmark report without its benchmark_config.json beside it; "
                             "upload both files together.")
        config, report = json.loads(beside.read_text(encoding="utf-8")), data
    else:
        raise ValueError(f"{name}: not an optimum-benchmark result (needs 'config' and 'report').")
    if not is_config(config):
        raise ValueError(f"{name}: the optimum-benchmark config has no backend/scenario/launcher sections.")
    return Parsed(pd.DataFrame([_row(config, report, name)]), list(EXTRA.values()), source=name)


def _refuse_config(path: Path, name: str) -> Parsed:
    raise ValueError(f"{name} is an optimum-benchmark config; import its benchmark_report.json "
                     "(with this file beside it) instead.")


IMPORTER = Importer("optimum-benchmark", "optimum-benchmark",
                    "optimum-benchmark results (benchmark.json, or benchmark_report.json with its benchmark_config.json)",
                    "json", looks_like, parse_file)
# A config alone holds no measurements: recognised only to say which file to import instead.
CONFIG_IMPORTER = Importer("optimum-benchmark-config", "optimum-benchmark config", "an optimum-benchmark config",
                           "json", is_config, _refuse_config, listed=False)


def _num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _row(config: dict, report: dict, name: str) -> dict:
    backend, scenario, env = config.get("backend") or {}, config.get("scenario") or {}, config.get("environment") or {}
    shapes = scenario.get("input_shapes") or {}
    gen = scenario.get("generate_kwargs") or {}
    device = backend.get("device") or "cpu"
    gpus = env.get("gpu") or []
    ids = backend.get("device_ids")
    n_gpus = len(str(ids).split(",")) if ids not in (None, "") else (env.get("gpu_count") or len(gpus))
    row = {
        "task": backend.get("task"),
        "model": backend.get("model"),
        "hardware": (gpus[0] if gpus else None) if device == "cuda" else (env.get("cpu") or "").strip() or None,
        "num_gpus": int(n_gpus) if device == "cuda" else 0,
        "precision": _precision(backend),
        "batch_size": shapes.get("batch_size"),
        "sequence_length": shapes.get("sequence_length"),
        "new_tokens": scenario.get("new_tokens") or gen.get("max_new_tokens"),
        "backend": backend.get("name"),
        "benchmark_name": config.get("name"),
        "environment": environment_json({**env, "backend": {k: v for k, v in backend.items() if not k.startswith("_")},
                                          "launcher": config.get("launcher", {}).get("name")}),
    }
    sections = {k: v for k, v in report.items() if isinstance(v, dict)}
    main_key = next((k for k in ("decode", "forward", "call", "train") if k in sections and any(
        sections[k].get(m) for m in _MEASURES)), None)
    if main_key is None:
        raise ValueError(f"{name}: the optimum-benchmark report has no decode, forward or call measurements.")
    main = sections[main_key]
    thr = main.get("throughput") or {}
    row["throughput"] = _num(thr.get("value"))
    unit = str(thr.get("unit") or (main.get("efficiency") or {}).get("unit") or "")
    row["work_unit"] = _WORK_UNIT.get(unit.split("/")[0])
    eff = main.get("efficiency") or {}
    if _num(eff.get("value")):
        per = str(eff.get("unit", "/kWh")).split("/")[-1]
        row["energy_j"] = _ENERGY_J.get(per, 3.6e6) / float(eff["value"])
    energy = main.get("energy") or {}
    if _num(energy.get("total")) is not None:
        row["run_energy_j"] = float(energy["total"]) * _ENERGY_J.get(energy.get("unit", "kWh"), 3.6e6)
    if main_key == "decode" and "prefill" in sections:
        pre = sections["prefill"].get("latency") or {}
        dec = main.get("latency") or {}
        if _num(pre.get("p50")) is not None:
            row["prefill_latency_ms"] = pre["p50"] * _TIME.get(pre.get("unit", "s"), 1000.0)
        if _num(pre.get("p50")) is not None and _num(dec.get("p50")) is not None:
            # end-to-end request latency: prefill + decode (medians; optimum-benchmark times them apart)
            row["latency_ms"] = (pre["p50"] + dec["p50"]) * _TIME.get(dec.get("unit", "s"), 1000.0)
        row["prefill_throughput"] = _num((sections["prefill"].get("throughput") or {}).get("value"))
    else:
        lat = main.get("latency") or {}
        f = _TIME.get(lat.get("unit", "s"), 1000.0)
        for key, col in (("p50", "latency_ms"), ("p90", "latency_p90_ms"), ("p99", "latency_p99_ms")):
            if _num(lat.get(key)) is not None:
                row[col] = lat[key] * f
    tok = (sections.get("per_token") or {}).get("latency") or {}
    f = _TIME.get(tok.get("unit", "s"), 1000.0)
    for key, col in (("p50", "itl_ms"), ("p90", "itl_p90_ms"), ("p95", "itl_p95_ms"), ("p99", "itl_p99_ms")):
        if _num(tok.get(key)) is not None:
            row[col] = tok[key] * f
    load = (sections.get("load") or {}).get("latency") or {}
    if _num(load.get("p50")) is not None:
        row["load_latency_ms"] = load["p50"] * _TIME.get(load.get("unit", "s"), 1000.0)
    mems = [s["memory"] for s in sections.values() if isinstance(s.get("memory"), dict)]
    def peak(key):
        vals = [_num(m.get(key)) for m in mems if _num(m.get(key)) is not None]
        return max(vals) if vals else None
    row["peak_memory_mb"] = next((v for v in (peak("max_allocated"), peak("max_process_vram"),
                                              peak("max_global_vram"), peak("max_ram")) if v is not None), None)
    row["ram_peak_mb"] = peak("max_ram")
    row["vram_reserved_mb"] = peak("max_reserved")
    for col in ("energy_j", "throughput", "peak_memory_mb", "latency_ms"):
        if row.get(col) is not None and row[col] < 0:
            raise ValueError(f"{name}: {main_key} {col} is negative ({row[col]}).")
    return row


def _precision(backend: dict) -> str | None:
    quant = backend.get("quantization_scheme") or backend.get("quantize")
    if quant:
        bits = (backend.get("quantization_config") or {}).get("bits")
        return f"{quant}-int{bits}" if bits else str(quant)
    dtype = backend.get("torch_dtype") or backend.get("dtype")
    if dtype in (None, "auto"):
        return None
    return {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}.get(
        str(dtype), str(dtype).replace("torch.", ""))

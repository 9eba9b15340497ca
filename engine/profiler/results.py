"""Map one measured (or skipped / failed) configuration onto the store's vocabulary.

Canonical columns where DESIGN.md has a name; the rest are extra fields registered here, with
units and better-directions, so they become explorable metrics and filterable knobs.
"""
from __future__ import annotations

import json

import pandas as pd

from engine.fields import (
    CANONICAL_BY_NAME,
    CI_HI,
    CI_LO,
    CPU_ENERGY_J,
    GEN_LEN,
    GPU_UTIL,
    PROMPT_LEN,
    QUALITY_BY_NAME,
    QUANT,
    SEQ_LEN,
    THREADS,
    TTFT_MS,
    Field,
    ci_fields,
    normalize_name,
)

EXTRA_FIELDS = (
    SEQ_LEN,
    PROMPT_LEN,
    QUANT,
    Field("power_limit_w", "config", "double", "W", None, "GPU power limit set for the run"),
    GEN_LEN,
    Field("compile", "config", "text", "", None, "torch.compile on / off"),
    THREADS,
    Field("device", "config", "text", "", None, "torch device the run used (cpu, cuda:0)"),
    Field("quantization", "config", "text", "", None, "how the precision was applied"),
    Field("sweep_id", "info", "text", "", None, "profiler sweep that measured the run"),
    Field("node", "info", "text", "", None, "Ray node (host name) the run was measured on"),
    TTFT_MS,
    Field("latency_iqr_ms", "metric", "double", "ms", "min", "interquartile range of the per-batch latency"),
    Field("latency_std_ms", "metric", "double", "ms", "min", "standard deviation of the per-batch latency"),
    Field("latency_cv", "metric", "double", "", "min", "coefficient of variation of the per-batch latency"),
    Field("measured_calls", "metric", "integer", "count", None, "batches timed in the measurement window"),
    Field("flops_per_s", "metric", "double", "FLOP/s", "max", "achieved FLOP/s (float32 model's FLOPs / median latency)"),
    GPU_UTIL,
    Field("cpu_util", "metric", "double", "%", None, "mean process CPU use in the window, % of all cores"),
    QUALITY_BY_NAME["agreement"],
    QUALITY_BY_NAME["kl_div"],
    Field("rel_error", "metric", "double", "", "min", "relative L2 error of the outputs against float32"),
    QUALITY_BY_NAME["perplexity"],
    Field("predicted_memory_mb", "metric", "double", "MB", "min", "peak memory predicted before the run"),
    CPU_ENERGY_J,
    Field("process_peak_rss_mb", "metric", "double", "MB", "min", "process resident set size at its peak in the window"),
    Field("wall_s", "metric", "double", "s", "min", "wall time the configuration took, set-up and quality included"),
)
# 95 % intervals stored beside the statistics they qualify (measure.py says how each is computed)
WITH_INTERVALS = ("latency_ms", "latency_p90_ms", "latency_p99_ms", "itl_ms", "itl_p90_ms", "itl_p95_ms", "itl_p99_ms",
                  "ttft_ms", "throughput", "energy_j")
_BY_NAME = {**CANONICAL_BY_NAME, **{f.name: f for f in EXTRA_FIELDS}}
EXTRA_FIELDS += tuple(f for name in WITH_INTERVALS for f in ci_fields(_BY_NAME[name]))
EXTRA_BY_NAME = {f.name: f for f in EXTRA_FIELDS}
SERIES = "_series"  # a row's power / utilization time series (a DataFrame), written by engine.timeseries
_PANDAS = {"text": "string", "integer": "Int64", "double": "Float64", "timestamp": "datetime64[us]"}


def combine_rounds(rounds: list[dict]) -> dict:
    """One run from the same configuration measured in several interleaved rounds: every number the
    median over the ok rounds, and each WITH_INTERVALS metric's 95 % interval that of the median
    over rounds (order statistics), widened to hold the median round's own interval. Rounds spread
    over the sweep's whole duration, so the interval holds the machine's drift between them, which
    one window's interval cannot see. A configuration with no ok round keeps its first round."""
    import numpy as np

    from engine.profiler.measure import quantile_ci

    ok = [r for r in rounds if r.get("status") == "ok"]
    if not ok:
        return rounds[0]
    mid = sorted(ok, key=lambda r: r.get("latency_ms") or 0)[len(ok) // 2]
    out = dict(mid)
    for k, v in mid.items():
        vals = [r.get(k) for r in ok]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and all(isinstance(x, (int, float)) for x in vals):
            out[k] = float(np.median(vals)) if isinstance(v, float) else v
    for name in WITH_INTERVALS:
        vals = [r[name] for r in ok if r.get(name) is not None]
        if len(vals) < 2:
            continue
        lo, hi = quantile_ci(vals, 0.5)
        own = (mid.get(name + CI_LO), mid.get(name + CI_HI))
        out[name + CI_LO] = min(lo, own[0]) if own[0] is not None else lo
        out[name + CI_HI] = max(hi, own[1]) if own[1] is not None else hi
    env = json.loads(out["environment"]) if isinstance(out.get("environment"), str) else None
    if env is not None:
        env.setdefault("notes", []).append(
            f"median of {len(ok)} interleaved rounds ({len(rounds)} measured); intervals over the rounds")
        env["rounds"] = len(ok)
        out["environment"] = json.dumps(env, default=str)
    out["wall_s"] = sum(r.get("wall_s") or 0 for r in rounds)
    return out


def frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> a DataFrame whose columns have the store's types (all-null columns included)."""
    cols = list(dict.fromkeys(k for r in rows for k in r if k != SERIES))
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    for c in cols:
        f = CANONICAL_BY_NAME.get(c) or EXTRA_BY_NAME.get(c)
        df[c] = df[c].astype(_PANDAS[f.dtype] if f is not None else "Float64")
    return df


def fields_for(rows: list[dict]) -> list[Field]:
    """Extra fields these rows use; a metric a user's eval function returned is registered too."""
    names = list(dict.fromkeys(k for r in rows for k in r if k != SERIES))
    out = [EXTRA_BY_NAME[n] for n in names if n in EXTRA_BY_NAME and n not in CANONICAL_BY_NAME]
    out += [Field(n, "metric", "double", "", None, "quality metric from the model's eval function")
            for n in names if n not in EXTRA_BY_NAME and n not in CANONICAL_BY_NAME]
    return out


def row(*, run_id, workload, cfg, hw_name, device, status, reason=None, how=None, m=None, quality=None,
        flops=None, wall_s=None, env=None, params_b=None, predicted=None) -> dict:
    r = {
        "run_id": run_id, "status": status, "reason": reason, "task": workload.name,
        "model": workload.model_name, "hardware": hw_name, "num_gpus": 1 if device.startswith("cuda") else 0,
        "precision": cfg["precision"], "batch_size": cfg["batch_size"], "work_unit": workload.work_unit,
        "seq_len": cfg.get("seq_len"), "gen_len": cfg.get("gen_len"),
        **{k: cfg[k] for k in ("prompt_len", "quant", "power_limit_w") if k in cfg},
        **({"predicted_memory_mb": predicted["total_mb"]} if predicted else {}),
        "compile": "on" if cfg.get("compile") else "off", "threads": cfg.get("threads"), "device": device,
        "quantization": how, "params_b": params_b, "wall_s": wall_s,
        "environment": json.dumps(env or {}, sort_keys=True, default=str),
    }
    if m is not None:
        lat, rd = m.latency, m.reading
        units = m.units
        if rd.series is not None and len(rd.series):
            r[SERIES] = rd.series  # not a column: engine.timeseries stores it beside the run
        r.update({
            "throughput": m.throughput, "latency_ms": lat["median_ms"], "latency_p90_ms": lat["p90_ms"],
            "latency_p99_ms": lat["p99_ms"], "latency_iqr_ms": lat["iqr_ms"], "latency_std_ms": lat["std_ms"],
            "latency_cv": lat["cv"], "measured_calls": m.calls, "peak_memory_mb": rd.peak_memory_mb,
            "process_peak_rss_mb": rd.process_peak_rss_mb, "power_w": rd.power_w,
            "gpu_util": rd.gpu_util, "cpu_util": rd.cpu_util,
            "cpu_energy_j": rd.cpu_energy_j / units if rd.cpu_energy_j is not None else None,
        })
        device_energy = rd.gpu_energy_j if device.startswith("cuda") else rd.cpu_energy_j
        r["energy_j"] = device_energy / units if device_energy is not None else None
        if flops:
            r["flops_per_s"] = flops / (lat["median_ms"] / 1000.0)
        if "itl" in m.extra and m.extra["itl"]:
            itl = m.extra["itl"]
            r.update({"itl_ms": itl["median_ms"], "itl_p90_ms": itl["p90_ms"], "itl_p95_ms": itl["p95_ms"],
                      "itl_p99_ms": itl["p99_ms"]})
        if "prefill" in m.extra and m.extra["prefill"]:
            r["ttft_ms"] = m.extra["prefill"]["median_ms"]
        intervals = {"latency_ms": lat["median_ci_ms"], "latency_p90_ms": lat["p90_ci_ms"],
                     "latency_p99_ms": lat["p99_ci_ms"], "throughput": m.throughput_ci(),
                     "energy_j": m.energy_ci(r["energy_j"])}
        if m.extra.get("itl"):
            itl = m.extra["itl"]
            intervals.update({"itl_ms": itl["median_ci_ms"], "itl_p90_ms": itl["p90_ci_ms"],
                              "itl_p95_ms": itl["p95_ci_ms"], "itl_p99_ms": itl["p99_ci_ms"]})
        if m.extra.get("prefill"):
            intervals["ttft_ms"] = m.extra["prefill"]["median_ci_ms"]
        for name, ci in intervals.items():
            if ci is not None:
                r[name + CI_LO], r[name + CI_HI] = ci
    for k, v in (quality or {}).items():  # accuracy only where labels measured it; fidelity keeps its own names
        r[normalize_name(k)] = v
    return r

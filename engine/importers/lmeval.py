"""lm-evaluation-harness results (``results_<date>.json`` written by ``--output_path``):
{"results": {task: {"alias", "acc,none", "acc_stderr,none", "acc_norm,none", ...}},
 "groups", "configs", "versions", "n-shot", "higher_is_better": {task: {metric: bool}},
 "config": {"model": "hf", "model_args": "pretrained=org/name,dtype=bfloat16", "batch_size",
 "device", ...}, "model_name", "model_name_sanitized", ...}.

Metric keys are "<metric>,<filter>"; stderr values may be the string "N/A". One task is one run
(quality only: no performance measurements), with ``accuracy`` taken from the task's main
metric (acc, else exact_match, else acc_norm, else the first higher-is-better score in [0, 1])
and every metric kept as an extra field ``lm_<metric>[_<filter>]``. The same rows serve as a
quality table for engine.quality.attach."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from engine.fields import Field, normalize_name
from engine.importers import Importer, Parsed
from engine.store import environment_json

if TYPE_CHECKING:
    pass

_MAIN = ("acc", "exact_match", "acc_norm", "f1", "mcc", "bleu")
_PRECISION = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32",
              "torch.bfloat16": "bfloat16", "torch.float16": "float16", "torch.float32": "float32"}


def looks_like(data) -> bool:
    return (isinstance(data, dict) and isinstance(data.get("results"), dict)
            and any(k in data for k in ("config", "model_name", "versions", "n-shot", "configs"))
            and all(isinstance(v, dict) for v in data["results"].values()))


def model_args(text) -> dict:
    if isinstance(text, dict):
        return text
    out = {}
    for part in str(text or "").split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_file(path: str | Path, name: str | None = None) -> Parsed:
    import pandas as pd
    path = Path(path)
    name = name or path.name
    data = json.loads(path.read_text(encoding="utf-8"))
    if not looks_like(data):
        raise ValueError(f"{name}: not an lm-evaluation-harness results file (needs 'results' per task).")
    config = data.get("config") or {}
    args = model_args(config.get("model_args"))
    model = args.get("pretrained") or args.get("model") or data.get("model_name") or config.get("model")
    dtype = args.get("dtype") or config.get("model_dtype")
    precision = _PRECISION.get(str(dtype), str(dtype)) if dtype not in (None, "auto", "") else None
    batch = config.get("batch_size")
    if isinstance(batch, str):
        batch = int(batch) if batch.strip().isdigit() else None  # "auto" / "auto:4"
    elif not isinstance(batch, (int, float)) or isinstance(batch, bool):
        batch = None  # a number stays as given: the import's checks refuse 1.5, never round it
    hib = data.get("higher_is_better") or {}
    rows, extra = [], {}
    for task, metrics in data["results"].items():
        row = {"task": task, "model": model, "precision": precision, "batch_size": batch, "work_unit": None}
        scores = {}
        for key, value in metrics.items():
            if "," not in key or isinstance(value, bool):
                continue
            metric, _, filt = key.partition(",")
            if not isinstance(value, (int, float)):
                continue  # "N/A" stderr
            col = normalize_name("lm_" + metric + ("" if filt == "none" else "_" + filt))
            better = (hib.get(task) or {}).get(metric)
            direction = None if metric.endswith("_stderr") else ("max" if better is True else "min" if better is False else None)
            extra.setdefault(col, Field(col, "metric", "double", "", direction, f"lm-eval {metric} ({filt}) of the task"))
            row[col] = float(value)
            if not metric.endswith("_stderr"):
                scores.setdefault(metric, float(value))
        main = next((m for m in _MAIN if m in scores), None)
        if main is None:
            main = next((m for m, v in scores.items() if (hib.get(task) or {}).get(m) is True and 0 <= v <= 1), None)
        row["accuracy"] = scores.get(main) if main else None
        if main:
            row["lm_main_metric"] = main
        rows.append(row)
    if not rows:
        raise ValueError(f"{name}: the lm-evaluation-harness results are empty.")
    extra["lm_main_metric"] = Field("lm_main_metric", "info", "text", "", None, "lm-eval metric used as accuracy")
    env = {k: data.get(k) for k in ("git_hash", "transformers_version", "date", "lm_eval_version") if data.get(k)}
    env["device"] = config.get("device")
    env["model_args"] = config.get("model_args")
    df = pd.DataFrame(rows)
    df["environment"] = environment_json(env)
    if df["batch_size"].map(lambda b: b is None or float(b).is_integer()).all():
        df["batch_size"] = pd.array(df["batch_size"], dtype="Int64")
    return Parsed(df, [f for f in extra.values() if f.name in df.columns], source=name)


IMPORTER = Importer("lm-eval", "lm-eval", "lm-evaluation-harness results", "json", looks_like, parse_file)

"""ML.ENERGY benchmark result files: ``{"task", "task_display_name", "configurations": [...]}``
(the leaderboard's compiled per-task data, as bundled in data/seed)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from engine.fields import Field
from engine.importers import Importer, Parsed

if TYPE_CHECKING:
    import pandas as pd

# source key -> (canonical name, factor)
_CANONICAL = {
    "model_id": ("model", None),
    "gpu_model": ("hardware", None),
    "num_gpus": ("num_gpus", None),
    "weight_precision": ("precision", None),
    "max_num_seqs": ("batch_size", None),  # LLM: max concurrent sequences
    "batch_size": ("batch_size", None),  # diffusion: images / videos per batch
    "avg_power_watts": ("power_w", None),
    "median_itl_ms": ("itl_ms", None),
    "p90_itl_ms": ("itl_p90_ms", None),
    "p95_itl_ms": ("itl_p95_ms", None),
    "p99_itl_ms": ("itl_p99_ms", None),
    "output_throughput_tokens_per_sec": ("throughput", None),
    "throughput_images_per_sec": ("throughput", None),
    "throughput_videos_per_sec": ("throughput", None),
    "energy_per_token_joules": ("energy_j", None),
    "energy_per_image_joules": ("energy_j", None),
    "energy_per_video_joules": ("energy_j", None),
    "batch_latency_s": ("latency_ms", 1000.0),
    "total_params_billions": ("params_b", None),
    "activated_params_billions": ("active_params_b", None),
}
_WORK_UNIT = {"energy_per_token_joules": "token", "energy_per_image_joules": "image", "energy_per_video_joules": "video"}

EXTRA_FIELDS = {
    f.name: f
    for f in (
        Field("energy_per_request_j", "metric", "double", "J", "min", "energy per request (all its output tokens)"),
        Field("avg_output_len", "metric", "double", "tokens", None, "average output length per request"),
        Field("avg_batch_size", "metric", "double", "count", None, "average running batch size"),
        Field("tensor_parallel", "config", "integer", "count", None, "tensor-parallel degree"),
        Field("data_parallel", "config", "integer", "count", None, "data-parallel degree"),
        Field("expert_parallel", "config", "integer", "count", None, "expert-parallel degree"),
        Field("ring_degree", "config", "integer", "count", None, "ring-attention sequence-parallel degree"),
        Field("ulysses_degree", "config", "integer", "count", None, "Ulysses sequence-parallel degree"),
        Field("inference_steps", "config", "integer", "count", None, "diffusion denoising steps"),
        Field("image_height", "config", "integer", "px", None, "image height"),
        Field("image_width", "config", "integer", "px", None, "image width"),
        Field("video_height", "config", "integer", "px", None, "video height"),
        Field("video_width", "config", "integer", "px", None, "video width"),
        Field("num_frames", "config", "integer", "count", None, "frames per video"),
        Field("fps", "config", "integer", "1/s", None, "video frames per second"),
        Field("architecture", "config", "text", "", None, "model architecture family"),
        Field("nickname", "info", "text", "", None, "model display name"),
    )
}
_RENAME_EXTRA = {"energy_per_request_joules": "energy_per_request_j"}


def looks_like(data) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("configurations"), list)
        and "task" in data
        and all(isinstance(c, dict) and "model_id" in c for c in data["configurations"][:5])
    )


def parse(data: dict, file_name: str = "") -> Parsed:
    """Map one task file onto canonical runs; unknown numeric keys become extra metrics."""
    import pandas as pd
    if not looks_like(data):
        raise ValueError(f"{file_name or 'file'}: not an ML.ENERGY result file (needs 'task' and 'configurations').")
    task = str(data["task"])
    rows, extra, unknown = [], dict(), {}
    for i, conf in enumerate(data["configurations"]):
        row = {"task": task}
        for key, value in conf.items():
            if key in _CANONICAL:
                name, factor = _CANONICAL[key]
                if value is not None and factor:
                    value = float(value) * factor
                row[name] = value
                if key in _WORK_UNIT:
                    row["work_unit"] = _WORK_UNIT[key]
            else:
                name = _RENAME_EXTRA.get(key, key)
                if name in EXTRA_FIELDS:
                    extra[name] = EXTRA_FIELDS[name]
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    unknown.setdefault(name, Field(name, "metric", "double", "", None, f"ML.ENERGY field {key}"))
                    extra[name] = unknown[name]
                elif isinstance(value, str) or value is None:
                    unknown.setdefault(name, Field(name, "config", "text", "", None, f"ML.ENERGY field {key}"))
                    extra[name] = unknown[name]
                else:
                    continue
                row[name] = value
        if "energy_j" in row and row.get("energy_j") is not None and row["energy_j"] < 0:
            raise ValueError(f"{file_name}: configuration {i + 1} has a negative energy ({row['energy_j']}).")
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in [f.name for f in extra.values() if f.dtype == "integer"] + ["num_gpus", "batch_size"]:
        if col in df:
            df[col] = _integers(df[col])
    return Parsed(df, list(extra.values()), source="mlenergy-v3", row_label="configuration")


def _integers(values: pd.Series):
    """Whole numbers as an integer column; anything else left as it is, for the import's checks to
    refuse with its configuration and column (never rounded)."""
    import pandas as pd
    try:
        return pd.array(values, dtype="Int64")
    except (TypeError, ValueError, OverflowError):
        return values


def parse_file(path: str | Path) -> Parsed:
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        return parse(json.load(fh), path.name)


def _parse_named(path: str | Path, name: str) -> Parsed:
    parsed = parse_file(path)
    parsed.source = name
    return parsed


IMPORTER = Importer("mlenergy", "ML.ENERGY", "ML.ENERGY files", "json", looks_like, _parse_named)

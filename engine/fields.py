"""The canonical vocabulary of DESIGN.md: every importer and the profiler map onto these names.

A *field* is a column of the runs table. Its role says how the UI treats it:
- ``id``: identity and provenance (run_id, source, status, ...);
- ``config``: a configuration dimension (model, precision, batch_size, ...), text or number;
- ``metric``: a numeric measurement with a unit and a better-direction (min / max / None);
  ``quality`` marks the metrics that say how good the output is (accuracy, a published
  benchmark score, fidelity to a reference), so pages can open on quality against cost and
  count the runs that lack it.
Fields beyond these (a user's extra metrics, an importer's extra knobs) are registered in the
store at import time with the same shape.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Field:
    name: str
    role: str  # id | config | metric | info
    dtype: str  # text | integer | double
    unit: str = ""
    direction: str | None = None  # min | max | None
    description: str = ""
    quality: bool = False

    def as_row(self) -> dict:
        return asdict(self)


CANONICAL: tuple[Field, ...] = (
    Field("run_id", "id", "text", description="stable id of one measured configuration"),
    Field("source", "id", "text", description="where the run came from (seed dataset, upload file, profiler)"),
    Field("import_id", "id", "text", description="import batch that brought the run in"),
    Field("imported_at", "id", "timestamp", description="when the run entered the store"),
    Field("status", "id", "text", description="ok, or failed / skipped"),
    Field("reason", "id", "text", description="why a run failed or was skipped"),
    Field("task", "config", "text", description="workload / benchmark task"),
    Field("model", "config", "text", description="model id (org/name where known)"),
    Field("hardware", "config", "text", description="accelerator or CPU model"),
    Field("num_gpus", "config", "integer", "count", description="accelerators used"),
    Field("precision", "config", "text", description="weight / compute format"),
    Field("batch_size", "config", "integer", "count", description="batch size or max concurrent sequences"),
    Field("work_unit", "config", "text", description="what throughput and energy_j count"),
    Field("throughput", "metric", "double", "1/s", "max", "work units per second"),
    Field("energy_j", "metric", "double", "J", "min", "energy per work unit"),
    Field("power_w", "metric", "double", "W", "min", "average power draw"),
    Field("latency_ms", "metric", "double", "ms", "min", "median end-to-end latency of one request / batch"),
    Field("latency_p90_ms", "metric", "double", "ms", "min", "p90 latency"),
    Field("latency_p99_ms", "metric", "double", "ms", "min", "p99 latency"),
    Field("itl_ms", "metric", "double", "ms", "min", "median inter-token latency"),
    Field("itl_p90_ms", "metric", "double", "ms", "min", "p90 inter-token latency"),
    Field("itl_p95_ms", "metric", "double", "ms", "min", "p95 inter-token latency"),
    Field("itl_p99_ms", "metric", "double", "ms", "min", "p99 inter-token latency"),
    Field("peak_memory_mb", "metric", "double", "MB", "min", "peak accelerator (or process) memory"),
    Field("params_b", "metric", "double", "billions", None, "total parameters"),
    Field("active_params_b", "metric", "double", "billions", None, "activated parameters"),
    Field("accuracy", "metric", "double", "", "max", "task quality in [0, 1] measured against labels", True),
    Field("environment", "info", "text", description="JSON: hardware, driver, library versions, settings"),
)

# Not in DESIGN.md's table, but written by more than one source (the profiler, importers, seed
# data), so defined once here: whichever source registers one first, it means the same.
CPU_ENERGY_J = Field("cpu_energy_j", "metric", "double", "J", "min",
                     "CPU energy per work unit (RAPL in the profiler; CodeCarbon's figure on import)")
BACKEND = Field("backend", "config", "text", "", None, "inference engine or backend (vLLM, transformers, pytorch, ...)")
QUANT = Field("quant", "config", "text", "", None,
              "quantization applied to the weights: none, or the method (torchao int8-weight, int8-dynamic, int4-weight, fp8; gptq-int8, awq, ...)")
PROMPT_LEN = Field("prompt_len", "config", "integer", "tokens", None, "prompt (input) length")
GEN_LEN = Field("gen_len", "config", "integer", "tokens", None, "tokens generated per sequence")

# Named quality metrics, each one benchmark under its own name and direction (DESIGN: "gpqa_diamond,
# arena_score, ..."), and fidelity to an unquantized reference (no labels needed). Defined once
# here, registered in a store when a source first brings them. The order is the order of
# preference for a task's headline quality after ``accuracy`` (engine.quality.headline).
QUALITY_FIELDS: tuple[Field, ...] = (
    Field("gpqa_diamond", "metric", "double", "%", "max", "GPQA-Diamond accuracy as published by the model's makers", True),
    Field("gpqa_diamond_epoch", "metric", "double", "%", "max", "GPQA-Diamond accuracy in Epoch AI's independent runs", True),
    Field("mmmu", "metric", "double", "%", "max", "MMMU (val) accuracy, multimodal understanding", True),
    Field("video_mme", "metric", "double", "%", "max", "Video-MME accuracy, video understanding", True),
    Field("swe_bench_verified", "metric", "double", "%", "max", "SWE-bench Verified, share of issues resolved", True),
    Field("arena_score", "metric", "double", "Elo", "max", "LMArena text leaderboard rating (a rating, not an accuracy)", True),
    Field("geneval", "metric", "double", "", "max", "GenEval overall score in [0, 1], text-to-image alignment", True),
    Field("vbench_total", "metric", "double", "%", "max", "VBench total score, text-to-video", True),
    Field("mmlu", "metric", "double", "%", "max", "MMLU accuracy", True),
    Field("ceval", "metric", "double", "%", "max", "C-Eval accuracy", True),
    Field("ifeval", "metric", "double", "%", "max", "IFEval strict prompt-level accuracy", True),
    Field("agreement", "metric", "double", "", "max", "top-1 agreement with the unquantized reference model", True),
    Field("perplexity", "metric", "double", "", "min", "perplexity on the project's bundled text (data/text)", True),
    Field("kl_div", "metric", "double", "nats", "min", "KL divergence from the unquantized reference's distributions", True),
)
QUALITY_BY_NAME = {f.name: f for f in QUALITY_FIELDS}
SOURCE_SUFFIX = "_source"


CI_LO, CI_HI = "_ci_lo", "_ci_hi"


def ci_fields(metric: Field) -> tuple[Field, Field]:
    """The 95 % confidence interval of a metric, stored beside it (``latency_ms_ci_lo`` / ``_ci_hi``):
    information about the value, not an objective of its own."""
    return tuple(Field(metric.name + sfx, "info", "double", metric.unit, None, f"95 % confidence interval of {metric.name}, {end} end")
                 for sfx, end in ((CI_LO, "lower"), (CI_HI, "upper")))


def source_field(metric: str) -> Field:
    """The info column that says where a quality figure came from (``accuracy_source``, ...)."""
    return Field(metric + SOURCE_SUFFIX, "info", "text", "", None, f"where {metric} comes from (source, setting, file)")


CANONICAL_BY_NAME = {f.name: f for f in CANONICAL}
CANONICAL_NAMES = tuple(f.name for f in CANONICAL)
DIRECTIONS = ("min", "max")

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Names DuckDB reserves or the store uses internally; a user column may not take them.
_RESERVED = {"select", "from", "where", "group", "order", "by", "table", "rowid", "limit", "and", "or", "not"}


def normalize_name(raw: str) -> str:
    """Turn a column header such as 'Energy (J)' into a safe identifier 'energy_j'."""
    name = re.sub(r"[^0-9a-zA-Z]+", "_", str(raw).strip()).strip("_").lower()
    if not name:
        name = "col"
    if name[0].isdigit():
        name = "c_" + name
    name = name[:63]
    if name in _RESERVED:
        name += "_"
    return name


def is_safe_identifier(name: str) -> bool:
    """Only names of this shape are ever put into SQL text (always double-quoted as well)."""
    return bool(_IDENT.match(name)) and name not in _RESERVED


def quote(name: str) -> str:
    if not is_safe_identifier(name):
        raise ValueError(f"'{name}' is not an allowed column name")
    return f'"{name}"'

# Metrics counted per work unit: comparing them across work units (J/token vs J/image) is meaningless.
PER_WORK_UNIT = frozenset({"energy_j", "throughput", "cost_usd", "carbon_g"})

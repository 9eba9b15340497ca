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

Every number has a range, kept here and nowhere else: ``lo`` / ``hi`` on a field's definition
(batch_size a whole number from 1 to 2^31, accuracy in [0, 1], a measurement from 0 to 1e15),
the dtype's default for a field of no stated range (``limits``). Every import checks each value
against it before anything is cast or written, and refuses the first that does not fit with one
sentence naming file, row and column: nothing is rounded, clipped or stored as inf.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Field:
    name: str
    role: str  # id | config | metric | info
    dtype: str  # text | integer | double
    unit: str = ""
    direction: str | None = None  # min | max | None
    description: str = ""
    quality: bool = False
    lo: float | None = None  # smallest allowed value of a number (None: the dtype's default, see limits)
    hi: float | None = None  # largest allowed value

    def as_row(self) -> dict:
        return asdict(self)


# Range rules. An integer column holds whole numbers; a number is finite (NaN counts as missing).
COUNT_MAX = 2**31  # batch size, GPUs, tokens, threads: beyond any real configuration
MEASURE_MAX = 1e15  # no measurement comes near in its unit (1e15 J is 280 GWh; 1e15 ms, 31,700 years)
WHOLE_MAX = 2**53  # an integer field of no stated range: whole numbers that a double holds exactly
NUMBER_MAX = 1e100  # a metric of no stated range: far beyond any quantity, so sums, spans and unit
#                     factors stay finite (1e308 is a sentinel, not a measurement)


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
    Field("num_gpus", "config", "integer", "count", description="accelerators used", lo=0, hi=COUNT_MAX),
    Field("precision", "config", "text", description="weight / compute format"),
    Field("batch_size", "config", "integer", "count", description="batch size or max concurrent sequences",
          lo=1, hi=COUNT_MAX),
    Field("work_unit", "config", "text", description="what throughput and energy_j count"),
    Field("throughput", "metric", "double", "1/s", "max", "work units per second", lo=0, hi=MEASURE_MAX),
    Field("energy_j", "metric", "double", "J", "min", "energy per work unit", lo=0, hi=MEASURE_MAX),
    Field("power_w", "metric", "double", "W", "min", "average power draw", lo=0, hi=MEASURE_MAX),
    Field("latency_ms", "metric", "double", "ms", "min", "median end-to-end latency of one request / batch",
          lo=0, hi=MEASURE_MAX),
    Field("latency_p90_ms", "metric", "double", "ms", "min", "p90 latency", lo=0, hi=MEASURE_MAX),
    Field("latency_p99_ms", "metric", "double", "ms", "min", "p99 latency", lo=0, hi=MEASURE_MAX),
    Field("itl_ms", "metric", "double", "ms", "min", "median inter-token latency", lo=0, hi=MEASURE_MAX),
    Field("itl_p90_ms", "metric", "double", "ms", "min", "p90 inter-token latency", lo=0, hi=MEASURE_MAX),
    Field("itl_p95_ms", "metric", "double", "ms", "min", "p95 inter-token latency", lo=0, hi=MEASURE_MAX),
    Field("itl_p99_ms", "metric", "double", "ms", "min", "p99 inter-token latency", lo=0, hi=MEASURE_MAX),
    Field("peak_memory_mb", "metric", "double", "MB", "min", "peak accelerator (or process) memory",
          lo=0, hi=MEASURE_MAX),
    Field("params_b", "metric", "double", "billions", None, "total parameters", lo=0, hi=MEASURE_MAX),
    Field("active_params_b", "metric", "double", "billions", None, "activated parameters", lo=0, hi=MEASURE_MAX),
    Field("accuracy", "metric", "double", "", "max", "task quality in [0, 1] measured against labels", True,
          lo=0, hi=1),
    Field("environment", "info", "text", description="JSON: hardware, driver, library versions, settings"),
)

# Not in DESIGN.md's table, but written by more than one source (the profiler, importers, seed
# data), so defined once here: whichever source registers one first, it means the same.
CPU_ENERGY_J = Field("cpu_energy_j", "metric", "double", "J", "min",
                     "CPU energy per work unit (RAPL in the profiler; CodeCarbon's figure on import)", lo=0, hi=MEASURE_MAX)
TTFT_MS = Field("ttft_ms", "metric", "double", "ms", "min", "median time to first token (prefill)")
GPU_UTIL = Field("gpu_util", "metric", "double", "%", None, "mean GPU utilization in the window (NVML samples)")
BACKEND = Field("backend", "config", "text", "", None, "inference engine or backend (vLLM, transformers, pytorch, ...)")
QUANT = Field("quant", "config", "text", "", None,
              "quantization applied to the weights: none, or the method (torchao int8-weight, int8-dynamic, int4-weight, fp8; gptq-int8, awq, ...)")
PROMPT_LEN = Field("prompt_len", "config", "integer", "tokens", None, "prompt (input) length", lo=0, hi=COUNT_MAX)
GEN_LEN = Field("gen_len", "config", "integer", "tokens", None, "tokens generated per sequence", lo=0, hi=COUNT_MAX)
SEQ_LEN = Field("seq_len", "config", "integer", "tokens", None, "prompt length (tokens)", lo=0, hi=COUNT_MAX)
THREADS = Field("threads", "config", "integer", "count", None, "torch CPU threads (torch.set_num_threads)",
                lo=1, hi=COUNT_MAX)

# Named quality metrics, each one benchmark under its own name and direction (DESIGN: "gpqa_diamond,
# arena_score, ..."), and fidelity to an unquantized reference (no labels needed). Defined once
# here, registered in a store when a source first brings them. The order is the order of
# preference for a task's headline quality after ``accuracy`` (engine.quality.headline).
QUALITY_FIELDS: tuple[Field, ...] = (
    Field("gpqa_diamond", "metric", "double", "%", "max", "GPQA-Diamond accuracy as published by the model's makers", True,
          lo=0, hi=100),
    Field("gpqa_diamond_epoch", "metric", "double", "%", "max", "GPQA-Diamond accuracy in Epoch AI's independent runs", True,
          lo=0, hi=100),
    Field("mmmu", "metric", "double", "%", "max", "MMMU (val) accuracy, multimodal understanding", True, lo=0, hi=100),
    Field("video_mme", "metric", "double", "%", "max", "Video-MME accuracy, video understanding", True, lo=0, hi=100),
    Field("swe_bench_verified", "metric", "double", "%", "max", "SWE-bench Verified, share of issues resolved", True,
          lo=0, hi=100),
    Field("arena_score", "metric", "double", "Elo", "max", "LMArena text leaderboard rating (a rating, not an accuracy)", True),
    Field("geneval", "metric", "double", "", "max", "GenEval overall score in [0, 1], text-to-image alignment", True,
          lo=0, hi=1),
    Field("vbench_total", "metric", "double", "%", "max", "VBench total score, text-to-video", True, lo=0, hi=100),
    Field("mmlu", "metric", "double", "%", "max", "MMLU accuracy", True, lo=0, hi=100),
    Field("ceval", "metric", "double", "%", "max", "C-Eval accuracy", True, lo=0, hi=100),
    Field("ifeval", "metric", "double", "%", "max", "IFEval strict prompt-level accuracy", True, lo=0, hi=100),
    Field("agreement", "metric", "double", "", "max", "top-1 agreement with the unquantized reference model", True,
          lo=0, hi=1),
    Field("perplexity", "metric", "double", "", "min", "perplexity on the project's bundled text (data/text)", True,
          lo=1, hi=MEASURE_MAX),
    Field("kl_div", "metric", "double", "nats", "min", "KL divergence from the unquantized reference's distributions", True,
          lo=0, hi=MEASURE_MAX),
)
QUALITY_BY_NAME = {f.name: f for f in QUALITY_FIELDS}
SOURCE_SUFFIX = "_source"


CI_LO, CI_HI = "_ci_lo", "_ci_hi"


def ci_fields(metric: Field) -> tuple[Field, Field]:
    """The 95 % confidence interval of a metric, stored beside it (``latency_ms_ci_lo`` / ``_ci_hi``):
    information about the value, not an objective of its own."""
    return tuple(Field(metric.name + sfx, "info", "double", metric.unit, None, f"95 % confidence interval of {metric.name}, {end} end",
                       lo=metric.lo, hi=metric.hi)
                 for sfx, end in ((CI_LO, "lower"), (CI_HI, "upper")))


def source_field(metric: str) -> Field:
    """The info column that says where a quality figure came from (``accuracy_source``, ...)."""
    return Field(metric + SOURCE_SUFFIX, "info", "text", "", None, f"where {metric} comes from (source, setting, file)")


CANONICAL_BY_NAME = {f.name: f for f in CANONICAL}
# The columns that say which configuration a run is, in the order people read them: hover text,
# tables and recommendations all list a run's configuration so.
CONFIG_COLUMNS = ("model", "hardware", "precision", "batch_size", "num_gpus", "task")
CANONICAL_NAMES = tuple(f.name for f in CANONICAL)
DIRECTIONS = ("min", "max")
# Every field defined here, by name: its range holds whichever source brings a column of that name.
KNOWN = {f.name: f for f in (*CANONICAL, CPU_ENERGY_J, BACKEND, QUANT, PROMPT_LEN, GEN_LEN, SEQ_LEN, THREADS,
                             *QUALITY_FIELDS)}


def limits(f: Field) -> tuple[float, float]:
    """The allowed range of a numeric field: a known field's own (by name), else the field's stated
    one, else its dtype's default."""
    rule = KNOWN.get(f.name, f)
    if rule.dtype not in ("integer", "double"):
        rule = f
    big = WHOLE_MAX if f.dtype == "integer" else NUMBER_MAX
    return (-big if rule.lo is None else rule.lo), (big if rule.hi is None else rule.hi)


def whole(f: Field) -> bool:
    return f.dtype == "integer" or KNOWN.get(f.name, f).dtype == "integer"


def _show_bound(x: float) -> str:
    x = float(x)
    if x.is_integer() and abs(x) >= 2**20 and math.log2(abs(x)).is_integer():
        return ("-" if x < 0 else "") + f"2^{int(math.log2(abs(x)))}"
    if x.is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:g}".replace("e+", "e")


def range_text(f: Field) -> str:
    """'a whole number between 1 and 2^31', 'a number between 0 and 1'."""
    lo, hi = limits(f)
    return f"{'a whole number' if whole(f) else 'a number'} between {_show_bound(lo)} and {_show_bound(hi)}"


def allowed_sql(f: Field, expr: str) -> str:
    """SQL that is true where ``expr`` (a DOUBLE; NULL and NaN count as missing) fits the field."""
    lo, hi = limits(f)
    cond = f"isfinite({expr}) AND {expr} >= {float(lo)!r} AND {expr} <= {float(hi)!r}"
    if whole(f):
        cond += f" AND {expr} = floor({expr})"
    return f"({expr} IS NULL OR isnan({expr}) OR ({cond}))"


def outside(f: Field, values) -> np.ndarray:
    """Boolean mask of the values (floats; NaN is missing) that do not fit the field."""
    v = np.asarray(values, dtype=float)
    lo, hi = limits(f)
    with np.errstate(invalid="ignore"):
        ok = np.isnan(v) | (np.isfinite(v) & (v >= lo) & (v <= hi))
        if whole(f):
            ok &= np.isnan(v) | (v == np.floor(v))
    return ~ok


def refusal(f: Field, shown: str, value: float | None = None) -> str:
    """Why a value does not fit: '1e20 is not a whole number between 1 and 2^31'."""
    if value is not None and value < 0 and limits(f)[0] == 0 and math.isfinite(value):
        return f"{f.name} cannot be negative ({shown})"
    return f"{shown} is not {range_text(f)}"

# Names DuckDB reserves or the store uses internally; a user column may not take them.
_RESERVED = {"select", "from", "where", "group", "order", "by", "table", "rowid", "limit", "and", "or", "not"}


def _word(c: str) -> bool:
    """A letter, mark or digit of any script (so 'Énergie' and '温度' keep their letters)."""
    return unicodedata.category(c)[0] in "LMN"


def normalize_name(raw: str) -> str:
    """Turn a column header such as 'Energy (J)' into a safe identifier 'energy_j' ('Énergie (J)':
    'énergie_j', '温度': '温度'): lower case, runs of anything but letters and digits become _."""
    text = unicodedata.normalize("NFKC", str(raw)).strip().lower()
    name = "_".join(part for part in "".join(c if _word(c) else " " for c in text).split())
    if not name:
        name = "col"
    if not unicodedata.category(name[0]).startswith("L"):
        name = "c_" + name
    name = name[:63]
    if name in _RESERVED:
        name += "_"
    return name


def is_safe_identifier(name: str) -> bool:
    """Only names of this shape are ever put into SQL text (always double-quoted as well): a
    lower-case letter first, then letters, digits and _, at most 63 characters; never a quote,
    space or control character."""
    return (isinstance(name, str) and 0 < len(name) <= 63 and unicodedata.category(name[0]).startswith("L")
            and all(c == "_" or _word(c) for c in name) and name == unicodedata.normalize("NFKC", name).lower()
            and name not in _RESERVED)


def quote(name: str) -> str:
    if not is_safe_identifier(name):
        raise ValueError(f"'{name}' is not an allowed column name")
    return f'"{name}"'

# Metrics counted per work unit: comparing them across work units (J/token vs J/image) is meaningless.
PER_WORK_UNIT = frozenset({"energy_j", "throughput", "cost_usd", "carbon_g"})

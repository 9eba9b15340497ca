"""The space a search explores: a finite set of configurations, encoded for the surrogate.

The space of a task is the set of configurations measured for it in the store (the knobs that
vary among its runs: model, hardware, num_gpus, precision, batch_size, parallelism, ...); the
space of a profiler workload is its grid. The default objectives of a task are chosen here too.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine import quality
from engine.store import Store

SKIP_KNOBS = ("task", "work_unit")
MODEL_FEATURES = ("params_b", "active_params_b")  # numeric side information about a model
# Bits per weight, for the weights a model reads per generated token (active parameters x bytes):
# decoding is memory-bound, so this orders models' energy and latency per token better than a
# parameter count does (gpt-oss-20b in mxfp4 reads 2 GB per token, a 3B-active model in bfloat16
# 6 GB). Where it is known, the model's own one-hot code weighs MODEL_ONEHOT_SCALE: the size
# explains most of the difference between models, the one-hot only what is left.
MODEL_ONEHOT_SCALE = 0.25
BITS_PER_WEIGHT = {"float32": 32, "float16": 16, "bfloat16": 16, "fp8": 8, "int8": 8,
                   "nvfp4": 4.5, "mxfp4": 4.25, "int4": 4}
# A model's size as its Hugging Face id states it: "Qwen2-7B-Instruct", "Qwen2-57B-A14B-Instruct"
# (57B total, 14B active), "SmolLM2-135M". A mixture written "8x7B" states no total: not read.
SIZE_IN_NAME = re.compile(r"(?:^|[-_/])(\d+(?:\.\d+)?)([BM])(?:-A(\d+(?:\.\d+)?)B)?(?=$|[-_])", re.IGNORECASE)
LLM_DEFAULT = (("energy_j", False), ("itl_p90_ms", False))
OTHER_DEFAULT = (("energy_j", False), ("latency_ms", False))
NUMERIC_SCALE = 1.5  # span of a numeric knob in the encoding (a category change is sqrt(2))


@dataclass
class Space:
    """A finite configuration space: one row of knob values per configuration."""
    name: str
    knobs: list[str]
    configs: pd.DataFrame  # columns = knobs (plus side columns such as run_id for lookup)
    numeric: dict[str, bool]  # knob -> treated as an ordered number (log2-scaled)
    side: pd.DataFrame | None = None  # per-configuration numeric side features (model size)
    fixed: dict = field(default_factory=dict)  # knobs held at one value (a workload grid's defaults)
    quality: frozenset[str] = frozenset()  # the metrics the store's registry calls quality (a task's space)

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def model_scale(self) -> float:
        """Weight of the model's one-hot code in features(): less where weights per token are known."""
        return MODEL_ONEHOT_SCALE if self.side is not None and "weight_gb" in self.side.columns else 1.0

    def config(self, i: int) -> dict:
        """The full configuration: the varied knobs plus any knobs held fixed."""
        out = dict(self.fixed)
        out.update({k: _py(self.configs.iloc[i][k]) for k in self.knobs})
        return out

    def values(self, objectives: Sequence[str]) -> np.ndarray | None:
        """Every configuration's objective values where the space holds them all (a task's stored
        runs: the whole space is known, so is its true front), else None (a workload's grid)."""
        if not set(objectives) <= set(self.configs.columns):
            return None
        V = self.configs[list(objectives)].to_numpy(float)
        return V if np.isfinite(V).all() else None

    def features(self) -> np.ndarray:
        """Encoding for the surrogate: one-hot categories, log2 numbers scaled to [0, 1]."""
        cols = []
        for k in self.knobs:
            v = self.configs[k]
            if self.numeric[k]:
                x = np.log2(np.maximum(v.astype(float).to_numpy(), 1e-9))
                span = x.max() - x.min()
                cols.append(((x - x.min()) / span if span > 0 else x * 0)[:, None] * NUMERIC_SCALE)
            else:
                onehot = pd.get_dummies(v.astype(str)).to_numpy(float)
                if k == "model":
                    onehot = onehot * self.model_scale
                cols.append(onehot)
        if self.side is not None:
            for c in self.side.columns:
                x = np.log10(np.maximum(self.side[c].astype(float).fillna(1).to_numpy(), 1e-9))
                span = x.max() - x.min()
                cols.append(((x - x.min()) / span if span > 0 else x * 0)[:, None])
        return np.hstack(cols) if cols else np.zeros((len(self), 1))

    def numeric_columns(self) -> np.ndarray:
        """Which columns of features() encode a number (a numeric knob or the model size)."""
        out = []
        for k in self.knobs:
            n = 1 if self.numeric[k] else self.configs[k].astype(str).nunique()
            out += [self.numeric[k]] * n
        out += [True] * (0 if self.side is None else len(self.side.columns))  # model size is a number
        return np.array(out, bool)

    def pymoo_vars(self) -> dict:
        """The knobs as pymoo mixed variables (Choice over the values that occur)."""
        from pymoo.core.variable import Choice

        return {k: Choice(options=sorted(self.configs[k].dropna().unique().tolist(), key=str)) for k in self.knobs}


def _py(v):
    return v.item() if hasattr(v, "item") else v


def default_objectives(store: Store, task: str, with_quality: bool = True) -> tuple[list[str], list[bool]]:
    """The task's headline quality (where its runs have one, and ``with_quality``), then energy_j
    with itl_p90_ms for LLM tasks, energy_j with latency_ms otherwise (what is measured)."""
    filters = {"task": [task]}
    _check_task(store, task)
    have = set(store.non_empty_columns(filters))
    head = quality.headline(store, filters) if with_quality else None
    first = [(head, True)] if head else []
    for pair in (LLM_DEFAULT, OTHER_DEFAULT, (("energy_j", False), ("throughput", True))):
        if all(n in have for n, _ in pair):
            both = first + list(pair)
            return [n for n, _ in both], [m for _, m in both]
    metrics = [f for f in store.metrics() if f.name in have and f.direction and f.name != head]
    if len(metrics) + len(first) < 2:
        raise ValueError(f"Task '{task}' has fewer than two measured metrics to search over.")
    both = first + [(f.name, f.direction == "max") for f in metrics[:2]]
    return [n for n, _ in both], [m for _, m in both]


def _check_task(store: Store, task: str) -> None:
    if not store.distinct("task", {"task": [task]}):
        known = store.distinct("task")
        raise ValueError(f"No runs of task '{task}' in the store; "
                         + (f"known tasks: {', '.join(known)}." if known else "it holds no runs of any task."))


def task_space(store: Store, task: str, objectives: Sequence[str], filters: Mapping | None = None) -> Space:
    """The measured configurations of ``task`` that have every objective; knobs are the config
    fields that vary among them (a field fixed by the others, like a model's nickname, is dropped)."""
    filt = dict(filters or {})
    filt["task"] = [task]
    _check_task(store, task)
    have = set(store.non_empty_columns(filt))
    cand = [f.name for f in store.fields("config") if f.name not in SKIP_KNOBS and f.name in have]
    side = [c for c in MODEL_FEATURES if c in have]
    df = store.query(["run_id"] + cand + side + list(objectives), filt)
    df = df[df[list(objectives)].notna().all(axis=1)]
    if df.empty:
        raise ValueError(f"No run of task '{task}' has {' and '.join(objectives)}.")
    knobs = [k for k in cand if df[k].nunique(dropna=False) > 1]
    for k in list(reversed(knobs)):  # drop knobs determined by the others
        rest = [x for x in knobs if x != k]
        if rest and df.groupby(rest, dropna=False).ngroups == df.groupby(knobs, dropna=False).ngroups:
            knobs.remove(k)
    if not knobs:
        raise ValueError(f"Task '{task}' has a single configuration; there is nothing to search.")
    # one run per configuration (the first by run_id where a configuration was measured twice)
    df = df.sort_values("run_id").drop_duplicates(knobs, keep="first").reset_index(drop=True)
    numeric = {k: store.field(k).dtype in ("integer", "double") for k in knobs}
    side_df = None
    if "model" in knobs:  # model size helps the surrogate tell models apart
        side_df = df[side].astype(float) if side else sizes_from_names(df["model"])  # ids' sizes stay out of the rows
    if side_df is not None:
        size = side_df["active_params_b"] if "active_params_b" in side_df.columns else side_df["params_b"]
        if "precision" in df.columns and store.distinct("work_unit", filt) == ["token"]:
            weight = size.astype(float) * df["precision"].map(BITS_PER_WEIGHT).astype(float) / 8
            if weight.notna().all():
                side_df = side_df.drop(columns=["active_params_b"], errors="ignore").assign(weight_gb=weight)
        side_df = side_df.loc[:, side_df.notna().any()]
        side_df = side_df if len(side_df.columns) else None
    return Space(task, knobs, df, numeric, side_df, quality=frozenset(f.name for f in store.metrics() if f.quality))


def size_from_name(model: str) -> tuple[float, float] | None:
    """(total, active) parameters in billions as the model's id states them, or None where it
    states none, or more than one."""
    found = {(float(m[1]) / (1000 if m[2].upper() == "M" else 1), float(m[3]) if m[3] else None)
             for m in SIZE_IN_NAME.finditer(str(model))}
    if len(found) != 1:
        return None
    total, active = found.pop()
    return total, active if active is not None else total


def sizes_from_names(models: pd.Series) -> pd.DataFrame | None:
    """Model sizes read from the models' ids, for a space whose runs carry none (Qwen's speed
    benchmark names its models but gives no parameter counts): with them the search starts among
    the smallest model and the surrogate tells models apart by size, as it does where the store
    has sizes. None unless every model's id states its size."""
    sizes = models.map(size_from_name)
    if sizes.isna().any():
        return None
    out = pd.DataFrame(sizes.tolist(), index=models.index, columns=["params_b", "active_params_b"])
    return out if (out["active_params_b"] != out["params_b"]).any() else out[["params_b"]]


# Search grids for the profiler's built-in workloads when none is given (DESIGN.md grid keys).
WORKLOAD_GRID = {"precision": ["float32", "bfloat16", "float16", "int8"], "batch_size": [1, 4, 16, 64, 256]}
WORKLOAD_OBJECTIVES = (["latency_ms", "throughput"], [False, True])


def workload_space(name: str, grid_specs: Sequence[str] = ()) -> Space:
    """The grid of a profiler workload as a space (``--grid KEY=V1,V2`` specs, or WORKLOAD_GRID)."""
    from engine.profiler import knobs
    from engine.profiler.workloads import get_workload

    w = get_workload(name)
    grid = knobs.parse_grid(list(grid_specs), w.knobs, w.name) if grid_specs else \
        {k: v for k, v in WORKLOAD_GRID.items() if k in w.knobs}
    configs = pd.DataFrame(knobs.expand(grid, w.defaults))
    varied = [k for k in configs.columns if configs[k].astype(str).nunique() > 1] or list(configs.columns[:1])
    numeric = {k: bool(pd.api.types.is_numeric_dtype(configs[k]) and not pd.api.types.is_bool_dtype(configs[k]))
               for k in configs.columns}
    space = Space(w.name, varied, configs, {k: numeric[k] for k in varied})
    space.fixed = {k: _py(configs[k].iloc[0]) for k in configs.columns if k not in varied}
    return space

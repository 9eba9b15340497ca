"""The grid of knobs and how each is applied.

Grid keys are canonical: precision (float32, bfloat16, float16, int8, int4, fp8; the hf workload
takes the three float ones and quantizes with ``quant``: see quant.py), quant, batch_size,
seq_len, prompt_len, gen_len, compile, threads, power_limit_w (watts; a GPU whose limit NVML can
set). ``expand`` makes the configurations;
``unsupported`` says why this machine cannot run one (it is then recorded as skipped);
``prepare`` turns the float32 reference into the configured model.

int8 means: on the CPU, dynamic int8 quantization of the Linear layers (torch.ao
quantize_dynamic: int8 weights, activations quantized per batch); on a GPU, torchao int8
weight-only on a bfloat16 model. int4 (torchao int4 weight-only, tinygemm) and fp8 (torchao
float8 dynamic activation + weight) run only on capable NVIDIA GPUs.
"""
from __future__ import annotations

import copy
import importlib.util
import itertools
import shutil
import warnings

import torch
import torch.nn as nn

PRECISIONS = ("float32", "bfloat16", "float16", "int8", "int4", "fp8")
KEYS = ("precision", "quant", "batch_size", "seq_len", "prompt_len", "gen_len", "compile", "threads", "power_limit_w")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class Unsupported(Exception):
    """This machine cannot run the configuration (recorded as skipped, not failed)."""


def _bool(v: str) -> bool:
    t = str(v).strip().lower()
    if t in ("1", "true", "on", "yes"):
        return True
    if t in ("0", "false", "off", "no"):
        return False
    raise ValueError(f"compile takes on/off (true/false), not '{v}'.")


def _pos_int(key):
    def parse(v):
        try:
            n = int(str(v).strip())
        except ValueError:
            raise ValueError(f"{key} takes whole numbers, not '{v}'.") from None
        if n < 1:
            raise ValueError(f"{key} must be at least 1, not {n}.")
        return n
    return parse


def _precision(v):
    v = str(v).strip().lower()
    v = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "float8": "fp8"}.get(v, v)
    if v not in PRECISIONS:
        raise ValueError(f"precision '{v}' is not one of {', '.join(PRECISIONS)}.")
    return v


def _watts(v):
    try:
        w = float(str(v).strip().lower().removesuffix("w"))
    except ValueError:
        raise ValueError(f"power_limit_w takes watts, not '{v}'.") from None
    if w <= 0:
        raise ValueError(f"power_limit_w must be positive, not {w:g}.")
    return int(w) if w == int(w) else w


def _quant(v):
    from engine.profiler.quant import parse

    return parse(v)


PARSERS = {"precision": _precision, "quant": _quant, "batch_size": _pos_int("batch_size"),
           "seq_len": _pos_int("seq_len"), "prompt_len": _pos_int("prompt_len"), "gen_len": _pos_int("gen_len"),
           "compile": _bool, "threads": _pos_int("threads"), "power_limit_w": _watts}


def parse_grid(specs: list[str], knobs: tuple[str, ...], workload: str, choices: dict | None = None) -> dict:
    """['precision=float32,int8', 'batch_size=1,32'] -> {'precision': [...], 'batch_size': [...]};
    ``choices`` narrows a key's values for one workload (the hf workload's float precisions)."""
    grid: dict = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ValueError(f"--grid '{spec}' must look like KEY=V1,V2.")
        if key not in KEYS:
            raise ValueError(f"--grid key '{key}' is not one of {', '.join(KEYS)}.")
        if key not in knobs:
            raise ValueError(f"Workload '{workload}' has no '{key}' knob; its knobs: {', '.join(knobs)}.")
        vals = [PARSERS[key](v) for v in values.split(",") if v.strip()]
        allowed = (choices or {}).get(key)
        for v in vals:
            if allowed and v not in allowed:
                hint = " (quantize with the quant knob: quant=int8-weight, int8-dynamic, int4-weight, fp8)" \
                    if key == "precision" and "quant" in knobs else ""
                raise ValueError(f"{key} '{v}' is not one of {', '.join(map(str, allowed))} for {workload}{hint}.")
        grid[key] = list(dict.fromkeys(grid.get(key, []) + vals))
    return grid


def expand(grid: dict, defaults: dict) -> list[dict]:
    """Every combination, keys in canonical order; knobs not in the grid take the defaults."""
    keys = [k for k in KEYS if k in defaults or grid.get(k)]
    values = [grid.get(k) or defaults[k] for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def unsupported(cfg: dict, device: str) -> str | None:
    p = cfg["precision"]
    cuda = device.startswith("cuda")
    cc = torch.cuda.get_device_capability(device) if cuda else None
    if p in ("int4", "fp8") and not cuda:
        return f"{p} needs an NVIDIA GPU (torchao {'int4 weight-only' if p == 'int4' else 'float8'} kernels); this run is on the CPU"
    if p == "fp8" and cc < (8, 9):
        return f"fp8 needs compute capability 8.9+ (Ada, Hopper or newer); this GPU has {cc[0]}.{cc[1]}"
    if p == "int4" and cc < (8, 0):
        return f"int4 weight-only needs compute capability 8.0+; this GPU has {cc[0]}.{cc[1]}"
    if p in ("int4", "fp8", "int8") and cuda and importlib.util.find_spec("torchao") is None:
        return f"{p} on a GPU needs torchao, which is not installed"
    if p == "bfloat16" and cuda and not torch.cuda.is_bf16_supported():
        return "this GPU has no bfloat16 support"
    if p == "int8" and not cuda and not torch.backends.quantized.supported_engines:
        return "this torch build has no quantized CPU engine for dynamic int8"
    if cfg.get("compile"):
        if not cuda and not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
            return "torch.compile on the CPU needs a C++ compiler, and none is on PATH"
        if cuda and importlib.util.find_spec("triton") is None:
            return "torch.compile on a GPU needs triton, which is not installed"
    return power_unsupported(cfg, device)


def power_unsupported(cfg: dict, device: str) -> str | None:
    """Why ``power_limit_w`` cannot be applied here (None where it can, or is not asked for)."""
    watts = cfg.get("power_limit_w")
    if not watts:
        return None
    if not device.startswith("cuda"):
        return "power_limit_w needs an NVIDIA GPU whose power limit NVML can set; this run is on the CPU"
    from engine.profiler.energy import power_limit_range

    rng = power_limit_range(torch.device(device).index or 0)
    if rng is None:
        return "power_limit_w: NVML cannot read this GPU's power limit range"
    if not rng[0] <= watts <= rng[1]:
        return f"power_limit_w {watts:g} W is outside this GPU's range {rng[0]:g}-{rng[1]:g} W"
    return None


def compute_dtype(precision: str, device: str) -> torch.dtype:
    """The dtype of the inputs the configured model takes."""
    if precision in DTYPES:
        return DTYPES[precision]
    return torch.float32 if not device.startswith("cuda") else torch.bfloat16


def prepare(ref: nn.Module, cfg: dict, device: str) -> tuple[nn.Module, str]:
    """A configured copy of the float32 reference and a sentence saying how it was made."""
    p = cfg["precision"]
    model = copy.deepcopy(ref)
    if p in DTYPES:
        model, how = model.to(device=device, dtype=DTYPES[p]), f"weights and activations in {p}"
    elif not device.startswith("cuda"):  # int8 on the CPU
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
            from torch.ao.quantization import quantize_dynamic

            model = quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        how = "dynamic int8 (torch.ao quantize_dynamic: int8 Linear weights, activations quantized per batch; other layers float32)"
    else:
        model, how = _torchao(model.to(device=device, dtype=torch.bfloat16), p)
    if cfg.get("compile"):
        model = torch.compile(model)
        how += "; torch.compile (inductor)"
    return model.eval(), how


def _torchao(model: nn.Module, precision: str) -> tuple[nn.Module, str]:
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        Int4WeightOnlyConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    if precision == "int8":
        config, multiple, how = Int8WeightOnlyConfig(), 1, "torchao int8 weight-only, bfloat16 activations"
    elif precision == "int4":
        config, multiple, how = Int4WeightOnlyConfig(group_size=32), 32, "torchao int4 weight-only (group 32), bfloat16 activations"
    else:
        config, multiple, how = Float8DynamicActivationFloat8WeightConfig(), 16, "torchao float8 dynamic activation and weight"

    def fits(m, _name):
        return isinstance(m, nn.Linear) and m.in_features % multiple == 0 and m.out_features % multiple == 0

    n_lin = sum(isinstance(m, nn.Linear) for m in model.modules())
    n_fit = sum(fits(m, "") for m in model.modules())
    if n_fit == 0:
        raise Unsupported(f"{precision}: no Linear layer has dimensions that are multiples of {multiple}")
    quantize_(model, config, filter_fn=fits)
    if n_fit < n_lin:
        how += f"; {n_lin - n_fit} of {n_lin} Linear layers left in bfloat16 (dimensions not multiples of {multiple})"
    return model, how

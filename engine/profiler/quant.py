"""The ``quant`` knob: torchao quantization of a model's Linear layers (torchao 0.18's quantize_).

- none: the weights stay in the precision they were loaded in;
- int8-weight: Int8WeightOnlyConfig (int8 weights, per-row scales; activations stay in the precision);
- int8-dynamic: Int8DynamicActivationInt8WeightConfig (int8 weights, activations quantized per token);
- int4-weight: Int4WeightOnlyConfig with the tile-packed (tinygemm) layout on NVIDIA GPUs
  (bfloat16 only, compute capability 8.0+); on the CPU torchao's prototype
  PrototypeInt4WeightOnlyConfig (Int4OpaqueTensor, aten's int4 CPU matmul): the stable config's
  CPU path needs the separate mslk package, and its other layouts are CUDA / XPU only;
- fp8: Float8DynamicActivationFloat8WeightConfig (row-wise scales in bfloat16, tensor-wise
  otherwise), NVIDIA compute capability 8.9+ (torchao asserts it; its CPU float8 kernels are
  not built into the wheel).

The output head (lm_head) stays unquantized, as most weight-quantization recipes keep it; so do
Linear layers whose input size no int4 group size (128, 64, 32) divides. ``unsupported`` says
why this machine cannot run a combination (the run is stored as skipped with that reason).
"""
from __future__ import annotations

import torch
import torch.nn as nn

QUANTS = ("none", "int8-weight", "int8-dynamic", "int4-weight", "fp8")
INT4_GROUPS = (128, 64, 32)
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def parse(v) -> str:
    t = str(v).strip().lower()
    t = {"int8": "int8-weight", "w8": "int8-weight", "int8wo": "int8-weight", "w8a8": "int8-dynamic",
         "int4": "int4-weight", "w4": "int4-weight", "float8": "fp8", "no": "none", "off": "none"}.get(t, t)
    if t not in QUANTS:
        raise ValueError(f"quant '{v}' is not one of {', '.join(QUANTS)}.")
    return t


def unsupported(quant: str, precision: str, device: str) -> str | None:
    if quant == "none":
        return None
    cuda = device.startswith("cuda")
    cc = torch.cuda.get_device_capability(device) if cuda else None
    if quant == "fp8":
        if not cuda:
            return ("fp8 needs an NVIDIA GPU with compute capability 8.9+ (torchao float8 kernels); "
                    "this run is on the CPU")
        if cc < (8, 9):
            return f"fp8 needs compute capability 8.9+ (Ada, Hopper or newer); this GPU has {cc[0]}.{cc[1]}"
    if quant == "int4-weight" and cuda:
        if cc < (8, 0):
            return f"int4-weight (tinygemm) needs compute capability 8.0+; this GPU has {cc[0]}.{cc[1]}"
        if precision != "bfloat16":
            return "int4-weight on a GPU uses torchao's tile-packed tinygemm layout, which takes bfloat16 only: use precision=bfloat16"
    if quant == "int4-weight" and not cuda and not hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"):
        return "int4-weight on the CPU needs aten's _weight_int4pack_mm_for_cpu, which this torch build lacks"
    return None


def int4_group(in_features: list[int]) -> int:
    """The largest int4 group size that divides every quantized layer's input size (else 32)."""
    for g in INT4_GROUPS:
        if all(n % g == 0 for n in in_features):
            return g
    return INT4_GROUPS[-1]


def targets(model: nn.Module, quant: str) -> list[tuple[str, nn.Linear]]:
    """The Linear layers ``apply`` quantizes: all but the output head (and, for int4, those whose
    input size no group size divides)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    out = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and m is not head]
    if quant == "int4-weight":
        out = [(n, m) for n, m in out if m.in_features % INT4_GROUPS[-1] == 0]
    return out


def config(quant: str, precision: str, device: str, group: int):
    """The torchao config object and a sentence saying what it does."""
    import torchao.quantization as tq

    if quant == "int8-weight":
        return tq.Int8WeightOnlyConfig(), f"torchao int8 weight-only (per-row scales), {precision} activations"
    if quant == "int8-dynamic":
        return (tq.Int8DynamicActivationInt8WeightConfig(),
                "torchao int8 dynamic activation (per token) + int8 weight (per row)")
    if quant == "int4-weight":
        if device.startswith("cuda"):
            return (tq.Int4WeightOnlyConfig(group_size=group, int4_packing_format="tile_packed_to_4d"),
                    f"torchao int4 weight-only (tinygemm tile-packed, group {group}), {precision} activations")
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig

        return (PrototypeInt4WeightOnlyConfig(group_size=group),
                f"torchao int4 weight-only (prototype CPU opaque layout, group {group}), {precision} activations")
    if quant == "fp8":
        gran = tq.PerRow() if precision == "bfloat16" else tq.PerTensor()
        return (tq.Float8DynamicActivationFloat8WeightConfig(granularity=gran),
                f"torchao float8 dynamic activation + weight ({type(gran).__name__} scales)")
    raise ValueError(f"quant '{quant}' is not one of {', '.join(QUANTS)}.")


def apply(model: nn.Module, quant: str, precision: str, device: str) -> str:
    """Quantize ``model`` in place; returns how (a sentence for the run's `quantization` field)."""
    if quant == "none":
        return f"weights and activations in {precision}"
    from torchao.quantization import quantize_

    chosen = targets(model, quant)
    if not chosen:
        raise ValueError(f"{quant}: the model has no Linear layer to quantize")
    group = int4_group([m.in_features for _, m in chosen])
    if quant == "int4-weight":
        chosen = [(n, m) for n, m in chosen if m.in_features % group == 0]
    ids = {id(m) for _, m in chosen}
    cfg, how = config(quant, precision, device, group)
    quantize_(model, cfg, filter_fn=lambda m, _fqn: id(m) in ids)
    n_lin = sum(isinstance(m, nn.Linear) for m in model.modules())
    done = sum(isinstance(m, nn.Linear) and type(m.weight) not in (nn.Parameter, torch.Tensor) for m in model.modules())
    return f"{how}; {done} of {n_lin} Linear layers quantized (output head and non-fitting layers kept in {precision})"

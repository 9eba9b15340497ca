"""Peak memory of a causal-LM configuration, predicted before it runs (OOM-safe sweeps).

An analytical model in the spirit of the GPU-memory estimators (Horus; FakeTensor tracing), fed
by the exact parameter shapes of the architecture: the model is built from its config on the
meta device (no memory, no weights read), so any model transformers knows is counted as it is
really laid out (tied embeddings once, biases, norms, the output head).

    peak = weights + max(prefill, decode) + runtime
    weights  = every parameter in the loaded precision, except the quantized Linear layers
               (quant.targets): int8 -> 1 B/weight + a float32 scale and int8 zero point per row;
               int4 -> 0.5 B/weight + a scale and zero per group (the precision's width);
               fp8 -> 1 B/weight + a float32 scale per row (bfloat16) or one per tensor
    prefill  = KV cache of the prompt + the widest layer's live activations for batch x prompt
               tokens (Llama-style MLP: residual, normed input, gate/up, their product: 2h + 3i
               values per token; attention: q, k, v and their rotated copies) + the last
               position's logits (logits_to_keep=1) + int8 quantization's transients (a
               weight-only int8 Linear casts its weight to the activation dtype per call; a
               dynamic one holds int8 inputs and int32 outputs)
    decode   = the KV cache at prompt + generated tokens + one step's transients
    runtime  = cuBLAS's workspace on a GPU (8 MiB by default); nothing on the CPU

On the CPU the prefill activations count twice: glibc serves blocks under its (dynamic, up to
32 MiB) mmap threshold from the heap and keeps a forward pass's freed blocks there, so RSS peaks
near twice the live activations (measured on this project's 2-core machine: factor 1.8-2.2 for
batch x prompt of 256-2048 tokens). The hf workload copies file-backed (mmap) weights into memory
on the CPU, so every weight counts as it does on a GPU.

It predicts what the profiler measures (measure.py): torch's peak allocated memory on a GPU; on
the CPU, the bytes of the built model's tensors (tensor_bytes: the weights term predicts them to
the byte) plus the rise of the process's RSS from then to its peak. bench/ prints its error
against the measurement over a sweep.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.profiler import quant as Q

MB = 2**20
CPU_HEAP_FACTOR = 2  # see the docstring: freed activation blocks the CPU allocator keeps in the heap
HEADROOM = 0.9  # a configuration runs only if predicted to fit in this share of the free memory
CUBLAS_WORKSPACE = 8 * MB + 8 * 16 * 1024  # torch's default CUBLAS_WORKSPACE_CONFIG=:4096:8 (+ small ones)


@dataclass
class Shape:
    """What the prediction needs to know of an architecture."""
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    linears: list[tuple[int, int, bool]] = field(default_factory=list)  # quantizable (out, in, bias)
    other_params: int = 0  # elements of every other parameter (embeddings, norms, head; tied ones once)
    buffer_bytes: int = 0  # persistent buffers (e.g. rotary frequencies), as built
    params: int = 0  # all parameters (tied ones once)

    @property
    def params_b(self) -> float:
        return self.params / 1e9


def shape_of(config) -> Shape:
    """The Shape of ``config``'s AutoModelForCausalLM, built on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = int(text.num_attention_heads)
    hidden = int(text.hidden_size)
    shape = Shape(
        layers=int(text.num_hidden_layers), hidden=hidden,
        intermediate=int(getattr(text, "intermediate_size", None) or 4 * hidden),
        vocab=int(text.vocab_size), heads=heads,
        kv_heads=int(getattr(text, "num_key_value_heads", None) or heads),
        head_dim=int(getattr(text, "head_dim", None) or hidden // heads),
    )
    quantizable = {id(m) for _, m in Q.targets(model, "int8-weight")}
    seen = set()
    for mod in model.modules():
        for name, p in mod.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            shape.params += p.numel()
            if id(mod) in quantizable and name == "weight":
                continue
            if id(mod) in quantizable and name == "bias":
                continue
            shape.other_params += p.numel()
    for _, m in Q.targets(model, "int8-weight"):
        shape.linears.append((m.out_features, m.in_features, m.bias is not None))
    shape.buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    return shape


def tensor_bytes(model) -> int:
    """The bytes a built model's parameters and buffers hold: each storage once (a tied weight,
    a view), a quantized weight (a torchao tensor subclass) as the tensors it is made of. What
    ``weight_bytes`` predicts, and what the CPU measurement counts as the weights (measure.py).
    torchao.utils.get_model_size_in_bytes counts a tied weight twice and skips the parameters of
    the model's own module, hence this."""
    import itertools

    import torch

    seen: set[int] = set()

    def size(t) -> int:
        if hasattr(t, "__tensor_flatten__") and type(t) not in (torch.Tensor, torch.nn.Parameter):
            return sum(size(getattr(t, name)) for name in t.__tensor_flatten__()[0])
        storage = t.untyped_storage()
        if storage.data_ptr() in seen:
            return 0
        seen.add(storage.data_ptr())
        return storage.nbytes()

    return sum(size(t) for t in itertools.chain(model.parameters(), model.buffers()))


def weight_bytes(shape: Shape, precision: str, quant: str, device: str) -> float:
    e = Q.BYTES[precision]
    total = shape.other_params * e + shape.buffer_bytes
    group = Q.int4_group([i for _, i, _ in shape.linears if i % Q.INT4_GROUPS[-1] == 0] or [Q.INT4_GROUPS[-1]])
    for out, inp, bias in shape.linears:
        total += out * e if bias else 0
        if quant in ("int8-weight", "int8-dynamic"):
            total += out * inp + out * (4 + 1)
        elif quant == "int4-weight" and inp % group == 0:
            total += out * inp / 2 + (inp // group) * out * 2 * (2 if device.startswith("cuda") else e)
        elif quant == "fp8":
            total += out * inp + (out * 4 if precision == "bfloat16" else 4)
        else:
            total += out * inp * e
    return total


def predict(shape: Shape, cfg: dict, device: str) -> dict:
    """Predicted peak memory of one configuration: {"total_mb", and each part in MB}."""
    precision, quant = cfg["precision"], cfg.get("quant", "none")
    b, prompt, gen = cfg["batch_size"], cfg["prompt_len"], cfg["gen_len"]
    e = Q.BYTES[precision]
    kv_per_token = 2 * shape.layers * shape.kv_heads * shape.head_dim * e
    tokens = b * prompt
    mlp = tokens * (2 * shape.hidden + 3 * shape.intermediate) * e
    attn = tokens * (2 * shape.hidden + 2 * shape.heads * shape.head_dim + 4 * shape.kv_heads * shape.head_dim) * e
    widest_in = max((i for _, i, _ in shape.linears), default=shape.hidden)
    widest_out = max((o for o, _, _ in shape.linears), default=shape.hidden)
    step = 0.0  # a quantized Linear's own transients, per call
    if quant == "int8-weight":
        step = max((o * i * e for o, i, _ in shape.linears), default=0)
    elif quant == "int8-dynamic":
        step = tokens * (widest_in + 4 * widest_out)
    logits = b * shape.vocab * (e + 4)  # the last position's logits, and their float32 argmax input
    heap = 1 if device.startswith("cuda") else CPU_HEAP_FACTOR
    prefill = kv_per_token * tokens + heap * max(mlp, attn) + step + logits
    decode = kv_per_token * b * (prompt + gen) + (step if quant == "int8-weight" else 0) + logits
    parts = {
        "weights": weight_bytes(shape, precision, quant, device),
        "kv_cache": kv_per_token * b * (prompt + gen),
        "activations": max(prefill, decode) - kv_per_token * b * (prompt if prefill >= decode else prompt + gen),
        "runtime": CUBLAS_WORKSPACE if device.startswith("cuda") else 0,
    }
    total = parts["weights"] + max(prefill, decode) + parts["runtime"]
    return {"total_mb": total / MB, **{f"{k}_mb": v / MB for k, v in parts.items()}}


def free_mb(device: str) -> float:
    """Memory a configuration may take: free GPU memory, or the machine's available RAM."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.mem_get_info(device)[0] / MB
    import psutil

    return psutil.virtual_memory().available / MB

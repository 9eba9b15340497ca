"""The workloads a sweep can measure, each defined in code with a real quality signal.

- ``digits-mlp`` / ``digits-cnn``: classifiers trained once on scikit-learn's bundled digits
  (no download), the state_dict cached under data/cache/ (torch.save / torch.load with
  weights_only=True: tensors only, nothing unpickled); quality = held-out accuracy.
- ``tiny-gpt``: a decoder-only transformer (layers / width / heads set in code, seeded), measured
  on prefill + greedy token-by-token generation with a KV cache; quality = fidelity to its own
  float32 self (top-1 agreement and KL divergence of the next-token distributions).
- ``model``: the person's own ``package.module:factory`` (see UserWorkload).

A workload gives the float32 reference model, a batch of inputs, the measured step, the number
of work units one step does, and its quality metrics for a configured model.
"""
from __future__ import annotations

import hashlib
import importlib
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.profiler import catalog
from engine.store import ROOT


def cache_dir() -> Path:
    return Path(os.environ.get("PARETOSCOPE_CACHE") or ROOT / "data" / "cache")


def cast_floats(x, device, dtype):
    """Move tensors (or tuples of them) to ``device``; floating ones also to ``dtype``."""
    if isinstance(x, (tuple, list)):
        return type(x)(cast_floats(t, device, dtype) for t in x)
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)
    return x


def fidelity(ref_logits: torch.Tensor, logits: torch.Tensor) -> dict:
    """Top-1 agreement and mean KL(ref || config) of the distributions over the last dim."""
    ref, out = ref_logits.float().flatten(0, -2), logits.float().flatten(0, -2)
    agree = (ref.argmax(-1) == out.argmax(-1)).float().mean().item()
    kl = F.kl_div(F.log_softmax(out, -1), F.log_softmax(ref, -1), log_target=True, reduction="batchmean").item()
    return {"agreement": agree, "kl_div": max(kl, 0.0)}



def timed_greedy_decode(prefill, decode, gen_len: int, sync) -> dict:
    """Time an LLM-style generation: ``prefill()`` runs the prompt and returns the first token,
    ``decode(token)`` one step with the cache and returns the next; ``sync`` waits for the device.
    Returns the sub-timings measure() summarises: {"prefill": [s], "itl": [s, ...]}."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        nxt = prefill()
        sync()
        t = time.perf_counter()
        first, itl = t - t0, []
        for _ in range(gen_len - 1):
            nxt = decode(nxt)
            sync()
            t1 = time.perf_counter()
            itl.append(t1 - t)
            t = t1
    return {"prefill": [first], "itl": itl}

class Workload:
    name = ""
    work_unit = "sample"
    quality_metric = "accuracy"  # the headline quality the workload measures (Explore's link plots it)
    knobs = ("precision", "batch_size", "compile", "threads", "power_limit_w")
    choices: dict = {}  # grid values narrower than knobs.PARSERS accepts, per key
    defaults: dict = {"precision": ["float32"], "batch_size": [32], "compile": [False], "threads": [None]}
    seconds_per_config = 3.0  # a first guess for the page's duration estimate

    def __init__(self):
        self.notes: list[str] = []

    @property
    def model_name(self) -> str:
        return self.name

    def reference(self) -> nn.Module:
        raise NotImplementedError

    # The sweep's hooks; a workload that loads its own models (hf.py) overrides them.
    def unsupported(self, cfg: dict, device: str) -> str | None:
        from engine.profiler import knobs

        return knobs.unsupported(cfg, device)

    def predict_memory(self, cfg: dict, device: str) -> dict | None:
        return None  # no prediction: the configuration always runs

    def before_config(self, cfg: dict, device: str) -> None:
        """Work done before the configuration's memory baseline is taken (e.g. a reference)."""

    def configure(self, cfg: dict, device: str) -> tuple[nn.Module, str]:
        from engine.profiler import knobs

        return knobs.prepare(self.reference(), cfg, device)

    def params_b(self) -> float:
        return sum(p.numel() for p in self.reference().parameters()) / 1e9

    def flops(self, cfg: dict, device: str) -> float | None:
        """FLOPs of one call of the float32 reference (the logical work, whatever the precision)."""
        from torch.utils.flop_counter import FlopCounterMode

        ref = self.reference()
        model = ref if device == "cpu" else __import__("copy").deepcopy(ref).to(device)
        fn = self.step(model, self.inputs(cfg, device, torch.float32), cfg)
        with FlopCounterMode(display=False) as fc:
            fn()
        return float(fc.get_total_flops()) or None

    def inputs(self, cfg, device, dtype):
        raise NotImplementedError

    def step(self, model, inputs, cfg, sync=lambda: None):
        """The measured call: returns a callable doing one batch (optionally returning sub-timings)."""
        def call():
            with torch.inference_mode():
                model(inputs)
        return call

    def units(self, cfg) -> float:
        return float(cfg["batch_size"])

    def quality(self, model, ref, device, dtype) -> dict:
        return {}


# -- digits ----------------------------------------------------------------------------------------

class DigitsWorkload(Workload):
    """A classifier for sklearn's 8x8 digits; 80/20 stratified split, seed 0."""
    epochs = 40
    lr = 3e-3

    def __init__(self):
        super().__init__()
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        x = torch.tensor(d.data / 16.0, dtype=torch.float32)
        y = torch.tensor(d.target, dtype=torch.long)
        idx = torch.arange(len(y)).numpy()
        tr, te = train_test_split(idx, test_size=0.2, random_state=0, stratify=d.target)
        self.x_train, self.y_train = self.shape(x[tr]), y[tr]
        self.x_test, self.y_test = self.shape(x[te]), y[te]
        self._ref = None

    def shape(self, x):
        return x

    def build(self) -> nn.Module:
        raise NotImplementedError

    def reference(self) -> nn.Module:
        if self._ref is None:
            torch.manual_seed(0)
            model = self.build()
            key = hashlib.md5(f"{model}|{self.epochs}|{self.lr}".encode()).hexdigest()[:10]
            path = cache_dir() / f"{self.name}-{key}.pt"
            if path.exists():
                model.load_state_dict(torch.load(path, weights_only=True))
            else:
                self.train(model)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                torch.save(model.state_dict(), tmp)
                os.replace(tmp, path)
            self._ref = model.eval()
        return self._ref

    def train(self, model: nn.Module) -> None:
        g = torch.Generator().manual_seed(0)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        model.train()
        n = len(self.y_train)
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, 64):
                b = perm[i:i + 64]
                opt.zero_grad()
                F.cross_entropy(model(self.x_train[b]), self.y_train[b]).backward()
                opt.step()
        model.eval()

    def inputs(self, cfg, device, dtype):
        n = cfg["batch_size"]
        idx = torch.arange(n) % len(self.y_test)
        return cast_floats(self.x_test[idx], device, dtype)

    def quality(self, model, ref, device, dtype) -> dict:
        with torch.inference_mode():
            pred = model(cast_floats(self.x_test, device, dtype)).float().argmax(-1).cpu()
        return {"accuracy": (pred == self.y_test).float().mean().item()}


class DigitsMLP(DigitsWorkload):
    name = "digits-mlp"

    def build(self):
        return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))

    @property
    def model_name(self):
        return "digits-mlp-64x256x256x10"


class DigitsCNN(DigitsWorkload):
    name = "digits-cnn"
    epochs = 15

    def shape(self, x):
        return x.reshape(-1, 1, 8, 8)

    def build(self):
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    @property
    def model_name(self):
        return "digits-cnn-c16c32-fc64"


# -- tiny GPT --------------------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.fc, self.out = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x, cache=None):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and t > 1)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        x = x + self.out(F.gelu(self.fc(self.ln2(x))))
        return x, (k, v)


class TinyGPT(nn.Module):
    def __init__(self, vocab: int = 256, layers: int = 2, width: int = 128, heads: int = 4, context: int = 512):
        super().__init__()
        if width % heads:
            raise ValueError(f"tiny-gpt width {width} is not divisible by heads {heads}.")
        self.context = context
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        nn.init.normal_(self.head.weight, std=3.0 / math.sqrt(width))  # peaked, not near-uniform, next-token distributions

    def forward(self, idx, caches=None, start: int = 0):
        t = idx.shape[1]
        pos = torch.arange(start, start + t, device=idx.device)
        x = self.tok(idx) + self.pos(pos)
        new = []
        for i, blk in enumerate(self.blocks):
            x, c = blk(x, None if caches is None else caches[i])
            new.append(c)
        return self.head(self.ln(x)), new


class TinyGPTWorkload(Workload):
    name = "tiny-gpt"
    work_unit = "token"
    quality_metric = "agreement"  # no labels: fidelity to its own float32 self
    knobs = ("precision", "batch_size", "seq_len", "gen_len", "compile", "threads", "power_limit_w")
    defaults = {"precision": ["float32"], "batch_size": [1], "seq_len": [32], "gen_len": [16],
                "compile": [False], "threads": [None]}
    seconds_per_config = 5.0

    def __init__(self, layers: int = 2, width: int = 128, heads: int = 4, seed: int = 0):
        super().__init__()
        self.layers, self.width, self.heads, self.seed = int(layers), int(width), int(heads), int(seed)
        self._ref = None
        g = torch.Generator().manual_seed(1234)
        self.eval_tokens = torch.randint(0, 256, (8, 64), generator=g)

    @property
    def model_name(self):
        return f"tiny-gpt-L{self.layers}-d{self.width}-h{self.heads}"

    def reference(self):
        if self._ref is None:
            torch.manual_seed(self.seed)
            self._ref = TinyGPT(layers=self.layers, width=self.width, heads=self.heads).eval()
        return self._ref

    def inputs(self, cfg, device, dtype):
        need = cfg["seq_len"] + cfg["gen_len"]
        if need > self.reference().context:
            raise ValueError(f"seq_len + gen_len = {need} tokens exceeds tiny-gpt's context of {self.reference().context}.")
        g = torch.Generator().manual_seed(7)
        return torch.randint(0, 256, (cfg["batch_size"], cfg["seq_len"]), generator=g).to(device)

    def units(self, cfg):
        return float(cfg["batch_size"] * cfg["gen_len"])

    def step(self, model, prompt, cfg, sync=lambda: None):
        gen = cfg["gen_len"]

        def call():
            state = {"pos": prompt.shape[1]}

            def prefill():
                logits, state["caches"] = model(prompt)
                return logits[:, -1].argmax(-1, keepdim=True)

            def decode(nxt):
                logits, state["caches"] = model(nxt, state["caches"], state["pos"])
                state["pos"] += 1
                return logits[:, -1].argmax(-1, keepdim=True)

            return timed_greedy_decode(prefill, decode, gen, sync)
        return call

    def quality(self, model, ref, device, dtype):
        x = self.eval_tokens.to(device)
        with torch.inference_mode():
            want = ref(self.eval_tokens)[0]
            got = model(x)[0].float().cpu()
        return fidelity(want, got)


# -- the person's own model -------------------------------------------------------------------------

class CastingModel(nn.Module):
    """Feeds float32 CPU inputs to a model configured for another device / dtype (for eval fns)."""

    def __init__(self, model, device, dtype):
        super().__init__()
        self.model, self.device, self.dtype = model, device, dtype

    def forward(self, *args):
        out = self.model(*cast_floats(args, self.device, self.dtype))
        return out.float().cpu() if isinstance(out, torch.Tensor) else out


class UserWorkload(Workload):
    """``package.module:factory`` — code the person names, imported from their Python path.

    ``factory()`` returns ``(model, example_inputs)`` or ``(model, example_inputs, eval_fn)``, or a
    dict with keys model, inputs, eval (optional), work_unit (optional, default "sample").
    ``example_inputs`` is a tensor or tuple of tensors with the batch as dim 0 (repeated or cut to
    the configured batch size). ``eval_fn(model)`` gets a model that takes float32 CPU inputs
    whatever the precision, and returns a float in [0, 1] (accuracy) or a dict of metrics.
    Without it, quality is fidelity to the float32 model on the example inputs.
    """
    name = "model"

    def __init__(self, spec: str):
        super().__init__()
        mod_name, _, fn_name = spec.partition(":")
        if not mod_name or not fn_name:
            raise ValueError(f"--model '{spec}' must look like package.module:factory.")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            factory = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"--model '{spec}': cannot import it ({e}).") from e
        self.spec = spec
        out = factory()
        if isinstance(out, dict):
            model, ex, ev = out.get("model"), out.get("inputs"), out.get("eval")
            self.work_unit = out.get("work_unit", "sample")
        elif isinstance(out, (tuple, list)) and len(out) in (2, 3):
            model, ex, ev = out[0], out[1], out[2] if len(out) == 3 else None
        else:
            raise ValueError(f"--model '{spec}': the factory must return (model, example_inputs[, eval_fn]).")
        if not isinstance(model, nn.Module):
            raise ValueError(f"--model '{spec}': the factory's model is a {type(model).__name__}, not a torch.nn.Module.")
        self.model, self.eval_fn = model.eval(), ev
        self.example = ex if isinstance(ex, (tuple, list)) else (ex,)
        self.b0 = self.example[0].shape[0]

    @property
    def model_name(self):
        return self.spec

    @property
    def quality_metric(self):
        return "accuracy" if self.eval_fn is not None else "agreement"

    def reference(self):
        return self.model

    def inputs(self, cfg, device, dtype):
        idx = torch.arange(cfg["batch_size"]) % self.b0
        return tuple(cast_floats(t[idx], device, dtype) for t in self.example)

    def step(self, model, inputs, cfg, sync=None):
        def call():
            with torch.inference_mode():
                model(*inputs)
        return call

    def quality(self, model, ref, device, dtype):
        if self.eval_fn is not None:
            q = self.eval_fn(CastingModel(model, device, dtype))
            return {"accuracy": float(q)} if not isinstance(q, dict) else {k: float(v) for k, v in q.items()}
        with torch.inference_mode():
            want = ref(*self.example)
            got = CastingModel(model, device, dtype)(*self.example)
        if not isinstance(want, torch.Tensor):
            return {}
        out = {"rel_error": ((got.float() - want.float()).norm() / want.float().norm().clamp_min(1e-12)).item()}
        if want.dim() >= 2 and want.shape[-1] > 1:
            out.update(fidelity(want, got))
        return out


BUILTIN = {name: catalog.load(path) for name, path in catalog.BUILTIN.items()}  # name -> class


def get_workload(name: str | None, model: str | None = None, params: dict | None = None) -> Workload:
    if model:
        return UserWorkload(model)
    prefix, sep, arg = (name or "").partition(":")
    if sep and prefix in catalog.PREFIXED:
        return catalog.load(catalog.PREFIXED[prefix])(arg, **(params or {}))
    if name not in BUILTIN:
        raise ValueError(f"Unknown workload '{name}'; built-in: {', '.join(BUILTIN)}, or hf:MODEL "
                         f"(a Hugging Face hub id or local folder), or --model package.module:factory.")
    try:
        return BUILTIN[name](**(params or {}))
    except TypeError as e:
        raise ValueError(f"Workload '{name}' does not take these parameters: {params} ({e}).") from e

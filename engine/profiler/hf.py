"""Hugging Face causal language models as a profiler workload: ``--workload hf:MODEL``.

MODEL is a hub id (org/name: its config, tokenizer and safetensors weights are fetched once into
the Hugging Face cache) or a local folder written by ``save_pretrained``. Weights load through
transformers' AutoModelForCausalLM from safetensors only (``use_safetensors=True``: nothing is
unpickled), and ``trust_remote_code`` is never set: an architecture transformers does not ship
is refused with the reason.

A configuration is precision (the dtype the weights load in) x quant (quant.py) x batch_size x
prompt_len x gen_len. It is measured LLM-style, as the ML.ENERGY benchmark does: a batch of
prompt_len-token prompts cut from the shipped text is prefilled (``ttft_ms``), then gen_len
tokens are decoded greedily with the KV cache, each step timed (``itl_ms`` and its tails);
throughput and energy count output tokens. Its peak memory is predicted first (memory.py).

Quality needs no labels: perplexity of the configured model on the shipped text
(data/text/, see data/README.md), and fidelity to the unquantized float32 reference on the same
tokens (top-1 agreement, KL(reference || configured)). lm-eval tasks stay an option outside the
sweep: ``lm_eval --model hf --model_args pretrained=MODEL`` and Import its results.json.
"""
from __future__ import annotations

import gc
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.profiler import memory
from engine.profiler import quant as Q
from engine.profiler.workloads import Workload, timed_greedy_decode
from engine.store import ROOT

TEXT = ROOT / "data" / "text" / "coriolanus-act1.txt"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HUB_FILES = ["*.json", "*.safetensors", "tokenizer*", "*.model", "*.tiktoken", "*.txt"]


def _short(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return (msg or type(e).__name__)[:300]


def _quiet_transformers() -> None:
    from transformers.utils import logging as tlog

    tlog.set_verbosity_error()
    tlog.disable_progress_bar()


class HFWorkload(Workload):
    name = "text-generation"
    work_unit = "token"
    quality_metric = "perplexity"
    knobs = ("precision", "quant", "batch_size", "prompt_len", "gen_len", "threads", "power_limit_w")
    choices = {"precision": tuple(DTYPES)}
    seconds_per_config = 10.0
    eval_len = 128  # tokens per quality chunk
    eval_chunks = 8  # perplexity over up to 8 x 128 tokens of the shipped text
    fidelity_floats = 64 * 2**20  # reference log-probs kept for fidelity (float32 values, 256 MB)

    def __init__(self, spec: str, fetch: bool = True):
        """``fetch=False`` reads the config only (the page's memory prediction): no weights."""
        super().__init__()
        _quiet_transformers()
        self.spec = spec.strip()
        if not self.spec:
            raise ValueError("hf: needs a model: a hub id (org/name) or a local folder.")
        self.folder = self._resolve(fetch)
        self.config = self._load_config()
        self.shape = memory.shape_of(self.config)
        self.max_len = int(getattr(self.config.get_text_config(), "max_position_embeddings", 0) or 0) or None
        self.defaults = {"precision": ["bfloat16" if torch.cuda.is_available() else "float32"], "quant": ["none"],
                         "batch_size": [1], "prompt_len": [32], "gen_len": [16], "threads": [None]}
        self.tokenizer = self._load_tokenizer() if fetch else None
        self._text_ids = None
        self._reference = None  # (log-probs per chunk, precision) once computed
        self._reference_error = None

    # -- where the model lives -----------------------------------------------------------
    def _fail(self, why: str) -> ValueError:
        return ValueError(f"cannot load hf:{self.spec}: {why}")

    def _resolve(self, fetch: bool) -> Path | None:
        path = Path(self.spec).expanduser()
        if path.is_dir() or self.spec.startswith((".", "/", "~")):
            if not path.is_dir():
                raise self._fail("no such folder")
            if not (path / "config.json").is_file():
                raise self._fail(f"the folder {path} has no config.json (save_pretrained writes one)")
            self._check_safetensors(path)
            return path.resolve()
        if not fetch:
            return None
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(self.spec, allow_patterns=HUB_FILES))
        except Exception as e:  # no network, no such repo, gated, ...
            raise self._fail(_short(e)) from e
        self._check_safetensors(folder)
        return folder

    def _check_safetensors(self, folder: Path) -> None:
        if not any(folder.glob("*.safetensors")):
            raise self._fail("no .safetensors weights (pickled .bin checkpoints are not loaded)")

    def _load_config(self):
        from transformers import AutoConfig
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        try:
            config = AutoConfig.from_pretrained(str(self.folder or self.spec), trust_remote_code=False)
        except Exception as e:
            raise self._fail(_short(e)) from e
        if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            raise self._fail(f"a '{config.model_type}' model is not a causal language model AutoModelForCausalLM loads")
        return config

    def _load_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(self.folder), trust_remote_code=False)
        except Exception as e:
            raise self._fail(f"its tokenizer did not load ({_short(e)})") from e

    @property
    def model_name(self) -> str:
        return self.spec if self.folder is None or not Path(self.spec).expanduser().is_dir() else str(self.folder)

    def params_b(self) -> float:
        return self.shape.params_b

    def reference(self):
        return None  # loaded per configuration from the checkpoint (build), the reference in before_config

    def flops(self, cfg: dict, device: str) -> float | None:
        return None

    # -- the sweep's hooks -----------------------------------------------------------------
    def unsupported(self, cfg: dict, device: str) -> str | None:
        from engine.profiler import knobs

        if cfg["precision"] == "bfloat16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
            return "this GPU has no bfloat16 support"
        return Q.unsupported(cfg.get("quant", "none"), cfg["precision"], device) or knobs.power_unsupported(cfg, device)

    def predict_memory(self, cfg: dict, device: str) -> dict:
        return memory.predict(self.shape, cfg, device)

    def load(self, precision: str, device: str):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(self.folder), dtype=DTYPES[precision], use_safetensors=True,
                                                     trust_remote_code=False)
        if device == "cpu":  # weights the checkpoint's file backs (mmap, read lazily) -> held in memory, as a GPU
            with torch.no_grad():  # holds them: otherwise unread embedding rows never count, and RSS is a lottery
                for p in model.parameters():
                    p.data = p.data.clone()
        return model.to(device).eval()

    def configure(self, cfg: dict, device: str):
        model = self.load(cfg["precision"], device)
        how = Q.apply(model, cfg.get("quant", "none"), cfg["precision"], device)
        return model, how

    def before_config(self, cfg: dict, device: str) -> None:
        """The float32 reference's log-probs, computed once, before any configured model is built."""
        if self._reference is not None or self._reference_error is not None:
            return
        try:
            self._reference = self._reference_logprobs(device)
        except Exception as e:
            self._reference_error = f"fidelity not measured: the unquantized reference failed ({_short(e)})"
            self.notes.append(self._reference_error)
        finally:
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()

    # -- inputs and the measured call --------------------------------------------------------
    def text_ids(self) -> torch.Tensor:
        if self._text_ids is None:
            ids = self.tokenizer(TEXT.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
            self._text_ids = torch.tensor(ids, dtype=torch.long)
        return self._text_ids

    def inputs(self, cfg, device, dtype):
        need = cfg["prompt_len"] + cfg["gen_len"]
        if self.max_len and need > self.max_len:
            raise ValueError(f"prompt_len + gen_len = {need} tokens exceeds the model's context of {self.max_len}.")
        ids = self.text_ids()
        n = cfg["prompt_len"]
        if len(ids) < n + 1:
            ids = ids.repeat(n // max(len(ids), 1) + 2)
        starts = [(i * 97) % (len(ids) - n) for i in range(cfg["batch_size"])]  # a different passage per row
        return torch.stack([ids[s:s + n] for s in starts]).to(device)

    def units(self, cfg) -> float:
        return float(cfg["batch_size"] * cfg["gen_len"])

    def step(self, model, prompt, cfg, sync=lambda: None):
        gen = cfg["gen_len"]

        def call():
            state = {}

            def prefill():
                out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
                state["cache"] = out.past_key_values
                return out.logits[:, -1].argmax(-1, keepdim=True)

            def decode(nxt):
                out = model(input_ids=nxt, past_key_values=state["cache"], use_cache=True)
                state["cache"] = out.past_key_values
                return out.logits[:, -1].argmax(-1, keepdim=True)

            return timed_greedy_decode(prefill, decode, gen, sync)
        return call

    # -- quality ------------------------------------------------------------------------------
    def eval_chunks_ids(self) -> torch.Tensor:
        length = min(self.eval_len, self.max_len or self.eval_len)
        ids = self.text_ids()
        n = max(1, min(self.eval_chunks, len(ids) // length))
        if len(ids) < length:
            ids = ids.repeat(length // max(len(ids), 1) + 1)
        return ids[: n * length].reshape(n, length)

    def _fidelity_tokens(self) -> int:
        return max(16, min(self.eval_len, self.fidelity_floats // (self.shape.vocab * self.eval_chunks)))

    def _reference_logprobs(self, device: str) -> tuple[list[torch.Tensor], str]:
        precision = "float32"
        need = memory.predict(self.shape, {"precision": "float32", "quant": "none", "batch_size": 1,
                                           "prompt_len": self.eval_len, "gen_len": 0}, device)["total_mb"]
        if need > memory.free_mb(device) * memory.HEADROOM:
            precision = "bfloat16"
            self.notes.append(f"fidelity reference in bfloat16: float32 would need about {need:.0f} MB here")
        model = self.load(precision, device)
        k = self._fidelity_tokens()
        out = []
        with torch.inference_mode():
            for chunk in self.eval_chunks_ids():
                logits = model(input_ids=chunk[None].to(device)).logits[0, :k].float()
                out.append(F.log_softmax(logits, -1).cpu())
        del model
        return out, precision

    def quality(self, model, ref, device, dtype) -> dict:
        nll, count, agree, kl, n = 0.0, 0, 0.0, 0.0, 0
        reference = self._reference[0] if self._reference else None
        with torch.inference_mode():
            for i, chunk in enumerate(self.eval_chunks_ids()):
                logp = F.log_softmax(model(input_ids=chunk[None].to(device)).logits[0].float(), -1).cpu()
                nll -= logp[:-1].gather(-1, chunk[1:, None]).sum().item()
                count += len(chunk) - 1
                if reference is not None:
                    want = reference[i]
                    got = logp[: len(want)]
                    agree += (want.argmax(-1) == got.argmax(-1)).float().sum().item()
                    kl += F.kl_div(got, want, log_target=True, reduction="sum").item()
                    n += len(want)
        out = {"perplexity": math.exp(nll / count)}
        if n:
            out.update({"agreement": agree / n, "kl_div": max(kl / n, 0.0)})
        return out

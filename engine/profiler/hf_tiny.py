"""Small causal LMs built from a config with random weights and saved like a real checkpoint
(safetensors + config + tokenizer), so the hf workload can be profiled with no download: the
tests, the memory benchmark and a first try on a new machine all take exactly the path a hub
checkpoint takes (``--workload hf:FOLDER``).

    python -m engine.profiler.hf_tiny FOLDER [--arch llama|qwen2] [--hidden 64] [--layers 2] [--vocab 512]

The tokenizer is a byte-level BPE trained on the shipped text (data/text), so prompts and
perplexity use real text; the weights are random (the output head scaled up so next-token
distributions are peaked, as a trained model's are, and quantization visibly moves them), so the
model's text is noise and its perplexity huge: it measures the machinery, not a language model.
"""
from __future__ import annotations

import argparse
from pathlib import Path

ARCHS = ("llama", "qwen2")


def tokenizer(vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from engine.profiler.hf import TEXT

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator([TEXT.read_text(encoding="utf-8")], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def save(folder, arch: str = "llama", hidden: int = 64, layers: int = 2, vocab: int = 512, intermediate: int | None = None,
         heads: int = 4, kv_heads: int = 2, context: int = 1024, seed: int = 0, model_vocab: int | None = None) -> Path:
    """Write a tiny ``arch`` model (Llama: untied head; Qwen2: tied embeddings, q/k/v biases).
    ``vocab`` is the tokenizer's size; ``model_vocab`` pads the embedding beyond it, as real
    checkpoints pad theirs (a bigger model for the memory benchmark)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    from engine.profiler.hf import _quiet_transformers

    if arch not in ARCHS:
        raise ValueError(f"arch '{arch}' is not one of {', '.join(ARCHS)}.")
    _quiet_transformers()
    folder = Path(folder)
    tok = tokenizer(vocab)
    common = dict(vocab_size=max(len(tok), model_vocab or 0), hidden_size=hidden, intermediate_size=intermediate or 2 * hidden,
                  num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                  max_position_embeddings=context, eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id)
    config = LlamaConfig(**common, tie_word_embeddings=False) if arch == "llama" else \
        Qwen2Config(**common, tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    for p in model.parameters():  # a peaked, not near-uniform, next-token distribution
        torch.nn.init.normal_(p, std=0.5 / hidden ** 0.5) if p.dim() > 1 else None
    model.get_output_embeddings().weight.data.normal_(std=3.0 / hidden ** 0.5)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.profiler.hf_tiny", description=__doc__.split("\n\n")[0])
    p.add_argument("folder")
    p.add_argument("--arch", choices=ARCHS, default="llama")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--intermediate", type=int, default=None)
    p.add_argument("--model-vocab", type=int, default=None, help="embedding rows beyond the tokenizer's (padding)")
    a = p.parse_args(argv)
    out = save(a.folder, a.arch, a.hidden, a.layers, a.vocab, a.intermediate, model_vocab=a.model_vocab)
    print(f"saved a random {a.arch} model to {out} (use --workload hf:{out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

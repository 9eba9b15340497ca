"""Build data/seed/qwen2-quantization.parquet from the Qwen2 documentation's two benchmark pages.

The Qwen team measured the same four weight formats of each Qwen2 Instruct model (BF16,
GPTQ-Int8, GPTQ-Int4, AWQ) for accuracy (MMLU, C-Eval, IFEval; "Performance of Quantized
Models") and for generation speed and GPU memory on an A100 80GB ("Speed Benchmark"), so one
source shows where quantization, not model size, decides. Both pages are reStructuredText grid
tables; this module reads them as published (QwenLM/Qwen2.5 at commit 4da996c,
docs/source/benchmark/quantization_benchmark.rst and speed_benchmark.rst) and joins each speed
row to the accuracy of the same model and weight format. Nothing is estimated: what a page does
not report (energy, vLLM's memory, the 57B model's accuracy) stays empty.

``python -m engine.seed_qwen2 DIR`` with DIR holding the two .rst files.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pandas as pd

from engine import exchange
from engine.fields import BACKEND, GEN_LEN, PROMPT_LEN, QUALITY_BY_NAME, QUANT, Field, source_field
from engine.store import ROOT, Store

SOURCE = "qwen2-quantization-docs"
TASK = "qwen2-quantization"
REPO = "QwenLM/Qwen2.5@4da996c576418cc9ecdff35aeddfcdca814e9568"
ACCURACY_PAGE = "docs/source/benchmark/quantization_benchmark.rst"
SPEED_PAGE = "docs/source/benchmark/speed_benchmark.rst"
GEN_TOKENS = 2048  # "We test the speed and memory of generating 2048 tokens"
FORMATS = {"BF16": ("bfloat16", "none"), "GPTQ-Int8": ("int8", "gptq-int8"), "GPTQ-Int4": ("int4", "gptq-int4"),
           "AWQ": ("int4", "awq")}
BACKENDS = {"Transformer": "transformers", "vLLM": "vLLM"}
SETTING = Field("serving_setting", "config", "text", "", None, "vLLM engine settings of the measurement")
VLLM_DEFAULT = "gpu_memory_utilization=0.9 max_model_len=32768 enforce_eager=False"


def grid_tables(text: str) -> list[tuple[str, list[dict]]]:
    """Every grid table of an .rst page as (the line above it that names it, rows as dicts).
    A blank cell under a spanning cell repeats the value above it, as the table draws it."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if not lines[i].startswith("+-"):
            i += 1
            continue
        title = next((lines[j].strip(" -") for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        block = []
        while i < len(lines) and lines[i][:1] in "+|":
            block.append(lines[i])
            i += 1
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in block if line.startswith("|")]
        header, rows, last = cells[0], [], None
        for row in cells[1:]:
            row = [v or (last[k] if last and k < len(last) else "") for k, v in enumerate(row)]
            rows.append(dict(zip(header, row)))
            last = row
        out.append((title, rows))
    return out


def _settings(text: str) -> dict[str, str]:
    """The page's footnotes: '[Setting 1]' -> 'gpu_memory_utilization=0.98 ...'."""
    return {f"[{m[1]}]": m[2] for m in re.finditer(r"\*\s*\[([^\]]+)\]=\(([^)]*)\)", text)}


def accuracy(text: str) -> pd.DataFrame:
    """model, weight format and the four accuracy columns (%) of the quantization page."""
    (_, rows), = grid_tables(text)
    df = pd.DataFrame(rows).rename(columns={"": "model", "Quantization": "format"})
    df["model"] = "Qwen/" + df["model"]
    return df


def speed(text: str) -> pd.DataFrame:
    """One row per measured (model, backend, input length, format, GPUs, setting)."""
    settings = _settings(text)
    frames = []
    for title, rows in grid_tables(text):
        m = re.match(r"[\d.]+B(?:-A\d+B)? \((Transformer|vLLM)\)", title)
        if not m:
            continue  # the MoE throughput table measures another workload
        df = pd.DataFrame(rows)
        df["backend"] = BACKENDS[m[1]]
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["model"] = "Qwen/" + df["Model"]
    setting = df["Setting"] if "Setting" in df else pd.Series("", index=df.index)
    df["serving_setting"] = [settings.get(s, VLLM_DEFAULT) if b == "vLLM" else None
                             for s, b in zip(setting.fillna(""), df["backend"])]
    return df


def runs(accuracy_text: str, speed_text: str) -> pd.DataFrame:
    acc = accuracy(accuracy_text).set_index(["model", "format"])
    sp = speed(speed_text)
    cite = f"Qwen2 documentation, Performance of Quantized Models (greedy decoding); {REPO} {ACCURACY_PAGE}"
    out = pd.DataFrame({
        "source": SOURCE, "status": "ok", "task": TASK, "model": sp["model"], "hardware": "A100",
        "num_gpus": sp["GPU Num"].astype(int),
        "precision": sp["Quantization"].map(lambda f: FORMATS[f][0]),
        "quant": sp["Quantization"].map(lambda f: FORMATS[f][1]),
        "batch_size": 1, "work_unit": "token", "backend": sp["backend"],
        "prompt_len": sp["Input Length"].astype(int), "gen_len": GEN_TOKENS,
        "serving_setting": sp["serving_setting"],
        "throughput": sp["Speed(tokens/s)"].astype(float),
        # the page's "GPU Memory(GB)", taken as GiB (torch's allocator statistics count powers of two)
        "peak_memory_mb": pd.to_numeric(sp.get("GPU Memory(GB)"), errors="coerce") * 1024,
    })
    columns = {"accuracy": "Average", "mmlu": "MMLU", "ceval": "C-Eval", "ifeval": "IFEval"}
    keys = list(zip(out["model"], sp["Quantization"]))
    for name, col in columns.items():
        vals = [float(acc.loc[k, col]) if k in acc.index else None for k in keys]
        out[name] = [round(v / 100, 6) if v is not None and name == "accuracy" else v for v in vals]
        out[name + "_source"] = [cite + ("; average of MMLU, C-Eval and IFEval" if name == "accuracy" else "")
                                 if v is not None else None for v in vals]
    out["speed_source"] = f"Qwen2 documentation, Speed Benchmark (batch 1, A100 80GB); {REPO} {SPEED_PAGE}"
    return out


def extra_fields() -> list[Field]:
    quality = [QUALITY_BY_NAME[n] for n in ("mmlu", "ceval", "ifeval")]
    return [BACKEND, QUANT, PROMPT_LEN, GEN_LEN, SETTING, *quality,
            *(source_field(n) for n in ("accuracy", "mmlu", "ceval", "ifeval")),
            Field("speed_source", "info", "text", "", None, "where throughput and memory come from")]


def build(src_dir: Path, out: Path = ROOT / "data" / "seed" / "qwen2-quantization.parquet") -> int:
    df = runs((Path(src_dir) / "quantization_benchmark.rst").read_text(), (Path(src_dir) / "speed_benchmark.rst").read_text())
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "seed.duckdb") as store:
        store.add_runs(df, source=SOURCE, kind="seed", extra_fields=extra_fields())
        return exchange.export_runs(store, out)


if __name__ == "__main__":
    import sys

    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets" / "quality" / "qwen2-quantization-docs" / "raw"
    print(f"{build(src)} runs written to data/seed/qwen2-quantization.parquet")

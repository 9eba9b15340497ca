"""The hf workload end to end, without downloads: tiny Llama- and Qwen-style models built from a
config with random weights, saved with save_pretrained, profiled through `--workload hf:FOLDER`
(exactly the path a hub checkpoint takes once fetched) into real DuckDB stores."""
import json

import pytest
import torch

from engine.cli import main
from engine.profiler import knobs, memory, quant
from engine.profiler.sweep import Options, Sweep
from engine.profiler.workloads import get_workload
from engine.store import Store

FAST = ["--repeats", "2", "--min-time", "0.05", "--warmup", "1", "--grid", "threads=1", "--grid", "prompt_len=8",
        "--grid", "gen_len=4"]


def runs(db):
    with Store(db) as s:
        return s.query(None, None, include_failed=True, order_by="run_id")


def test_llama_sweep_stores_llm_metrics_fidelity_and_prediction(tiny_llama, empty_db, capsys):
    rc = main(["profile", "--workload", f"hf:{tiny_llama}", "--grid", "precision=float32,bfloat16",
               "--grid", "quant=none,int8-dynamic", "--db", str(empty_db), *FAST])
    assert rc == 0
    df = runs(empty_db)
    assert len(df) == 4 and (df.status == "ok").all(), df.reason.tolist()
    assert (df.task == "text-generation").all() and (df.work_unit == "token").all()
    assert (df.model == str(tiny_llama.resolve())).all()
    for col in ("ttft_ms", "itl_ms", "itl_p90_ms", "throughput", "peak_memory_mb", "predicted_memory_mb",
                "perplexity", "agreement", "kl_div"):
        assert df[col].notna().all(), col
    assert (df.itl_p90_ms >= df.itl_ms).all() and (df.throughput > 0).all() and (df.perplexity > 1).all()
    assert "accuracy" not in df or df.accuracy.isna().all()  # no labels: fidelity and perplexity only
    ref = df[(df.precision == "float32") & (df.quant == "none")].iloc[0]
    assert ref.agreement == 1.0 and ref.kl_div < 1e-6  # the reference against itself
    q = df[(df.precision == "float32") & (df.quant == "int8-dynamic")].iloc[0]
    assert q.kl_div > ref.kl_div and 0.5 < q.agreement <= 1.0
    assert "torchao int8 dynamic" in q.quantization
    assert q.predicted_memory_mb < ref.predicted_memory_mb  # int8 weights are a quarter of float32's
    env = json.loads(ref.environment)
    assert env["memory_prediction"]["weights_mb"] > 0 and "zeus" in env["hardware"]["versions"]
    out = capsys.readouterr().out
    assert "4 of 4 configurations stored" in out and "perplexity" in out and "predicted_memory_mb" in out


def test_qwen_quantizations_and_what_this_machine_cannot_run(tiny_qwen, empty_db):
    rc = main(["profile", "--workload", f"hf:{tiny_qwen}", "--grid", "quant=int8-weight,int4-weight,fp8",
               "--grid", "batch_size=2", "--db", str(empty_db), *FAST])
    assert rc == 0
    df = runs(empty_db).set_index("quant")
    assert df.loc["int8-weight", "status"] == "ok" and df.loc["int8-weight", "agreement"] > 0.5
    if torch.cuda.is_available():
        return  # the rest is what a CPU-only machine says
    assert df.loc["int4-weight", "status"] == "ok" and "prototype CPU" in df.loc["int4-weight", "quantization"]
    assert df.loc["fp8", "status"] == "skipped"
    assert df.loc["fp8", "reason"].startswith("fp8 needs an NVIDIA GPU with compute capability 8.9+")


def test_failed_and_predicted_not_to_fit_configurations_are_stored_with_reasons(tiny_llama, empty_db):
    """Neither is fatal: a prompt past the context fails with its reason, a batch predicted not to
    fit the memory budget is skipped with its prediction, and the sweep goes on."""
    w = get_workload(f"hf:{tiny_llama}")
    configs = [knobs.expand({"prompt_len": [p], "gen_len": [4], "batch_size": [b], "threads": [1]}, w.defaults)[0]
               for p, b in ((1030, 1), (8, 1), (64, 64))]  # about 5, 0.5 and 19 MB predicted
    rows = Sweep(w, configs, db=empty_db, options=Options(repeats=1, min_time_s=0.0, warmup=0, memory_budget_mb=10),
                 log=lambda m: None).run()
    assert [r["status"] for r in rows] == ["failed", "ok", "skipped"]
    assert "exceeds the model's context of 1024" in rows[0]["reason"]
    assert rows[2]["reason"].startswith("predicted not to fit: about") and "memory budget" in rows[2]["reason"]
    assert rows[2]["predicted_memory_mb"] > 10 > rows[0]["predicted_memory_mb"] > rows[1]["predicted_memory_mb"]
    df = runs(empty_db)
    assert sorted(df.status) == ["failed", "ok", "skipped"] and df.predicted_memory_mb.notna().all()


@pytest.mark.parametrize("spec, says", [
    ("hf:/no/such/folder", "cannot load hf:/no/such/folder: no such folder"),
    ("hf:./tests", "has no config.json"),
])
def test_bad_model_is_one_clear_sentence(spec, says, empty_db, capsys):
    assert main(["profile", "--workload", spec, "--db", str(empty_db)]) == 1
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and not empty_db.exists()


def test_pickled_weights_and_non_causal_models_are_refused(tmp_path, tiny_llama):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_llama / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match="no .safetensors weights"):
        get_workload(f"hf:{pickled}")
    vision = tmp_path / "vision"
    vision.mkdir()
    (vision / "config.json").write_text(json.dumps({"model_type": "resnet"}))
    (vision / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="'resnet' model is not a causal language model"):
        get_workload(f"hf:{vision}")


def test_hub_id_that_cannot_be_fetched_here(monkeypatch, empty_db, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail at once, as without network
    assert main(["profile", "--workload", "hf:paretoscope-tests/no-such-model", "--db", str(empty_db)]) == 1
    assert capsys.readouterr().err.startswith("error: cannot load hf:paretoscope-tests/no-such-model: ")


def test_grid_keys_of_the_hf_workload(tiny_llama):
    w = get_workload(f"hf:{tiny_llama}")
    grid = knobs.parse_grid(["precision=bf16", "quant=int8,w8a8,int4", "prompt_len=16"], w.knobs, "hf", w.choices)
    assert grid == {"precision": ["bfloat16"], "quant": ["int8-weight", "int8-dynamic", "int4-weight"], "prompt_len": [16]}
    with pytest.raises(ValueError, match="quantize with the quant knob"):
        knobs.parse_grid(["precision=int8"], w.knobs, "hf", w.choices)
    with pytest.raises(ValueError, match="no 'seq_len' knob"):
        knobs.parse_grid(["seq_len=8"], w.knobs, "hf", w.choices)
    cfg = knobs.expand({"power_limit_w": [250]}, w.defaults)[0]
    assert knobs.power_unsupported(cfg, "cpu").startswith("power_limit_w needs an NVIDIA GPU")
    assert quant.unsupported("int8-dynamic", "float32", "cpu") is None


@pytest.mark.parametrize("q", ["none", "int8-weight", "int8-dynamic", "int4-weight"])
def test_predicted_weight_bytes_are_the_stored_bytes(tiny_qwen, q):
    """The prediction's weight term against the bytes torchao really holds (memory.tensor_bytes:
    each storage once, so the tied embedding once; a quantized weight as the tensors it is made of)."""
    w = get_workload(f"hf:{tiny_qwen}")
    model, _ = w.configure({"precision": "float32", "quant": q}, "cpu")
    assert memory.weight_bytes(w.shape, "float32", q, "cpu") == pytest.approx(memory.tensor_bytes(model), rel=0.01)


def test_tensor_bytes_counts_each_storage_once():
    embed, head = torch.nn.Embedding(100, 16), torch.nn.Linear(16, 100, bias=False)
    model = torch.nn.Sequential(embed, head)
    model.register_buffer("steps", torch.zeros(10, dtype=torch.int64))
    assert memory.tensor_bytes(model) == 2 * 100 * 16 * 4 + 10 * 8
    head.weight = embed.weight  # tied: one tensor
    assert memory.tensor_bytes(model) == 100 * 16 * 4 + 10 * 8

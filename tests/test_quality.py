"""Quality beside efficiency: the bundled published figures, the join, provenance, headline
metrics, and what lacks a figure (issue: quality is a first-class objective)."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from engine import quality, seed
from engine.store import Store
from tests.test_cli import engine

GPQA = {"task": ["gpqa"]}


def test_published_figures_reach_the_runs_with_their_source(seeded_db):
    with Store(seeded_db) as s:
        got = s.query(["model", "precision", "accuracy", "gpqa_diamond", "accuracy_source", "gpqa_diamond_source"],
                      {"task": ["gpqa"], "model": ["Qwen/Qwen3-8B"]})
        assert len(got) > 0
        assert (got.gpqa_diamond == 62.0).all() and got.accuracy.tolist() == pytest.approx([0.62] * len(got))
        assert got.accuracy_source.str.contains("Qwen3 Technical Report").all()
        assert got.accuracy_source.str.contains("Table 17").all()
        assert got.accuracy_source.str.contains("QwenLM/Qwen3@7a2f61ff").all()
        assert (got.accuracy_source == got.gpqa_diamond_source).all()
        # a rating is not an accuracy: lm-arena-chat runs carry arena_score, never accuracy
        chat = s.query(["arena_score", "accuracy", "arena_score_source"], {"task": ["lm-arena-chat"]})
        assert chat.accuracy.isna().all() and chat.arena_score.notna().sum() > 100
        assert chat.arena_score_source.dropna().str.contains("lmarena/arena-catalog").all()
        assert s.field("arena_score").unit == "Elo" and s.field("arena_score").quality


def test_variants_are_not_filled_by_copying(seeded_db):
    with Store(seeded_db) as s:
        def acc(model, task="gpqa", col="accuracy"):
            return s.query([col], {"task": [task], "model": [model]})[col]

        assert set(acc("Qwen/Qwen3-235B-A22B-Thinking-2507").round(6)) == {0.811}
        assert acc("Qwen/Qwen3-235B-A22B-Thinking-2507-FP8").isna().all()  # the FP8 card only repeats the BF16 table
        assert acc("Qwen/Qwen3-235B-A22B-Instruct-2507-FP8", "lm-arena-chat", "arena_score").isna().all()
        assert acc("meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8", "image-chat", "mmmu").isna().all()
        # the only precision-specific source: LMArena rates 405B bf16 and fp8 separately
        bf16 = acc("meta-llama/Llama-3.1-405B-Instruct", "lm-arena-chat", "arena_score")
        fp8 = acc("meta-llama/Llama-3.1-405B-Instruct-FP8", "lm-arena-chat", "arena_score")
        assert bf16.notna().all() and fp8.notna().all() and bf16.iloc[0] != fp8.iloc[0]


def test_every_bundled_figure_matches_runs_and_names_its_source():
    table = seed.read_quality(seed.SEED_DIR / seed.QUALITY_FILE)
    assert (table.reference.str.contains("@") | table.reference.str.contains("file id")).all()
    with Store(":memory:") as s:
        seed.load(s)
        assert s.count() == 2017
        with s.transaction():
            results = seed.load_quality(s)
        for r in results:
            assert r.unmatched.empty, f"{r.metric}: rows match no bundled run: {r.unmatched.to_dict('records')}"


def _two_precisions(path):
    runs = pd.DataFrame({"task": ["t"] * 3, "model": ["acme/m"] * 3, "precision": ["bfloat16", "int4", "bfloat16"],
                         "batch_size": [1, 1, 8], "energy_j": [1.0, 0.5, 0.8]})
    s = Store(path)
    s.add_runs(runs, source="x", kind="test")
    return s


def test_the_join_by_model_with_and_without_precision(empty_db):
    with _two_precisions(empty_db) as s:
        only_bf16 = quality.attach(s, pd.DataFrame({"model": ["ACME/m"], "precision": ["bf16"], "accuracy": [0.7],
                                                    "source": ["card A"]}))
        assert only_bf16.runs_updated == 2
        got = s.query(["precision", "accuracy", "accuracy_source"])
        assert got[got.precision == "int4"].accuracy.isna().all()
        assert (got[got.precision == "bfloat16"].accuracy == 0.7).all()
        assert (got[got.precision == "bfloat16"].accuracy_source == "card A").all()
        everyone = quality.attach(s, pd.DataFrame({"model": ["acme/m"], "mmlu": [55.0]}), "mmlu")
        assert everyone.runs_updated == 3 and not s.has_field("mmlu_source")
        assert s.field("mmlu").quality and s.field("mmlu").direction == "max"


def test_headline_quality_per_task(seeded_db):
    with Store(seeded_db) as s:
        assert quality.headline(s, GPQA) == "accuracy"
        assert quality.quality_metrics(s, GPQA) == ["accuracy", "gpqa_diamond", "gpqa_diamond_epoch"]
        assert quality.headline(s, {"task": ["lm-arena-chat"]}) == "arena_score"
        assert quality.headline(s, {"task": ["text-to-image"]}) == "geneval"
        assert quality.headline(s, {"task": ["text-to-video"]}) == "vbench_total"
        assert quality.headline(s, {"task": ["sourcegraph-fim"]}) == "swe_bench_verified"
        assert quality.headline(s, {"task": ["qwen2-quantization"]}) == "accuracy"
        s.execute("UPDATE runs SET accuracy = NULL, gpqa_diamond = NULL, gpqa_diamond_epoch = NULL")
        assert quality.headline(s, GPQA) is None


def test_runs_without_a_figure_are_counted_and_named(seeded_db):
    with Store(seeded_db) as s:
        gap = quality.lacking(s, "accuracy", GPQA)
        assert gap.runs == s.count(GPQA, include_failed=False) - s.count({**GPQA, "accuracy": {"min": 0}})
        assert set(gap.models) == {"Qwen/Qwen3-235B-A22B-Thinking-2507-FP8", "nvidia/NVIDIA-Nemotron-Nano-12B-v2"}
        assert gap.sentence().startswith(f"{gap.runs} runs lack accuracy (not measured): ")


@pytest.mark.parametrize("line, error", [
    ("gpqa,m,,accuracyy,1,%,,b,s,src,ref,lic", "'accuracyy' is not a quality metric"),
    ("gpqa,m,,gpqa_diamond,1,%,,b,s,,ref,lic", "needs its source, reference and licence"),
    ("gpqa,m,,gpqa_diamond,high,%,,b,s,src,ref,lic", "value 'high' is not a number"),
    ("gpqa,m,,gpqa_diamond,1,%,best,b,s,src,ref,lic", "headline must be empty or 'accuracy'"),
])
def test_a_bad_quality_file_is_refused_with_its_line(tmp_path, line, error):
    path = tmp_path / "quality.csv"
    path.write_text(",".join(seed.QUALITY_COLUMNS) + "\ngpqa,m,,gpqa_diamond,1,%,,b,s,src,ref,lic\n" + line + "\n")
    with pytest.raises(ValueError, match=f"quality.csv: line 3: .*{error}"):
        seed.read_quality(path)


def test_init_applies_a_changed_quality_file_and_keeps_deleted_batches_deleted(tmp_path):
    seed_dir = tmp_path / "seed"
    shutil.copytree(seed.SEED_DIR, seed_dir)
    with Store(tmp_path / "s.duckdb") as s:
        assert seed.load(s, seed_dir).runs_added == 2017
        qwen2 = s.imports().query("file_name == 'qwen2-quantization.parquet'").import_id.iloc[0]
        s.delete_import(qwen2)
        again = seed.load(s, seed_dir)
        assert again.runs_added == 0 and again.quality == [] and s.count() == 1858
        table = pd.read_csv(seed_dir / "quality.csv", dtype=str, keep_default_na=False)
        table.loc[table.model == "Qwen/Qwen3-8B", "value"] = "62.5"
        table.to_csv(seed_dir / "quality.csv", index=False)
        changed = seed.load(s, seed_dir)
        assert [r.metric for r in changed.quality][0] == "gpqa_diamond"
        assert s.query(["accuracy"], {"task": ["gpqa"], "model": ["Qwen/Qwen3-8B"]}).accuracy.iloc[0] == pytest.approx(0.625)


def test_done_when_front_and_recommendation_use_published_accuracy(seeded_db):
    res = engine("pareto", "--objective", "accuracy:max", "--objective", "energy_j:min", "--filter", "task=gpqa",
                 "--format", "json", env_db=seeded_db)
    assert res.returncode == 0, res.stderr
    front = json.loads(res.stdout)
    assert len({r["model"] for r in front}) >= 3
    for r in front:
        assert 0 < r["accuracy"] <= 1 and r["gpqa_diamond"] == pytest.approx(100 * r["accuracy"])
        assert r["accuracy_source"] and "@" in r["accuracy_source"]
    assert "lack accuracy or energy_j" in res.stderr
    rec = engine("recommend", "--objective", "energy_j:min", "--constraint", "accuracy>=0.7", "--filter", "task=gpqa",
                 "--format", "json", env_db=seeded_db)
    assert rec.returncode == 0, rec.stderr
    out = json.loads(rec.stdout)
    assert out["pick"]["accuracy"] >= 0.7 and out["pick"]["model"]
    assert "runs meet the constraints" in out["reason"] and "lack accuracy (not measured)" in out["reason"]
    assert out["limits"] == {"accuracy >= 0.7": 0.7}
    assert out["lacking"][0]["metric"] == "accuracy" and out["lacking"][0]["runs"] > 0
    listed = json.loads(engine("runs", "--filter", "task=gpqa", "--filter", "model=Qwen/Qwen3-32B", "--format", "json",
                               env_db=seeded_db).stdout)
    assert listed and all("Table 13" in r["accuracy_source"] for r in listed)

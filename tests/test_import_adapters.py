"""Every adapter on files shaped like the tools' own output, and the tabular mapping."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from engine import exchange
from engine.importers import tabular
from engine.importers.detect import detect, parse
from engine.ingest import import_files
from engine.store import Store

FX = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("path, fmt", [
    ("optimum/benchmark.json", "optimum-benchmark"), ("optimum_split/benchmark_report.json", "optimum-benchmark"),
    ("emissions.csv", "codecarbon"), ("lmeval_results.json", "lm-eval"), ("mlenergy_gpqa.json", "mlenergy"),
    ("sweep.csv", "csv"),
])
def test_detects_format_from_content(path, fmt):
    assert detect(FX / path) == fmt


def test_optimum_benchmark_text_generation():
    run = parse(FX / "optimum/benchmark.json").runs.iloc[0]
    assert run["model"] == "meta-llama/Llama-3.2-1B" and run["hardware"] == "NVIDIA A10G"
    assert run["precision"] == "float16" and run["batch_size"] == 4 and run["num_gpus"] == 1
    assert run["work_unit"] == "token" and run["throughput"] == pytest.approx(256.9)
    assert run["energy_j"] == pytest.approx(3.6e6 / 1235294.1)  # tokens/kWh -> J/token
    assert run["itl_ms"] == pytest.approx(15.55, abs=0.01)  # per_token p50, s -> ms
    assert run["peak_memory_mb"] == pytest.approx(2698.7)  # max_allocated over sections
    assert run["prefill_latency_ms"] == pytest.approx(21.05, abs=0.01)
    assert run["new_tokens"] == 64 and run["sequence_length"] == 256


def test_optimum_benchmark_report_with_config_beside(tmp_path):
    run = parse(FX / "optimum_split/benchmark_report.json").runs.iloc[0]
    assert run["model"] == "BAAI/bge-base-en-v1.5" and run["num_gpus"] == 0
    assert run["hardware"] == "AMD EPYC 7R13 Processor" and run["work_unit"] == "sample"
    assert run["latency_ms"] == pytest.approx(15.115, abs=1e-3) and run["peak_memory_mb"] == pytest.approx(955.1)
    lone = tmp_path / "benchmark_report.json"
    lone.write_text((FX / "optimum_split/benchmark_report.json").read_text())
    with pytest.raises(ValueError, match="without its benchmark_config.json"):
        parse(lone)


def test_codecarbon_keeps_last_cumulative_row_per_run_and_converts_units():
    runs = parse(FX / "emissions.csv").runs
    assert len(runs) == 2  # three rows, two run_ids
    first = runs.set_index("task").loc["llama-finetune"]
    assert first["energy_j"] == pytest.approx(0.044423 * 3.6e6)  # kWh -> J, last (cumulative) row
    assert first["emissions_g"] == pytest.approx(8.31) and first["duration_s"] == pytest.approx(600.31)
    assert first["hardware"] == "NVIDIA A10G" and first["work_unit"] == "run"


def test_codecarbon_short_row_is_refused_with_its_line(tmp_path):
    lines = (FX / "emissions.csv").read_text().splitlines()
    cut = lines[2].split(",")
    del cut[25]  # CodeCarbon drops an empty column when appending
    bad = tmp_path / "emissions.csv"
    bad.write_text("\n".join(lines[:2] + [",".join(cut)]) + "\n")
    with pytest.raises(ValueError, match=r"emissions.csv: line 3 has 31 fields"):
        parse(bad)


def test_lm_eval_tasks_metrics_and_model_args():
    runs = parse(FX / "lmeval_results.json").runs.set_index("task")
    assert set(runs.index) == {"hellaswag", "arc_easy", "gsm8k"}
    assert runs.loc["hellaswag", "accuracy"] == pytest.approx(0.4772)
    assert runs.loc["gsm8k", "accuracy"] == pytest.approx(0.0667)  # exact_match,strict-match
    assert runs.loc["hellaswag", "lm_acc_norm"] == pytest.approx(0.6381)
    assert pd.isna(runs.loc["arc_easy", "lm_acc_norm_stderr"])  # "N/A"
    assert (runs["model"] == "meta-llama/Llama-3.2-1B").all() and (runs["precision"] == "float16").all()
    assert (runs["batch_size"] == 16).all()


def test_mlenergy_file_imports():
    runs = parse(FX / "mlenergy_gpqa.json").runs
    assert len(runs) == 3 and (runs["task"] == "gpqa").all() and (runs["work_unit"] == "token").all()


def test_store_export_round_trip(seeded_db, tmp_path):
    out = tmp_path / "share.parquet"
    with Store(seeded_db) as s:
        n = exchange.export_runs(s, out, {"task": ["gpqa"]})
    assert detect(out) == "paretoscope"
    with Store(tmp_path / "other.duckdb") as s:
        [done] = import_files(s, [out])
        assert done.result.added == n and s.count() == n
        assert s.field("energy_per_request_j").unit == "J"


@pytest.mark.parametrize("header, target, factor", [
    ("energy", "energy_j", 1.0), ("energy_j", "energy_j", 1.0), ("Energy (J)", "energy_j", 1.0),
    ("energy_kwh", "energy_j", 3.6e6), ("Energy [Wh]", "energy_j", 3600.0), ("energy_kJ", "energy_j", 1000.0),
    ("latency_s", "latency_ms", 1000.0), ("latency_us", "latency_ms", 1e-3), ("Latency (ms)", "latency_ms", 1.0),
    ("p99_latency_s", "latency_p99_ms", 1000.0), ("memory_gb", "peak_memory_mb", 1000.0),
    ("peak_memory_gib", "peak_memory_mb", 1073.741824), ("memory_bytes", "peak_memory_mb", 1e-6),
    ("power_kw", "power_w", 1000.0), ("tokens_per_s", "throughput", 1.0),
])
def test_mapping_from_names_and_units(tmp_path, header, target, factor):
    f = tmp_path / "t.csv"
    f.write_text(f"model,{header}\nm,2\n")
    with tabular.read_table(f) as t:
        m = {c.source: c for c in tabular.propose_mapping(t)}[header]
        assert (m.target, m.kind) == (target, "canonical") and m.factor == pytest.approx(factor)
        runs = tabular.apply_mapping(t, list({c.source: c for c in tabular.propose_mapping(t)}.values())).runs
    assert runs[target].iloc[0] == pytest.approx(2 * factor)


def test_extra_columns_and_edited_mapping(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("model,gpu_temp,phase,energy\nm,61,warm,2\nn,70,cold,3\n")
    with tabular.read_table(f) as t:
        rows = [m.as_row() for m in tabular.propose_mapping(t)]
        by = {r["source"]: r for r in rows}
        assert by["gpu_temp"]["kind"] == "metric" and by["gpu_temp"]["direction"] is None
        assert by["phase"]["kind"] == "config"
        by["gpu_temp"].update(target="temp_c", direction="min")
        by["energy"].update(factor=0.5)
        parsed = tabular.apply_mapping(t, tabular.mapping_from_records(pd.DataFrame(rows)))
    assert list(parsed.runs["energy_j"]) == [1.0, 1.5] and list(parsed.runs["temp_c"]) == [61.0, 70.0]
    extra = {x.name: x for x in parsed.extra_fields}
    assert extra["temp_c"].direction == "min" and extra["phase"].role == "config"


@pytest.mark.parametrize("fmt", ["parquet", "json", "jsonl", "tsv"])
def test_other_table_formats(tmp_path, fmt):
    df = pd.DataFrame({"model": ["a", "b"], "latency_s": [0.1, 0.2], "energy_j": [1.0, 2.0]})
    p = tmp_path / f"t.{fmt}"
    {"parquet": lambda: df.to_parquet(p), "json": lambda: df.to_json(p, orient="records"),
     "jsonl": lambda: df.to_json(p, orient="records", lines=True),
     "tsv": lambda: df.to_csv(p, sep="\t", index=False)}[fmt]()
    runs = parse(p).runs
    assert list(runs["latency_ms"]) == [100.0, 200.0] and list(runs["model"]) == ["a", "b"]


def test_vllm_serving_result_through_the_cli(tmp_path):
    # The fixture is built from the field names vllm-project/vllm's benchmarks/benchmark_serving.py
    # writes with --save-result (setup keys, then its metrics dict); the numbers are made up.
    db = str(tmp_path / "v.duckdb")
    src = FX / "vllm_serving_result.json"
    assert detect(src) == "vllm-serving"
    r = subprocess.run([sys.executable, "-m", "engine", "import", str(src), "--db", db],
                       capture_output=True, text=True, cwd=FX.parent.parent)
    assert r.returncode == 0 and "1 run added" in r.stdout, r.stderr
    with Store(db, read_only=True) as store:
        run = store.query().iloc[0]
        assert store.field("ttft_ms").direction == "min"
    assert run["model"] == "meta-llama/Llama-3.1-8B-Instruct" and run["backend"] == "vllm"
    assert run["task"] == "text-generation" and run["work_unit"] == "token" and run["batch_size"] == 32
    assert run["throughput"] == pytest.approx(620.31)  # output tokens/s
    assert run["itl_ms"] == pytest.approx(41.2) and run["itl_p99_ms"] == pytest.approx(98.5)
    assert run["ttft_ms"] == pytest.approx(287.9) and run["tpot_ms"] == pytest.approx(43.6)
    assert run["num_prompts"] == 200 and pd.isna(run["request_rate"])  # "inf": all requests at once


def test_vllm_append_result_json_lines_is_one_run_per_line(tmp_path):
    """`vllm bench serve --append-result` adds each benchmark to the same file as a new line (JSON
    Lines, the file still named .json): a concurrency sweep is one import, one run per line; a
    broken line is refused by its number and nothing is stored."""
    one = json.loads((FX / "vllm_serving_result.json").read_text())
    lines = [json.dumps({**one, "max_concurrency": c, "output_throughput": t}) for c, t in ((1, 48.5), (8, 301.2), (32, 620.31))]
    src = tmp_path / "vllm-sweep.json"
    src.write_text("\n".join(lines))
    assert detect(src) == "vllm-serving"
    db = str(tmp_path / "v.duckdb")
    r = subprocess.run([sys.executable, "-m", "engine", "import", str(src), "--db", db],
                       capture_output=True, text=True, cwd=FX.parent.parent)
    assert r.returncode == 0 and "3 runs added" in r.stdout, r.stderr
    with Store(db, read_only=True) as store:
        runs = store.query().sort_values("batch_size")
    assert list(runs["batch_size"]) == [1, 8, 32] and list(runs["throughput"]) == pytest.approx([48.5, 301.2, 620.31])
    bad = tmp_path / "vllm-bad.jsonl"
    bad.write_text(lines[0] + "\n" + json.dumps({"model_id": "m", "note": "not a result"}) + "\n" + lines[2])
    r = subprocess.run([sys.executable, "-m", "engine", "import", str(bad), "--db", db],
                       capture_output=True, text=True, cwd=FX.parent.parent)
    assert r.returncode == 1 and "vllm-bad.jsonl: line 2 is not a vLLM benchmark_serving result" in r.stderr
    with Store(db, read_only=True) as store:
        assert len(store.query()) == 3


def test_csv_numbers_parsed_by_the_reader_read_as_their_text(tmp_path):
    """Columns all numbers in their first lines are parsed as numbers by DuckDB's CSV reader: the
    types, values and preview are still those of the file's text."""
    f = tmp_path / "t.csv"
    f.write_text("model,precision,batch_size,energy_j\nm,16,8,2.50\nn,8.0,16.0,1e3\n")
    with tabular.read_table(f) as t:
        assert t.types == {"model": "text", "precision": "integer", "batch_size": "integer", "energy_j": "double"}
        assert t.parsed_numbers == {"precision", "batch_size", "energy_j"}
        assert t.preview().to_dict("list") == {"model": ["m", "n"], "precision": ["16", "8.0"],
                                               "batch_size": ["8", "16.0"], "energy_j": ["2.50", "1e3"]}
        parsed = tabular.apply_mapping(t, tabular.propose_mapping(t))  # precision is text: as written
    runs = parsed.runs
    assert list(runs["precision"]) == ["16", "8.0"] and list(runs["batch_size"]) == [8, 16]
    assert list(runs["energy_j"]) == [2.5, 1000.0]
    assert parsed.checked.keys() == {"batch_size", "energy_j"} and parsed.file_hash


def test_a_csv_read_as_numbers_maps_in_arrow_to_what_the_sql_gives(tmp_path):
    """A CSV read with numbers parsed is mapped in Arrow (tabular._mapped_in_arrow), not by a
    SELECT: units converted, NaN and empty cells missing, whole numbers as integers, -0.0 kept,
    text as written; the same values, types and names as the SELECT's, which maps every other read."""
    f = tmp_path / "t.csv"
    f.write_text("model,bs,Energy (kWh),latency_s,note,power_w\n"
                 "m,8,1e-06,0.5,a,300\nn,16,nan,,b,-0.0\no,,2.5e-07,1.25,,NaN\n")
    with tabular.read_table(f) as t:
        assert t.data is not None and t.parsed_numbers == {"bs", "Energy (kWh)", "latency_s", "power_w"}
        mapping = tabular.propose_mapping(t)
        kept = [(m, tabular._target_field(t, m)) for m in mapping if m.kind != "skip"]
        tabular._check_values(t, kept)
        in_arrow, in_sql = tabular._mapped_in_arrow(t, kept), tabular._mapped_in_sql(t, kept)
        parsed = tabular.apply_mapping(t, mapping)
    assert in_arrow.schema == in_sql.schema and in_arrow.to_pylist() == in_sql.to_pylist()
    assert parsed.data.to_pylist() == in_sql.to_pylist()
    assert in_arrow.column_names == ["model", "batch_size", "energy_j", "latency_ms", "note", "power_w"]
    assert in_arrow.column("batch_size").to_pylist() == [8, 16, None]
    assert in_arrow.column("energy_j").to_pylist() == pytest.approx([3.6, None, 0.9])
    assert in_arrow.column("latency_ms").to_pylist() == [500.0, None, 1250.0]
    assert str(in_arrow.column("power_w")[1]) == "-0.0" and in_arrow.column("power_w")[2].as_py() is None
    assert in_arrow.column("note").to_pylist() == ["a", "b", None]


def test_the_sample_reads_lines_as_long_as_duckdb_allows(tmp_path):
    """The sample that picks the columns parsed as numbers reads in small buffers
    (tabular.SAMPLE_BUFFER); a line near DuckDB's longest (2,000,000 bytes) still fits one, so
    the numbers beside a long text are parsed as numbers (a 1 MiB buffer fails on it, and the file
    would be read all as text)."""
    f = tmp_path / "t.csv"
    f.write_text("model,note,energy_j\n" + "".join(f"m{i},{'x' * 1_999_000},{i + 0.5}\n" for i in range(3)))
    with tabular.read_table(f) as t:
        assert t.parsed_numbers == {"energy_j"} and t.types["energy_j"] == "double"
        assert t.rows == 3


def test_csv_column_that_turns_to_text_after_the_first_lines(tmp_path, monkeypatch):
    """A column of numbers in the lines the reader samples and text further on is read as text,
    and a value out of range past those lines is refused with its own line."""
    monkeypatch.setattr(tabular, "SAMPLE_LINES", 2)
    f = tmp_path / "t.csv"
    f.write_text("model,code,energy_j,later\nm,1,1,\nn,2,2,\no,x7,3,\np,4,-4,5\n")
    with tabular.read_table(f) as t:
        assert t.types == {"model": "text", "code": "text", "energy_j": "integer", "later": "integer"}
        assert t.parsed_numbers == frozenset()  # 'x7' sent the file back to the text read
        assert list(t.preview()["code"]) == ["1", "2", "x7", "4"]
    with Store(tmp_path / "s.duckdb") as s, pytest.raises(ValueError, match=r"t.csv: line 5, column 'energy_j': "
                                                                               r"energy_j cannot be negative \(-4\)"):
        import_files(s, [f])
    f.write_text("model,energy_j\nm,1\nn,2\no,3\np,-4.50\n")
    with Store(tmp_path / "s.duckdb") as s, pytest.raises(ValueError, match=r"line 5, column 'energy_j': "
                                                                               r"energy_j cannot be negative \(-4.50\)"):
        import_files(s, [f])  # read as numbers throughout: the message still quotes the file's text


def test_a_stores_integer_field_still_refuses_a_files_fractions(tmp_path):
    """The file's own checks are not repeated at the store, except where the store's field is
    stricter: an integer field there refuses a fraction that the file's double field allowed."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("model,shards\nm,2\n")
    b.write_text("model,shards\nn,2.5\n")
    with tabular.read_table(a) as t:
        mapping = tabular.propose_mapping(t)
    mapping[1].kind = "config"  # a whole-number configuration field
    with Store(tmp_path / "s.duckdb") as s:
        import_files(s, [a], mappings={str(a): mapping})
        assert s.field("shards").dtype == "integer"
        with pytest.raises(ValueError, match=r"b.csv: line 2, column 'shards': 2.5 is not a whole number"):
            import_files(s, [b])  # a metric there (double): its own check allowed 2.5

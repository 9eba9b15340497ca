"""Bad input gets one sentence naming the file (and row / column) and leaves the store as it was;
re-imports add nothing; a killed import leaves nothing behind; the quality join."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import quality
from engine.importers.tabular import MAX_UPLOAD_MB
from engine.ingest import import_files
from engine.store import Store
from tests.conftest import ROOT

FX = Path(__file__).parent / "fixtures"


def snapshot(db):
    with Store(db) as s:
        runs = s.con.execute("SELECT * FROM runs ORDER BY run_id").df()
        return runs.to_csv(), s.imports().to_csv(), s.con.execute("SELECT * FROM fields ORDER BY name").df().to_csv()


BAD = {
    "latin1.csv": (b"model,energy_j\nm1,1\ncaf\xe9,2\n", r"latin1.csv is not UTF-8 text \(byte 0xe9 on line 3\)"),
    "header_only.csv": (b"model,energy_j,latency_ms\n", r"header_only.csv has a header but no data rows"),
    "ragged.csv": (b"model,energy_j\nm1,1\nm2,2,extra\nm3,3\n", r"ragged.csv: line 3 has 3 fields but the header has 2"),
    "nonnum.csv": (b"model,energy_j\nm1,1\nm2,lots\n", r"nonnum.csv: line 3, column 'energy_j': 'lots' is not a number"),
    "negative.csv": (b"model,Energy (J)\nm1,1\nm2,-4\n", r"negative.csv: line 3, column 'Energy \(J\)': energy_j cannot be negative"),
    "neglat.csv": (b"model,latency_s\nm1,-0.1\n", r"neglat.csv: line 2, column 'latency_s': latency_ms cannot be negative"),
    "dupcols.csv": (b"model,energy_j,energy_j\nm1,1,2\n", r"dupcols.csv: duplicate column 'energy_j' \(columns 2 and 3\)"),
    "dupnorm.csv": (b"model,Energy (J),energy_j\nm1,1,2\n", r"dupnorm.csv: duplicate column: 'Energy \(J\)' and 'energy_j'"),
    "binary.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), r"binary.csv is a binary file"),
    "utf16.csv": ("model,energy_j\nm1,1\n".encode("utf-16"), r"utf16.csv is UTF-16 encoded"),
    "broken.json": (b'[{"model": "a", "energy_j": 1}, {"model": "b",', r"broken.json: malformed JSON"),
    "empty.csv": (b"", r"empty.csv is empty"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_one_sentence_store_unchanged(seeded_db, tmp_path, name):
    content, pattern = BAD[name]
    bad = tmp_path / name
    bad.write_bytes(content)
    before = snapshot(seeded_db)
    with Store(seeded_db) as s, pytest.raises(ValueError, match=pattern) as err:
        import_files(s, [FX / "sweep.csv", bad])  # the good file goes in only if every file is good
    msg = str(err.value)
    assert "\n" not in msg and msg.count(". ") <= 1 and name in msg
    assert snapshot(seeded_db) == before


def test_oversize_file_refused_before_reading(seeded_db, tmp_path):
    big = tmp_path / "huge.csv"
    with open(big, "wb") as fh:  # sparse: 500 MB on paper, nothing on disk
        fh.write(b"model,energy_j\n")
        fh.truncate(500 * 2**20)
    before = snapshot(seeded_db)
    with Store(seeded_db) as s, pytest.raises(ValueError, match=rf"huge.csv is 500 MB, over the {MAX_UPLOAD_MB} MB upload limit"):
        import_files(s, [big])
    small = tmp_path / "small.csv"
    small.write_text("model,energy_j\n" + "m,1\n" * 100)
    with Store(seeded_db) as s, pytest.raises(ValueError, match="over the 0 MB upload limit"):
        import_files(s, [small], max_bytes=100)
    assert snapshot(seeded_db) == before


def test_upload_limit_matches_streamlit_config():
    text = (ROOT / ".streamlit" / "config.toml").read_text()
    assert f"maxUploadSize = {MAX_UPLOAD_MB}" in text


def test_reimport_adds_nothing_and_batches_can_be_deleted(empty_db, tmp_path):
    with Store(empty_db) as s:
        [first] = import_files(s, [FX / "sweep.csv"])
        assert first.result.added == 4
        [again] = import_files(s, [FX / "sweep.csv"])
        assert again.result.already_imported and again.result.added == 0 and s.count() == 4
        copy = tmp_path / "renamed.csv"  # same rows in another file: stable run ids, no duplicates
        copy.write_text((FX / "sweep.csv").read_text() + "acme/new,int8,4,1e-07,0.1,0.2,1,300,A10G,,60\n")
        [third] = import_files(s, [copy])
        assert (third.result.added, third.result.duplicates) == (1, 4) and s.count() == 5
        assert set(s.imports()["file_name"]) == {"sweep.csv", "renamed.csv"}
        assert s.query(["source"], {"model": ["acme/new"]})["source"].iloc[0] == "renamed.csv"
        assert s.delete_import(first.result.import_id) == 4 and s.count() == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300),
                 st.lists(st.lists(st.sampled_from(["model", "energy_j", "1", "-2", "x", "", '"', ",", "é", "1e9"]),
                                   max_size=5).map(",".join), max_size=6).map("\n".join)))
def test_fuzz_csv_only_value_errors_and_never_half_writes(seeded_db, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.csv"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    with Store(seeded_db) as s:
        before = (s.count(), len(s.imports()), len(s.fields()))
        try:
            [done] = import_files(s, [path])
        except ValueError as e:
            assert str(e).strip() and "fuzz.csv" in str(e)
            assert (s.count(), len(s.imports()), len(s.fields())) == before
        else:  # same content as an earlier example: already imported, nothing added (and no empty batch)
            assert len(s.imports()) == before[1] + (1 if done.result.added else 0)
            assert s.count() == before[0] + done.result.added


def test_kill_mid_import_leaves_store_unchanged(empty_db, tmp_path):
    big = tmp_path / "big.csv"
    duckdb.execute(f"""COPY (SELECT 'model-' || (i % 97) AS model, i % 64 AS batch_size, random() AS energy_j,
        random() * 100 AS latency_ms, 'cfg' || i AS note FROM range(1500000) t(i)) TO '{big}' (HEADER)""")
    with Store(empty_db) as s:
        import_files(s, [FX / "sweep.csv"])
    before = snapshot(empty_db)
    code = f"""
import sys, time
from engine.ingest import read_files
from engine.store import Store
[(p, name, fmt, parsed)] = read_files([{str(big)!r}])
with Store({str(empty_db)!r}) as s:
    print("writing", flush=True)
    s.add_runs(parsed.runs, source=name, kind=fmt, extra_fields=parsed.extra_fields, file_name=name, file_hash="h")
    print("committed", flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    first = proc.stdout.readline().strip()
    if first != "writing":
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the child said {first!r} first (exit {proc.returncode}): {out[-300:]!r} {err[-300:]!r}")
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and "committed" not in proc.stdout.read()
    assert snapshot(empty_db) == before


def test_the_engine_draws_no_progress_bar_on_stdout(empty_db, tmp_path):
    """The cause of the flaky kill test above: DuckDB draws a progress bar on stdout once a query
    runs for 2 s, which a busy machine makes happen while parsing a big CSV; the child's first
    line was then '\\r  34% ▕███...', read as an empty line. It would also garble `runs --format
    csv > file`. Here every query counts as slow (progress_bar_time = 0), on each connection kind."""
    csv = tmp_path / "t.csv"
    csv.write_text("model,energy_j\nm,1\n")
    code = f"""
from engine.importers.tabular import read_table
from engine.store import Store
with Store({str(empty_db)!r}) as s, read_table({str(csv)!r}) as t:
    for con in (s.con, t.con):
        con.execute("SET progress_bar_time = 0")
        con.execute("SELECT sum(i) FROM range(200000000) t(i)").fetchall()
print("done")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "done\n"


def test_quality_join_by_model_and_precision(seeded_db):
    with Store(seeded_db) as s:
        import_files(s, [FX / "sweep.csv"])
        table = pd.DataFrame({"Model": ["acme/tiny-lm-1b", "ACME/tiny-lm-1b", "acme/tiny-lm-3b", "ghost/model"],
                              "precision": ["bf16", "int8", None, "int4"], "accuracy": [0.62, 0.61, 0.7, 0.5]})
        before = s.count()
        res = quality.attach(s, table)
        assert res.runs_updated == 3 and list(res.unmatched["model"]) == ["ghost/model"]
        got = s.query(["model", "precision", "accuracy"], {"model": ["acme/tiny-lm-1b", "acme/tiny-lm-3b"]})
        acc = {(r.model, r.precision): r.accuracy for r in got.itertuples()}
        assert acc[("acme/tiny-lm-1b", "bfloat16")] == 0.62 and acc[("acme/tiny-lm-1b", "int8")] == 0.61
        assert pd.isna(acc[("acme/tiny-lm-1b", "int4")]) and acc[("acme/tiny-lm-3b", "bfloat16")] == 0.7
        assert s.count() == before
        res = quality.attach(s, table.rename(columns={"accuracy": "mmlu"}), metric="mmlu")
        assert s.field("mmlu").direction == "max" and res.runs_updated == 3


def test_quality_join_conflicting_rows_changes_nothing(seeded_db):
    with Store(seeded_db) as s:
        import_files(s, [FX / "sweep.csv"])
    before = snapshot(seeded_db)
    table = pd.DataFrame({"model": ["acme/tiny-lm-1b", "acme/tiny-lm-1b"], "accuracy": [0.6, 0.7]})
    with Store(seeded_db) as s, pytest.raises(ValueError, match="row 2 gives a second, different accuracy"):
        quality.attach(s, table)
    assert snapshot(seeded_db) == before


def test_quality_from_lm_eval_file(seeded_db):
    with Store(seeded_db) as s:
        import_files(s, [FX / "optimum/benchmark.json"])
        with pytest.raises(ValueError, match="several tasks"):
            quality.read_table(FX / "lmeval_results.json")
        res = quality.attach(s, quality.read_table(FX / "lmeval_results.json", task="hellaswag"))
        run = s.query(["accuracy"], {"model": ["meta-llama/Llama-3.2-1B"]})
    assert res.runs_updated == 1 and run["accuracy"].iloc[0] == pytest.approx(0.4772)


def test_cli_import_list_delete(tmp_path):
    db = str(tmp_path / "cli.duckdb")
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "engine", "import", "--db", db, *args], capture_output=True,
                              text=True, cwd=ROOT)
    r = cli(str(FX / "sweep.csv"), str(FX / "emissions.csv"))
    assert r.returncode == 0 and "4 runs added" in r.stdout and "2 runs added" in r.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("model,energy_j\nm,oops\n")
    r = cli(str(bad))
    assert r.returncode == 1 and r.stderr.strip() == "error: bad.csv: line 2, column 'energy_j': 'oops' is not a number (it maps to energy_j)."
    r = cli("--list")
    assert "sweep.csv" in r.stdout and "emissions.csv" in r.stdout
    with Store(db) as s:
        iid = s.imports()["import_id"].iloc[0]
    r = cli("--delete", iid)
    assert r.returncode == 0 and "4 runs" in r.stdout
    r = cli(str(FX / "sweep.csv"), "--format", "csv", "--map", "temperature_c=gpu_temp_c", "--direction", "gpu_temp_c=min")
    assert r.returncode == 0, r.stderr
    with Store(db) as s:
        assert s.field("gpu_temp_c").direction == "min" and s.count() == 6

"""Bad input gets one sentence naming the file (and row / column) and leaves the store as it was;
re-imports add nothing; a killed import leaves nothing behind; the quality join."""
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import quality
from engine.derived import DERIVED
from engine.fields import KNOWN, limits, whole
from engine.importers.tabular import MAX_UPLOAD_MB
from engine.ingest import import_files
from engine.store import Store, StoreError
from tests.conftest import ROOT

FX = Path(__file__).parent / "fixtures"


def snapshot(db):
    with Store(db) as s:
        runs = s.execute("SELECT * FROM runs ORDER BY run_id").df()
        return runs.to_csv(), s.imports().to_csv(), s.execute("SELECT * FROM fields ORDER BY name").df().to_csv()


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


def _parquet(table: pa.Table, meta: dict | None = None) -> bytes:
    if meta:
        table = table.replace_schema_metadata(meta)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _export(registry: list, columns: dict) -> bytes:
    """A file that claims to be a Paretoscope export: a field registry in its metadata."""
    return _parquet(pa.table(columns), {"paretoscope_fields": json.dumps(registry), "paretoscope_format": "1"})


def _optimum(batch) -> bytes:
    doc = json.loads((FX / "optimum/benchmark.json").read_text())
    doc["config"]["scenario"]["input_shapes"]["batch_size"] = batch
    return json.dumps(doc).encode()


def _mlenergy(**change) -> bytes:
    doc = json.loads((FX / "mlenergy_gpqa.json").read_text())
    doc["configurations"][1].update(change)
    return json.dumps(doc).encode()


def _emissions(gpu_count: str) -> bytes:
    lines = (FX / "emissions.csv").read_text().splitlines()
    at = lines[0].split(",").index("gpu_count")
    rows = [",".join(r[:at] + [gpu_count] + r[at + 1:]) for r in (line.split(",") for line in lines[1:])]
    return "\n".join([lines[0]] + rows).encode() + b"\n"


# Numbers no field allows (issue 17, issue 18 item 11): one sentence naming file, row and column,
# through every format and importer; the content is bytes or a function that makes them.
BAD.update({
    "batch_1e20.csv": (b"model,batch_size,energy_j\na,1e20,0.5\n",
                       r"^batch_1e20.csv: line 2, column 'batch_size': 1e20 is not a whole number between 1 and 2\^31\.$"),
    "batch_frac.csv": (b"model,batch_size,energy_j\na,8,0.5\nb,1.5,0.5\n",
                       r"batch_frac.csv: line 3, column 'batch_size': 1.5 is not a whole number between 1 and 2\^31"),
    "gpus_2p63.csv": (b"model,num_gpus\na,9223372036854775808\n",
                      r"gpus_2p63.csv: line 2, column 'num_gpus': 9223372036854775808 is not a whole number between 0 and 2\^31"),
    "energy_inf.csv": (b"model,energy_j\na,1\nb,-inf\n", r"energy_inf.csv: line 3, column 'energy_j': -inf is not a number between 0 and 1e15"),
    "energy_1e308.csv": (b"model,Energy (J)\na,1e308\n",
                         r"energy_1e308.csv: line 2, column 'Energy \(J\)': 1e308 is not a number between 0 and 1e15 \(it maps to energy_j\)"),
    "kwh_scaled.csv": (b"model,Energy (kWh)\na,1e12\n",
                       r"kwh_scaled.csv: line 2, column 'Energy \(kWh\)': 1e12 × 3.6e\+06 = 3.6e\+18 is not a number between 0 and 1e15"),
    "accuracy_7.csv": (b"model,accuracy\na,0.5\nb,7\n", r"accuracy_7.csv: line 3, column 'accuracy': 7 is not a number between 0 and 1"),
    "accuracy_neg.tsv": (b"model\taccuracy\na\t-2\n", r"accuracy_neg.tsv: line 2, column 'accuracy': accuracy cannot be negative \(-2\)"),
    "thousands.csv": (b'model,batch_size\na,"1,024"\n',
                      r"thousands.csv: line 2, column 'batch_size': '1,024' is not a number \(it maps to batch_size; write it without thousands separators\)"),
    "extra_inf.csv": (b"model,my_score\na,1\nb,Infinity\n", r"extra_inf.csv: line 3, column 'my_score': Infinity is not a number between -1e100 and 1e100"),
    "threads_half.csv": (b"model,threads\na,0.5\n", r"threads_half.csv: line 2, column 'threads': 0.5 is not a whole number between 1 and 2\^31"),
    "mmlu_pct.jsonl": (b'{"model": "a", "mmlu": 250}\n', r"mmlu_pct.jsonl: record 1, column 'mmlu': 250 is not a number between 0 and 100"),
    "energy_1e400.json": (b'[{"model": "a", "energy_j": 1e400}]', r"energy_1e400.json: record 1, column 'energy_j': inf is not a number between 0 and 1e15"),
    "batch_int64.jsonl": (b'{"model": "a", "batch_size": 9223372036854775808}\n',
                          r"batch_int64.jsonl: record 1, column 'batch_size': 9223372036854775808 is not a whole number"),
    "batch_list.jsonl": (b'{"model": "a", "batch_size": [1, 2]}\n', r"batch_list.jsonl: record 1, column 'batch_size': '\[1, 2\]' is not a number"),
    "deep.json": (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, r"deep.json: JSON nested too deeply"),
    "deep.jsonl": (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000 + b"\n", r"deep.jsonl: JSON nested too deeply"),
    "deep_array.json": (b"[" * 100_000 + b"]" * 100_000, r"deep_array.json cannot be read as JSON"),
    "uint64.parquet": (lambda: _parquet(pa.table({"model": ["a"], "batch_size": pa.array([2**64 - 1], pa.uint64())})),
                       r"uint64.parquet: row 1, column 'batch_size': 18446744073709551615 is not a whole number between 1 and 2\^31"),
    "float16.parquet": (lambda: _parquet(pa.table({"model": ["a", "b"], "energy_j": pa.array([np.float16(1), np.float16("inf")])})),
                        r"float16.parquet: row 2, column 'energy_j': inf is not a number between 0 and 1e15"),
    "decimal.parquet": (lambda: _parquet(pa.table({"model": ["a"], "accuracy": pa.array([Decimal("7.50")], pa.decimal128(10, 2))})),
                        r"decimal.parquet: row 1, column 'accuracy': 7.50 is not a number between 0 and 1"),
    "contra_text.parquet": (lambda: _export([{"name": "model", "role": "config", "dtype": "text"},
                                             {"name": "batch_size", "role": "config", "dtype": "integer"}],
                                            {"model": ["m"], "batch_size": ["lots"]}),
                            r"contra_text.parquet: row 1, column 'batch_size': 'lots' is not a number"),
    "contra_frac.parquet": (lambda: _export([{"name": "model", "role": "config", "dtype": "text"},
                                             {"name": "shards", "role": "config", "dtype": "integer"}],
                                            {"model": ["m"], "shards": [2.5]}),
                            r"contra_frac.parquet: row 1, column 'shards': 2.5 is not a whole number between -2\^53 and 2\^53"),
    "contra_type.parquet": (lambda: _export([{"name": "model", "role": "config", "dtype": "blob"}], {"model": ["m"]}),
                            r"contra_type.parquet: the field list declares 'model' as config blob"),
    "optimum_1e20.json": (lambda: _optimum(1e20), r"optimum_1e20.json: row 1, column 'batch_size': 1e\+20 is not a whole number"),
    "mlenergy_frac.json": (lambda: _mlenergy(max_num_seqs=1.5),
                           r"mlenergy_frac.json: configuration 2, column 'batch_size': 1.5 is not a whole number between 1 and 2\^31"),
    "mlenergy_inf.json": (lambda: _mlenergy(energy_per_token_joules=1e400),
                          r"mlenergy_inf.json: configuration 2, column 'energy_j': inf is not a number between 0 and 1e15"),
    "emissions_frac.csv": (lambda: _emissions("1.5"), r"emissions_frac.csv: line \d+, column 'num_gpus': 1.5 is not a whole number"),
})


def bad_bytes(name: str) -> bytes:
    content = BAD[name][0]
    return content() if callable(content) else content


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_one_sentence_store_unchanged(seeded_db, tmp_path, name):
    pattern = BAD[name][1]
    bad = tmp_path / name
    bad.write_bytes(bad_bytes(name))
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
    with Store(seeded_db) as s, pytest.raises(ValueError, match="small.csv is 415 bytes, over the 100 bytes upload limit"):
        import_files(s, [small], max_bytes=100)
    assert snapshot(seeded_db) == before


@pytest.mark.parametrize("size, said", [
    (200 * 2**20 + 1, "209,715,201 bytes, over the 200 MB (209,715,200 bytes) upload limit"),
    (200 * 2**20 + 400_000, "200.4 MB, over the 200 MB upload limit"),
    (201 * 2**20, "201 MB, over the 200 MB upload limit"),
])
def test_a_file_just_over_the_limit_reads_larger_than_it(tmp_path, size, said):
    """Issue 18 item 12: a file a little over the limit was "200 MB, over the 200 MB limit"."""
    big = tmp_path / "edge.csv"
    with open(big, "wb") as fh:
        fh.write(b"model,energy_j\n")
        fh.truncate(size)
    with Store(tmp_path / "s.duckdb") as s, pytest.raises(ValueError) as err:
        import_files(s, [big])
    assert str(err.value) == f"edge.csv is {said}."


def test_the_bundled_data_fits_the_field_ranges(seeded_db):
    """The range rules of engine.fields against real measurements: every bundled number fits."""
    with Store(seeded_db) as s:
        numeric = [f for f in s.fields() if f.dtype in ("integer", "double") and f.name not in DERIVED]
        assert {"batch_size", "num_gpus", "energy_j", "accuracy", "gpqa_diamond"} <= {f.name for f in numeric}
        for f in numeric:
            lo, hi = limits(f)
            got = s.execute(f'SELECT min("{f.name}"), max("{f.name}"), count(*) FILTER (WHERE NOT isfinite("{f.name}")'
                                f' OR "{f.name}" <> floor("{f.name}")) FROM runs').fetchone()
            if got[0] is not None:
                assert lo <= got[0] and got[1] <= hi, (f.name, got, (lo, hi))
                assert not whole(f) or got[2] == 0, f.name


def test_non_ascii_headers_keep_their_letters(empty_db, tmp_path):
    """Issue 18 item 12: '温度' and '湿度' both became 'col' (a duplicate-column error) and
    'Énergie' lost its É."""
    path = tmp_path / "mesures.csv"
    path.write_text("model,Énergie (J),温度,湿度,Größe,latency (µs)\nm,1.5,60,40,7,1200\n", encoding="utf-8")
    with Store(empty_db) as s:
        [done] = import_files(s, [path])
        assert done.result.added == 1
        names = {f.name for f in s.fields()}
        assert {"énergie_j", "温度", "湿度", "größe"} <= names
        row = s.query(["énergie_j", "温度", "湿度", "größe", "latency_ms"]).iloc[0].to_dict()
    assert row == {"énergie_j": 1.5, "温度": 60, "湿度": 40, "größe": 7, "latency_ms": 1.2}  # µs converted to ms


def test_deleting_a_batch_removes_the_fields_only_it_brought(seeded_db):
    """Issue 18 item 12: a deleted batch's empty fields stayed in the pickers and messages."""
    with Store(seeded_db) as s:
        before = [f.name for f in s.fields()]
        [done] = import_files(s, [FX / "sweep.csv"])
        assert {"notes", "temperature_c"} <= {f.name for f in s.fields()}
        assert "temperature_c" in [f.name for f in s.metrics()]
        s.delete_import(done.result.import_id)
        assert [f.name for f in s.fields()] == before  # the pickers list s.metrics() / s.fields()
        assert "temperature_c" not in s.execute("SELECT * FROM runs LIMIT 0").df().columns
        with pytest.raises(StoreError, match="Unknown column 'temperature_c'") as err:
            s.field("temperature_c")
        assert "temperature_c" not in str(err.value).split("known:")[1]
        [again] = import_files(s, [FX / "sweep.csv"])  # and they come back with the file
        assert again.result.added == 4 and s.field("temperature_c").role == "metric"


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


def test_a_large_import_stored_in_parallel_keeps_every_run_and_the_session_order(empty_db, tmp_path):
    """Past a row group (122,880 rows) DuckDB stores the runs on several threads, in no set order
    (Store._unordered): every run is there once with its values, and the connection keeps
    insertion order for what it does next."""
    n = 300_000
    csv = tmp_path / "big.csv"
    duckdb.execute(f"""COPY (SELECT 'org/m-' || (i % 7) AS model, 1 + i % 64 AS batch_size, i * 0.5 AS energy_j
                       FROM range({n}) t(i)) TO '{csv}' (HEADER)""")
    with Store(empty_db) as s:
        [done] = import_files(s, [csv])
        assert done.result.added == n
        count, ids, total, models = s.con.execute(
            "SELECT count(*), count(DISTINCT run_id), sum(energy_j), count(DISTINCT model) FROM runs").fetchone()
        assert (count, ids, total, models) == (n, n, 0.5 * n * (n - 1) / 2, 7)
        assert s.con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (True,)


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


# Numeric extremes (issue 17) for every canonical and known numeric column, and an unknown one.
NUMERIC = [f.name for f in KNOWN.values() if f.dtype in ("integer", "double")] + ["my_metric"]
EXTREMES = ["inf", "-inf", "Infinity", "NaN", "nan", "1e308", "-1e308", "1e400", "-0", "-0.0", "0", "1", "7", "100",
            "0.5", "1.5", "2.5", "1,000", "1 000", "1e20", "-1", "2147483647", "2147483648", "2147483649",
            "9223372036854775807", "9223372036854775808", "18446744073709551616", "1e15", "1.0000001e15", "1e-300",
            "5e-324", "65504", "1e100", "1.1e100"]
VALUES = st.one_of(st.sampled_from(EXTREMES), st.floats().map(repr), st.integers(-2**70, 2**70).map(str))
ARROW = ["float64", "float32", "float16", "int64", "uint64", "decimal", "string"]


def _json_token(v: str) -> str:
    """A value as it would appear in JSON written by some tool: a number literal where it is one
    (1e400, 2^64 included), NaN / Infinity as Python's json writes them, else a string."""
    try:
        json.loads(v)
        return v
    except ValueError:
        f = float(v) if v.replace(",", "").replace(" ", "") == v else None
        if f is not None and math.isnan(f):
            return "NaN"
        if f is not None and math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return json.dumps(v)


def _arrow(values: list[str], kind: str) -> pa.Array:
    """A typed Parquet column of the values; a value the type cannot hold makes it a text column."""
    try:
        if kind == "string":
            raise ValueError
        if kind == "decimal":
            return pa.array([Decimal(v) for v in values], pa.decimal128(38, 6))
        if kind in ("int64", "uint64"):
            if not all(float(v).is_integer() for v in values):
                raise ValueError
            return pa.array([int(Decimal(v)) for v in values], getattr(pa, kind)())
        with np.errstate(over="ignore"):  # 1e308 as float16 is inf: part of the test
            return pa.array(np.array([float(v) for v in values], dtype=kind))
    except (ValueError, ArithmeticError, OverflowError, pa.ArrowException):
        return pa.array(values, pa.string())


def _write(path: Path, fmt: str, cols: list[str], rows: list[list[str]], kinds: list[str]) -> None:
    if fmt == "csv":
        quote = lambda v: f'"{v}"' if ("," in v or " " in v) else v  # noqa: E731
        path.write_text("\n".join([",".join(["model"] + cols)] + [",".join([f"m{i}"] + [quote(v) for v in r])
                                                                   for i, r in enumerate(rows)]) + "\n")
    elif fmt in ("json", "jsonl"):
        recs = ["{" + ", ".join([f'"model": "m{i}"'] + [f'"{c}": {_json_token(v)}' for c, v in zip(cols, r)]) + "}"
                for i, r in enumerate(rows)]
        path.write_text("[" + ", ".join(recs) + "]" if fmt == "json" else "\n".join(recs) + "\n")
    else:
        table = {"model": [f"m{i}" for i in range(len(rows))]}
        table.update({c: _arrow([r[j] for r in rows], kinds[j]) for j, c in enumerate(cols)})
        pq.write_table(pa.table(table), path)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(fmt=st.sampled_from(["csv", "json", "jsonl", "parquet"]),
       cols=st.lists(st.sampled_from(NUMERIC), min_size=1, max_size=4, unique=True),
       data=st.data())
def test_fuzz_numeric_extremes_every_format(seeded_db, tmp_path_factory, fmt, cols, data):
    """Whatever numbers a file holds, in any format: either one sentence naming the file and a store
    left as it was, or runs whose every stored number its field allows (finite, in range, whole
    where the field counts; NaN stored as missing). Never a traceback, a rounding or a clipping."""
    rows = data.draw(st.lists(st.lists(VALUES, min_size=len(cols), max_size=len(cols)), min_size=1, max_size=3))
    kinds = data.draw(st.lists(st.sampled_from(ARROW), min_size=len(cols), max_size=len(cols)))
    path = tmp_path_factory.mktemp("extremes") / f"extremes.{fmt}"
    _write(path, fmt, cols, rows, kinds)
    with Store(seeded_db) as s:
        before = (s.count(), len(s.imports()), len(s.fields()))
        try:
            [done] = import_files(s, [path])
        except ValueError as e:
            assert "\n" not in str(e) and f"extremes.{fmt}" in str(e)
            assert (s.count(), len(s.imports()), len(s.fields())) == before
            return
        if done.result.already_imported:
            return
        for c in cols:
            if not s.has_field(c):
                continue  # skipped: e.g. a column of missing values only
            f = s.field(c)
            stored = s.execute(f'SELECT "{c}" FROM runs WHERE import_id = ?', [done.result.import_id]).fetchall()
            lo, hi = limits(f)
            for (v,) in stored:
                if v is None or not isinstance(v, (int, float)):
                    continue
                assert math.isfinite(v) and lo <= v <= hi, (c, v, rows)
                assert not whole(f) or float(v).is_integer(), (c, v, rows)


def test_kill_mid_import_leaves_store_unchanged(empty_db, tmp_path):
    big = tmp_path / "big.csv"
    duckdb.execute(f"""COPY (SELECT 'model-' || (i % 97) AS model, 1 + i % 64 AS batch_size, random() AS energy_j,
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
        con.execute("SELECT sum(i) FROM range(5000000) t(i)").fetchall()  # drawn even this short at time 0
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


def test_cli_import_of_a_table_loads_no_pandas(tmp_path):
    """`python -m engine import` of a CSV goes file -> DuckDB -> Arrow -> store without pandas,
    whose import alone is about a second of the command's time (make bench import), nor
    pyarrow.compute (engine.arrow_kernels: 0.04-0.05 s of docstrings); the runs land with their
    content ids, units converted, and the same rows from another file add nothing."""
    db = tmp_path / "cli.duckdb"
    code = ("import sys; from engine.cli import main; rc = main(sys.argv[1:]); "
            "print('pandas loaded' if 'pandas' in sys.modules else 'no pandas'); "
            "print('pyarrow.compute loaded' if 'pyarrow.compute' in sys.modules else 'no pyarrow.compute'); sys.exit(rc)")
    run = lambda f: subprocess.run([sys.executable, "-c", code, "import", "--db", str(db), str(f)],  # noqa: E731
                                   capture_output=True, text=True, cwd=ROOT)
    r = run(FX / "sweep.csv")
    assert r.returncode == 0, r.stderr
    assert "4 runs added" in r.stdout and "no pandas" in r.stdout and "no pyarrow.compute" in r.stdout
    copy = tmp_path / "copy.csv"
    lines = (FX / "sweep.csv").read_text().splitlines()
    copy.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")  # the same runs, other order, other file
    r = run(copy)
    assert r.returncode == 0 and "nothing added; its 4 runs are already in the store" in r.stdout, r.stdout + r.stderr
    with Store(db) as s:
        assert s.count() == 4 and all(len(i) == 20 for (i,) in s.execute("SELECT run_id FROM runs").fetchall())

"""Data-safety defects of issue 18 (items 2-8), each on real DuckDB files and real processes:
multi-file imports all or nothing, one file committed twice at once, wide files, --db at a table
file, empty batches, quality attach (ambiguity, ranges, measured metrics, undo), a held lock."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import duckdb
import pandas as pd
import pytest

from engine import quality
from engine import store as store_mod
from engine.importers.tabular import MAX_COLUMNS
from engine.ingest import import_files
from engine.profiler import knobs
from engine.profiler.sweep import Options, Sweep
from engine.profiler.workloads import get_workload
from engine.store import Store, StoreBusy, StoreError
from tests.conftest import ROOT, shown, store_snapshot
from tests.test_import_adapters import FX

BAD_STATUS = "model,task,status\nm,t,bogus\n"


@pytest.fixture
def cli(capsys, monkeypatch):
    """The CLI's own entry point in this process (a subprocess costs a second of imports):
    cli(*args, db=PATH, env_db=PATH) -> (exit status, stdout, stderr)."""
    from engine.cli import main

    def run(*args, db=None, env_db=None):
        monkeypatch.delenv("PARETOSCOPE_DB", raising=False)
        if env_db:
            monkeypatch.setenv("PARETOSCOPE_DB", str(env_db))
        capsys.readouterr()
        rc = main([*map(str, args)] + (["--db", str(db)] if db else []))
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def one_sentence(msg: str) -> bool:
    return "\n" not in msg.strip() and "Traceback" not in msg and msg.strip().count(". ") == 0


# -- 2: a set of files goes in whole or not at all -------------------------------------------

def test_multi_file_import_is_all_or_nothing_engine_and_cli(seeded_db, tmp_path, cli):
    bad = tmp_path / "bad_status.csv"
    bad.write_text(BAD_STATUS)
    before = store_snapshot(seeded_db)
    with Store(seeded_db) as s, pytest.raises(ValueError) as err:
        import_files(s, [FX / "sweep.csv", bad])  # sweep.csv is fine; the store refuses the second file
    assert "bad_status.csv" in str(err.value) and "none of the 2 files was imported" in str(err.value)
    assert store_snapshot(seeded_db) == before
    rc, out, err = cli("import", FX / "sweep.csv", bad, db=seeded_db)
    assert rc == 1 and out == ""
    assert one_sentence(err) and "bad_status.csv" in err and "none of the 2 files" in err
    assert store_snapshot(seeded_db) == before


# -- 3: one file committed by two sessions at the same time goes in once ---------------------

def _runs_csv(path, n):
    duckdb.execute(f"""COPY (SELECT 'acme/m-' || (i % 7) AS model, 1 + i % 64 AS batch_size, i * 1e-3 AS energy_j,
        (i % 1000) * 0.1 AS latency_ms FROM range({n}) t(i)) TO '{path}' (HEADER)""")


def test_one_file_committed_by_two_sessions_at_once_is_imported_once(empty_db, tmp_path):
    """Two Streamlit sessions are two threads of one server, sharing one DuckDB instance: without
    a lock both checked the file hash, both inserted (2 of 3 tries doubled the runs)."""
    big = tmp_path / "runs.csv"
    _runs_csv(big, 100_000)
    Store(empty_db).close()
    for attempt in range(2):
        barrier, results, errors = threading.Barrier(2), [], []

        def session():
            try:
                with Store(empty_db) as s:
                    barrier.wait()
                    [done] = import_files(s, [big])
                    results.append(done.result)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=session) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not errors, errors
        added = sorted(r.added for r in results)
        assert added == ([0, 100_000] if attempt == 0 else [0, 0])
        assert sum(r.already_imported for r in results) == (1 if attempt == 0 else 2)
        with Store(empty_db) as s:
            n, distinct = s.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchall()[0]
            assert n == distinct == 100_000 and len(s.imports()) == 1


def test_two_processes_importing_one_file_import_it_once(empty_db, tmp_path):
    big = tmp_path / "runs.csv"
    _runs_csv(big, 20_000)
    Store(empty_db).close()
    cmd = [sys.executable, "-m", "engine", "import", str(big), "--db", str(empty_db)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    said = " ".join(o for o, _ in outs) + " ".join(e for _, e in outs)
    assert "20,000 runs added" in said
    for p, (out, err) in zip(procs, outs):  # the other waited its turn and found it done, or said busy
        assert p.returncode == 0 or ("is busy" in err and one_sentence(err)), err
    with Store(empty_db) as s:
        n, distinct = s.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchall()[0]
        assert n == distinct == 20_000 and len(s.imports()) == 1


def test_the_file_hash_is_unique_in_the_file_itself(empty_db):
    """Behind the lock, the store file refuses a second batch claiming a file's hash."""
    with Store(empty_db) as s:
        s.new_batch(source="a.csv", kind="csv", file_hash="h")
        with pytest.raises(duckdb.ConstraintException):
            s.new_batch(source="b.csv", kind="csv", file_hash="h")


# -- 4: a wide file -------------------------------------------------------------------------

def test_a_wide_csv_is_refused_in_one_sentence_before_it_is_read(seeded_db, tmp_path):
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join("1" for _ in range(100_000)) + "\n")
    before = store_snapshot(seeded_db)
    start = time.monotonic()
    with Store(seeded_db) as s, pytest.raises(ValueError) as err:
        import_files(s, [wide])
    assert time.monotonic() - start < 60  # was past 300 s and 23 GB
    assert str(err.value) == (f"wide.csv has 100,000 columns, over the limit of {MAX_COLUMNS:,} columns per file; keep "
                              f"the columns that describe runs and import that.")
    assert store_snapshot(seeded_db) == before


def _wide_csv(path, names, rows=3):
    path.write_text("model," + ",".join(names) + "\n"
                    + "\n".join(f"x{r}," + ",".join(str(r + i) for i in range(len(names))) for r in range(rows)) + "\n")
    return path


def test_new_columns_are_added_in_one_step_within_the_store_limit(empty_db, tmp_path, monkeypatch):
    """Each column was an ALTER plus a registry reload (1,000 columns: 26 s and 1.5 GB)."""
    n = 200
    wide = _wide_csv(tmp_path / "wide.csv", [f"m{i}" for i in range(n)])
    with Store(empty_db) as s:
        start = time.monotonic()
        [done] = import_files(s, [wide])
        assert time.monotonic() - start < 30
        assert done.result.added == 3
        assert {f"m{i}" for i in range(n)} <= {f.name for f in s.metrics()}
        assert s.query(["m199"], order_by="m199")["m199"].tolist() == [199.0, 200.0, 201.0]
        have = s.execute("SELECT count(*) FROM fields").fetchall()[0][0]
    monkeypatch.setattr(store_mod, "MAX_FIELDS", have + 30)  # each file within the per-file limit, the store full
    more = _wide_csv(tmp_path / "more.csv", [f"k{i}" for i in range(40)])
    before = store_snapshot(empty_db)
    with Store(empty_db) as s, pytest.raises(ValueError, match=rf"more.csv: 40 new columns would take the store past "
                                                                rf"its limit of {have + 30:,} columns \(it has {have}\)"):
        import_files(s, [more])
    assert store_snapshot(empty_db) == before


# -- 5: --db at a file that is not a store ----------------------------------------------------

@pytest.mark.parametrize("name", ["s.csv", "new.parquet"])
def test_db_at_a_table_file_is_refused_and_left_alone(tmp_path, name, cli):
    path = tmp_path / name
    if not name.startswith("new"):
        path.write_text("model,energy_j\nm,1\n")
    before = path.read_bytes() if path.exists() else None
    for how in ("flag", "env"):
        rc, out, err = cli("import", FX / "sweep.csv", **({"db": path} if how == "flag" else {"env_db": path}))
        assert rc == 1 and "runs added" not in out, out
        assert one_sentence(err) and f"{path} names a" in err and "not a store" in err
    assert (path.read_bytes() if path.exists() else None) == before


def test_a_file_that_is_not_duckdb_is_refused(tmp_path, cli):
    path = tmp_path / "notes.duckdb"
    path.write_text("model,energy_j\nm,1\n")
    rc, _, err = cli("runs", db=path)
    assert rc == 1 and one_sentence(err) and "is not a readable store" in err
    assert path.read_text() == "model,energy_j\nm,1\n"


# -- 6: an import that adds nothing records nothing ---------------------------------------------

def test_an_import_that_adds_nothing_records_no_batch(empty_db, tmp_path):
    copy = tmp_path / "copy.csv"
    copy.write_text((FX / "sweep.csv").read_text() + "\n")  # other bytes, same runs
    with Store(empty_db) as s:
        [first] = import_files(s, [FX / "sweep.csv"])
        [again] = import_files(s, [copy])
        assert (again.result.added, again.result.import_id) == (0, None)
        assert again.message() == "copy.csv: nothing added; its 4 runs are already in the store."
        assert len(s.imports()) == 1
        s.delete_import(first.result.import_id)
        [back] = import_files(s, [copy])  # was: "already imported ... nothing added", with the runs gone
        assert back.result.added == 4 and s.count() == 4


# -- 7: quality attach ------------------------------------------------------------------------

def _quality_store(db):
    s = Store(db)
    import_files(s, [FX / "sweep.csv"])
    return s


def test_quality_rows_that_disagree_on_one_run_are_refused(empty_db):
    with _quality_store(empty_db) as s:
        before = store_snapshot(empty_db, s)
        table = pd.DataFrame({"model": ["acme/tiny-lm-1b", "acme/tiny-lm-1b"], "precision": [None, "bf16"],
                              "accuracy": [0.5, 0.6]})
        for order in (table, table.iloc[::-1]):  # the result once depended on the order
            with pytest.raises(ValueError, match=r"rows [12] and [12] both give accuracy for run .* \(acme/tiny-lm-1b, "
                                                 r"bfloat16\), with different values"):
                quality.attach(s, order, name="q.csv")
        assert store_snapshot(empty_db, s) == before
        agree = pd.DataFrame({"model": ["acme/tiny-lm-1b", "acme/tiny-lm-1b"], "precision": [None, "bf16"],
                              "accuracy": [0.6, 0.6]})
        assert quality.attach(s, agree).runs_updated == 3  # the same figure twice is no ambiguity


@pytest.mark.parametrize("metric,value,pattern", [
    ("accuracy", 62.0, r"q.csv: row 1, column 'accuracy': 62 is not a number between 0 and 1 \(a percentage\? divide "
                       r"it by 100\)\.$"),
    ("accuracy", -2.0, r"column 'accuracy': accuracy cannot be negative \(-2\)"),
    ("mmlu", 150.0, r"column 'mmlu': 150 is not a number between 0 and 100"),
    ("my_score", float("-inf"), r"column 'my_score': -inf is not a number between"),
])
def test_quality_values_are_range_checked(empty_db, metric, value, pattern):
    with _quality_store(empty_db) as s:
        before = store_snapshot(empty_db, s)
        with pytest.raises(ValueError, match=pattern):
            quality.attach(s, pd.DataFrame({"model": ["acme/tiny-lm-1b"], metric: [value]}), metric, name="q.csv")
        assert store_snapshot(empty_db, s) == before


@pytest.mark.parametrize("metric", ["latency_ms", "energy_j", "throughput"])
def test_quality_attach_never_overwrites_a_measurement(empty_db, metric):
    with _quality_store(empty_db) as s:
        before = store_snapshot(empty_db, s)
        with pytest.raises(StoreError, match=f"'{metric}' is a measured metric, not a quality score"):
            quality.attach(s, pd.DataFrame({"model": ["acme/tiny-lm-1b"], metric: [1.0]}), metric)
        assert store_snapshot(empty_db, s) == before


def test_a_quality_attach_is_recorded_and_undone(empty_db):
    with _quality_store(empty_db) as s:
        before = store_snapshot(empty_db, s)
        first = quality.attach(s, pd.DataFrame({"model": ["acme/tiny-lm-1b"], "accuracy": [0.6], "source": ["card"]}),
                               name="a.csv")
        after_first = store_snapshot(empty_db, s)
        second = quality.attach(s, pd.DataFrame({"model": ["acme/tiny-lm-1b"], "precision": ["int8"],
                                                 "accuracy": [0.55]}), name="b.csv")
        batches = s.imports().set_index("import_id")
        assert batches.loc[first.batch, "kind"] == "quality" and batches.loc[first.batch, "rows_added"] == 3
        with pytest.raises(StoreError, match=f"later quality batch {second.batch} also set accuracy"):
            s.delete_import(first.batch)  # undoing out of order would bring back stale values
        assert s.delete_import(second.batch) == 1
        assert store_snapshot(empty_db, s)[0] == after_first[0]  # the runs are exactly as after the first
        assert s.delete_import(first.batch) == 3
        assert store_snapshot(empty_db, s) == before  # as before, accuracy_source gone with the batch that brought it


def test_a_quality_table_that_matches_no_run_records_nothing(empty_db):
    with _quality_store(empty_db) as s:
        before = store_snapshot(empty_db, s)
        res = quality.attach(s, pd.DataFrame({"model": ["nobody/none"], "my_score": [0.5]}), "my_score")
        assert (res.runs_updated, res.batch, len(res.unmatched)) == (0, None, 1)
        assert store_snapshot(empty_db, s) == before  # no empty batch, no empty my_score column


def test_quality_attach_and_undo_from_the_cli(empty_db, tmp_path, cli):
    with Store(empty_db) as s:
        import_files(s, [FX / "sweep.csv"])
    q = tmp_path / "q.csv"
    q.write_text("model,accuracy\nacme/tiny-lm-1b,0.61\n")
    rc, out, err = cli("import", "--quality", q, db=empty_db)
    assert rc == 0 and "accuracy: 3 runs updated" in out, err
    batch = out.split("--delete ")[1].split()[0]
    rc, out, _ = cli("import", "--delete", batch, db=empty_db)
    assert rc == 0 and out.strip() == f"Undid quality batch {batch}: the earlier values are back on 3 runs."
    with Store(empty_db) as s:
        assert s.query(["accuracy"]).accuracy.isna().all()
    q.write_text("model,latency_ms\nacme/tiny-lm-1b,1\n")
    rc, _, err = cli("import", "--quality", q, "--metric", "latency_ms", db=empty_db)
    assert rc == 1 and one_sentence(err) and "measured metric" in err


# -- 8: a held lock -----------------------------------------------------------------------------

def hold(db, seconds: float, release=None) -> subprocess.Popen:
    """Another process that keeps the store open (as a long import would) for ``seconds``, or
    until the file ``release`` appears."""
    code = (f"import os, time; from engine.store import Store\ns = Store({str(db)!r})\nprint('held', flush=True)\n"
            f"end = time.monotonic() + {seconds}\n"
            f"while time.monotonic() < end and not ({str(release)!r} != 'None' and os.path.exists({str(release)!r})):\n"
            f"    time.sleep(0.05)\ns.close()")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_held_store_is_waited_for_with_progress_then_one_sentence(seeded_db):
    holder = hold(seeded_db, 120)
    try:
        waits = []
        start = time.monotonic()
        with pytest.raises(StoreBusy) as err:
            Store(seeded_db, timeout_s=3, on_wait=lambda s, who: waits.append((s, who)))
        took = time.monotonic() - start
        assert 3 <= took < 30
        msg = str(err.value)
        assert one_sentence(msg) and str(seeded_db) in msg and f"PID {holder.pid}" in msg and "busy" in msg
        assert len(waits) >= 2 and all(f"PID {holder.pid}" in who for _, who in waits)
        assert [round(s) for s, _ in waits] == sorted(round(s) for s, _ in waits)
    finally:
        holder.kill()
        holder.wait()
    with Store(seeded_db, timeout_s=30) as s:
        assert s.count() == 2017


def test_pages_wait_for_a_held_store_then_say_it_is_busy_in_one_sentence(seeded_db, monkeypatch):
    """Explore and Import showed a traceback after 63 s; now they wait WAIT_S (saying so), then one sentence."""
    from streamlit.testing.v1 import AppTest

    import ui.state

    monkeypatch.setattr(ui.state, "WAIT_S", 2.0)
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    holder = hold(seeded_db, 300)
    try:
        start = time.monotonic()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        assert time.monotonic() - start >= 2
        for page in (None, "app_pages/import_runs.py"):  # Explore, then Import
            if page:
                at.switch_page(page).run()
            assert not at.exception, page
            [err] = [shown(e.value) for e in at.error]
            assert err == (f"The store {seeded_db} is busy: another process (PID {holder.pid}, "
                           f"{os.path.basename(os.path.realpath(sys.executable))}) has held it for over 2 s; try again "
                           f"when it has finished."), err
    finally:
        holder.kill()
        holder.wait()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()  # and works once it is free
    assert not at.exception and not at.error and at.title[0].value == "Explore"


def test_a_sweep_keeps_its_measurement_and_retries_a_busy_store(empty_db):
    """A sweep used to exit at the next configuration when the store stayed busy, losing the run it
    had just measured; now it keeps it and tries the write again until the store is free."""
    Store(empty_db).close()
    w = get_workload("digits-mlp")
    log, release = [], empty_db.with_suffix(".release")

    def note(line):  # the other process lets go once the sweep has waited through two attempts
        log.append(line)
        if sum("store busy" in x for x in log) >= 2:
            release.touch()

    sweep = Sweep(w, knobs.expand({"batch_size": [1]}, w.defaults), db=empty_db,
                  options=Options(repeats=2, min_time_s=0.05, warmup=0), log=note)
    sweep.write_wait_s = 1.0
    holder = hold(empty_db, 300, release)
    try:
        rows = sweep.run()
    finally:
        release.touch()
        holder.wait(60)
    assert len(rows) == 1 and rows[0]["status"] == "ok"
    assert sum("store busy" in line and "result kept, trying again" in line for line in log) >= 2, log
    with Store(empty_db) as s:
        assert s.count(include_failed=True) == 1 and s.imports().rows_added.tolist() == [1]

"""Faults that must lose nothing (issue 15), on real DuckDB files and real processes:

- kill -9 during an import, a sweep's write of a run, a batch delete and a quality attach: the
  store afterwards holds exactly what it held before, or exactly the finished operation;
- the disk filling up during an import (a small tmpfs; RLIMIT_FSIZE where mounting is refused);
- a store file truncated or overwritten with garbage, and one from a newer schema: the CLI says
  so in one sentence and leaves the file byte for byte as it was (and the app, in AppTest);
- two writers at once: both succeed in turn, or the second says the store is busy.

Each kill is aimed at the first byte the operation puts on disk (a big insert writes its blocks
straight into the store file before the commit; a small change goes to the write-ahead log as it
commits), and for an import also right after the commit returned (before or inside the checkpoint
that closing the store runs).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from engine.cli import main
from engine.store import SCHEMA_VERSION, Store
from tests.conftest import ROOT, shown
from tests.test_import_adapters import FX


def content(db) -> tuple[str, ...]:
    """What a store holds, without the random batch ids and clock times (so a finished operation
    can be compared with the same operation done without a fault)."""
    with Store(db) as s:
        runs = s.execute("SELECT * EXCLUDE (import_id, imported_at) FROM runs ORDER BY ALL").df()
        batches = s.execute("SELECT source, kind, file_name, file_hash, rows_added, note FROM imports ORDER BY ALL").df()
        fields = s.execute("SELECT * FROM fields ORDER BY ALL").df()
        undo = s.execute("SELECT * EXCLUDE (import_id) FROM quality_changes ORDER BY ALL").df()
        return runs.to_csv(), batches.to_csv(), fields.to_csv(), undo.to_csv()


def child(code: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def kill_when(proc: subprocess.Popen, db: Path, trigger: str, timeout_s: float = 300) -> str:
    """SIGKILL ``proc`` when ``trigger`` happens: 'write' (the first byte the operation puts on disk:
    the store file changes, as a big insert writes its blocks straight into it, or the write-ahead
    log appears, as a commit starts) or 'committed' (the child printed it after the commit, before
    closing the store). Returns what happened first ('killed' or 'finished')."""
    if trigger == "committed":
        while (line := proc.stdout.readline()).strip() != "committed":
            assert line, proc.stderr.read() if proc.poll() is not None else ""
    else:
        wal, deadline = Path(str(db) + ".wal"), time.monotonic() + timeout_s
        while (line := proc.stdout.readline()).strip() != "go":  # the store is open: its file as it starts
            assert line, proc.stderr.read() if proc.poll() is not None else ""
        start = db.stat()
        while not wal.exists() and (db.stat().st_size, db.stat().st_mtime_ns) == (start.st_size, start.st_mtime_ns):
            if proc.poll() is not None:
                return "finished"
            assert time.monotonic() < deadline, "the write never started"
            time.sleep(0.0005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return "killed" if proc.returncode == -signal.SIGKILL else "finished"


_FINISHED: dict[str, tuple[str, ...]] = {}


def finished_content(op: str, db: Path, tmp_path: Path, code_for) -> tuple[str, ...]:
    """content() after the same operation ran to its end on a copy of the store (once per op:
    every test starts from the same seeded store)."""
    if op not in _FINISHED:
        ref = tmp_path / "reference.duckdb"
        shutil.copy(db, ref)
        p = child(code_for(ref))
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err
        _FINISHED[op] = content(ref)
    return _FINISHED[op]


OPERATIONS = {
    "import": lambda db, data: f"""
from engine.ingest import add_files, read_files
from engine.store import Store
files = read_files([{str(data)!r}])
with Store({str(db)!r}) as s:
    print("go", flush=True)
    add_files(s, files)
    print("committed", flush=True)
""",
    "delete": lambda db, data: f"""
from engine.store import Store
with Store({str(db)!r}) as s:
    seed = s.imports().query("source == 'mlenergy-v3'").import_id.iloc[0]
    print("go", flush=True)
    s.delete_import(seed)
    print("committed", flush=True)
""",
    "quality": lambda db, data: f"""
from engine import quality
from engine.store import Store
table = quality.read_table({str(data)!r})
with Store({str(db)!r}) as s:
    print("go", flush=True)
    quality.attach(s, table, "my_score", name="scores.csv")
    print("committed", flush=True)
""",
}


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "big.csv"
    duckdb.execute(f"""COPY (SELECT 'model-' || (i % 97) AS model, 1 + i % 64 AS batch_size, i * 1e-6 AS energy_j,
        (i % 1000) * 0.1 AS latency_ms, 'cfg' || i AS note FROM range(50000) t(i)) TO '{path}' (HEADER)""")
    return path


def _data_for(op: str, db: Path, tmp_path: Path, big_csv: Path) -> Path:
    if op == "import":
        return big_csv
    if op == "quality":  # a score for every model of the store: an attach over all 2,017 runs
        with Store(db) as s:
            models = s.distinct("model")
        scores = tmp_path / "scores.csv"
        scores.write_text("model,my_score\n" + "".join(f"{m},{i / 10}\n" for i, m in enumerate(models)))
        return scores
    return tmp_path / "unused"


@pytest.mark.parametrize("op,trigger", [("import", "write"), ("import", "committed"), ("delete", "write"),
                                        ("quality", "write")])
def test_kill_9_leaves_the_store_as_before_or_finished(seeded_db, tmp_path, big_csv, op, trigger):
    data = _data_for(op, seeded_db, tmp_path, big_csv)
    before = content(seeded_db)
    done = finished_content(op, seeded_db, tmp_path, lambda db: OPERATIONS[op](db, data))
    assert done != before
    proc = child(OPERATIONS[op](seeded_db, data))
    what = kill_when(proc, seeded_db, trigger)
    after = content(seeded_db)  # opening replays whatever the log holds
    assert after in (before, done), f"{op} killed at {trigger} ({what}) left a half-written store"
    if trigger == "committed":
        assert after == done, f"{op} committed, then killed: the commit was lost"
    print(f"{op} / kill at {trigger}: {what}; the store holds {'the state before' if after == before else 'the finished operation'}")


# -- the disk fills up ---------------------------------------------------------------------------

def _mount_small_disk(where: Path, mb: int) -> bool:
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


def test_a_full_disk_during_an_import_changes_nothing_and_says_so(seeded_db, tmp_path, big_csv):
    disk = tmp_path / "small-disk"
    mounted = _mount_small_disk(disk, 6)  # the 2.9 MB store fits, a 50,000-row batch (4 MB more) does not
    try:
        db = (disk if mounted else tmp_path) / "runs.duckdb"
        shutil.copy(seeded_db, db)
        before = content(db)
        env = dict(os.environ)
        env.pop("PARETOSCOPE_DB", None)
        limit = [] if mounted else [f"import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                                    f"resource.setrlimit(resource.RLIMIT_FSIZE, ({db.stat().st_size + 2**20}, "
                                    f"resource.RLIM_INFINITY))"]
        code = "\n".join(limit + ["import sys", "from engine.cli import main",
                                  f"sys.exit(main(['import', {str(big_csv)!r}, '--db', {str(db)!r}]))"])
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=900)
        assert r.returncode == 1, (r.stdout, r.stderr)
        err = r.stderr.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
        assert f"no space left for the store {db}" in err.lower() and "nothing was written" in err
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # space again
        assert content(db) == before
        with Store(db) as s:  # and it still takes an import
            s.add_runs(__import__("pandas").DataFrame({"model": ["after"], "energy_j": [1.0]}), source="t", kind="t")
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    print("disk full simulated with", "a 6 MB tmpfs" if mounted else "RLIMIT_FSIZE")


# -- damaged and newer files --------------------------------------------------------------------

def _damage(db: Path, how: str) -> None:
    data = bytearray(db.read_bytes())
    if how == "truncated-half":
        db.write_bytes(data[: len(data) // 2])
    elif how == "truncated-tail":
        db.write_bytes(data[: len(data) - 30_000])
    elif how == "garbage":
        db.write_bytes(os.urandom(len(data)))
    elif how == "garbage-inside":  # header intact, blocks overwritten
        data[300_000:1_200_000] = os.urandom(900_000)
        db.write_bytes(data)
    elif how == "empty":
        db.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated-tail", "garbage", "garbage-inside"])
def test_a_damaged_store_is_named_with_how_to_rebuild_and_left_alone(seeded_db, how, capsys):
    _damage(seeded_db, how)
    raw = seeded_db.read_bytes()
    for args in (["runs", "--format", "csv"], ["import", str(FX / "sweep.csv")], ["init"],
                 ["pareto", "--objective", "energy_j:min", "--objective", "throughput:max", "--filter", "task=gpqa"]):
        assert main([*args, "--db", str(seeded_db)]) == 1, args  # the CLI's own entry point, in this process
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
        assert ("is damaged" in err or "is not a readable store" in err) and "python -m engine init --db" in err, err
        assert seeded_db.read_bytes() == raw  # never overwritten
        assert not Path(str(seeded_db) + ".wal").exists()


def test_a_store_from_a_newer_paretoscope_is_refused_not_migrated_back(seeded_db, capsys):
    with Store(seeded_db) as s:
        s.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    raw = seeded_db.read_bytes()
    for args in (["runs"], ["import", str(FX / "sweep.csv")], ["init"]):
        assert main([*args, "--db", str(seeded_db)]) == 1
        assert capsys.readouterr().err.strip() == (
            f"error: {seeded_db} was written by a newer Paretoscope (schema version {SCHEMA_VERSION + 1}; this one "
            f"knows up to {SCHEMA_VERSION}); open it with that version (the file is left as it is).")
    assert seeded_db.read_bytes() == raw


def test_a_version_1_store_is_migrated_forward_keeping_its_runs_and_batches(seeded_db, monkeypatch):
    with Store(seeded_db) as s:  # make it what version 1 wrote: no quality flag, no v3 tables
        s.execute("DROP TABLE quality_changes")
        s.execute("DROP INDEX imports_file_hash")
        s.execute("ALTER TABLE fields DROP COLUMN quality")
        s.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
        n, batches = s.count(), len(s.imports())
    with Store(seeded_db) as s:
        assert s.schema_version() == SCHEMA_VERSION and s.count() == n and len(s.imports()) == batches
        assert s.field("accuracy").quality
        [seed] = s.imports().query("source == 'mlenergy-v3'").import_id
        with pytest.raises(duckdb.ConstraintException):  # the v3 guard is in place
            s.new_batch(source="x", kind="csv", file_hash=s.imports().set_index("import_id").loc[seed, "file_hash"])


# -- two writers at once ------------------------------------------------------------------------

def test_a_sweep_meets_a_batch_delete_then_dies_at_its_second_write(seeded_db, capsys):
    """Two writers, then a kill: a batch delete starts as the sweep measures its first configuration
    (whose write then waits for it, or it for the write); the sweep is then killed -9 the moment its
    second write starts (the log file appears). Both writers finish in turn (or the delete says the
    store is busy), and the store holds whole runs and a sweep batch whose count matches them."""
    with Store(seeded_db) as s:
        seed = s.imports().query("source == 'mlenergy-v3'").import_id.iloc[0]
    sweep = subprocess.Popen([sys.executable, "-m", "engine", "profile", "--workload", "digits-mlp", "--grid",
                              "batch_size=1,2", "--repeats", "2", "--min-time", "0.05", "--warmup", "0",
                              "--db", str(seeded_db)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    lines = []
    while not (line := sweep.stdout.readline()).startswith("[1/2]"):
        assert line, "".join(lines)
        lines.append(line)
    start = time.monotonic()
    rc = main(["import", "--delete", seed, "--db", str(seeded_db)])
    took, err = time.monotonic() - start, capsys.readouterr().err
    assert rc == 0 or ("is busy" in err and took < 90), err
    wal, writes, inside = Path(str(seeded_db) + ".wal"), 0, False
    deadline = time.monotonic() + 300
    while sweep.poll() is None and time.monotonic() < deadline:
        exists = wal.exists()
        if exists and not inside:
            writes += 1
            if writes == 2:
                os.kill(sweep.pid, signal.SIGKILL)
                break
        inside = exists
        time.sleep(0.0005)
    sweep.wait()
    with Store(seeded_db) as s:
        assert s.count({"source": ["mlenergy-v3"]}) == (0 if rc == 0 else 1858)
        runs = s.query(None, {"task": ["digits-mlp"]}, include_failed=True)
        batch = s.imports().query("kind == 'profile'")
    assert 1 <= len(runs) <= 2 and (runs.status == "ok").all()
    assert runs[["latency_ms", "throughput", "accuracy", "environment"]].notna().all().all()
    assert len(batch) == 1 and batch.rows_added.iloc[0] == len(runs)


@pytest.mark.parametrize("how", ["truncated-tail", "garbage-inside"])
def test_the_app_names_a_damaged_store_and_how_to_rebuild_it(seeded_db, monkeypatch, how):
    from streamlit.testing.v1 import AppTest

    _damage(seeded_db, how)
    raw = seeded_db.read_bytes()
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    for page in (None, "app_pages/import_runs.py", "app_pages/profile.py", "app_pages/recommend.py"):
        if page:
            at.switch_page(page).run()
        assert not at.exception, page
        said = [shown(e.value) for e in at.error]
        assert any(f"The store {seeded_db} is damaged" in e and f"python -m engine init --db {seeded_db}" in e
                   for e in said), (page, said)
    assert seeded_db.read_bytes() == raw and not Path(str(seeded_db) + ".wal").exists()

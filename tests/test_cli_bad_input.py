"""No path from an upload or a CLI argument ends in a traceback (issue 17, issue 18 items 10-12):
the real `python -m engine` on every bad-input fixture and on bad arguments says one sentence on
stderr (at most two lines) naming the file, exits 1, and leaves nothing behind."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from engine.ingest import import_files
from engine.store import Store
from tests.conftest import ROOT
from tests.test_import_integrity import BAD, FX, bad_bytes


def engine(*args: str, env_db: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PARETOSCOPE_DB", "PARETOSCOPE_DEBUG")}
    if env_db:
        env["PARETOSCOPE_DB"] = str(env_db)
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def one_sentence(res: subprocess.CompletedProcess, *words: str) -> str:
    err = res.stderr.strip()
    assert res.returncode == 1, (res.returncode, err)
    assert "Traceback" not in err and 1 <= len(err.splitlines()) <= 2, err
    for w in words:
        assert w in err, (w, err)
    return err


# Runs `python -m engine import FILE --db DB` for each file in one interpreter, the way `-m` does
# (runpy), so forty fixtures cost one start-up; an exception escaping the CLI prints its traceback
# to that call's stderr exactly as the interpreter would. The import command ends its process with
# os._exit (cli.LEAVE_AT_ONCE); here that exit is a SystemExit with the same status, as any other
# command's, so the next fixture runs in the same interpreter.
_DRIVER = """
import contextlib, io, json, os, runpy, sys, traceback
def _exit(status):
    raise SystemExit(status)
os._exit = _exit
db, out = sys.argv[1], []
for path in sys.argv[2:]:
    err = io.StringIO()
    sys.argv = ["python -m engine", "import", path, "--db", db]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            runpy.run_module("engine", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code
        except BaseException:
            traceback.print_exc()
            code = 1
    out.append([path, code, err.getvalue()])
print(json.dumps(out))
"""


def test_cli_on_every_bad_input_fixture(tmp_path):
    """Each fixture of test_import_integrity.BAD through the CLI: exit 1, one sentence naming it."""
    db = tmp_path / "store.duckdb"
    with Store(db) as s:
        import_files(s, [FX / "sweep.csv"])
    (tmp_path / "bad").mkdir()
    paths = []
    for name in sorted(BAD):
        path = tmp_path / "bad" / name
        path.write_bytes(bad_bytes(name))
        paths.append(str(path))
    res = subprocess.run([sys.executable, "-c", _DRIVER, str(db), *paths], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={k: v for k, v in os.environ.items() if k != "PARETOSCOPE_DEBUG"})
    assert res.returncode == 0, res.stderr
    problems = []
    for path, code, err in json.loads(res.stdout):
        err, name = err.strip(), Path(path).name
        if code != 1 or "Traceback" in err or not 1 <= len(err.splitlines()) <= 2 or name not in err:
            problems.append(f"{name}: exit {code}: {err[-300:]}")
    assert not problems, "\n".join(problems)
    assert len(json.loads(res.stdout)) == len(BAD)
    with Store(db) as s:
        assert s.count() == 4 and len(s.imports()) == 1  # nothing of the bad files got in


def test_issue_example_refused_with_one_sentence(tmp_path):
    sweep = tmp_path / "sweep.csv"
    sweep.write_text("model,batch_size,energy_j\na,1e20,0.5\n")
    db = tmp_path / "s.duckdb"
    res = engine("import", str(sweep), "--db", str(db))
    assert one_sentence(res) == ("error: sweep.csv: line 2, column 'batch_size': 1e20 is not a whole number "
                                 "between 1 and 2^31.")


@pytest.fixture
def small_db(tmp_path) -> Path:
    db = tmp_path / "small.duckdb"
    with Store(db) as s:
        import_files(s, [FX / "sweep.csv"])
    return db


@pytest.mark.parametrize("args, words", [
    (["runs", "--filter", "batch_size<=1e400"], ["'1e400' is not a finite number"]),  # was OverflowError
    (["runs", "--filter", "energy_j>=nan"], ["'nan' is not a finite number"]),  # silently matched nothing
    (["runs", "--filter", "energy_j<=-inf"], ["not a finite number"]),
    (["runs", "--filter", "batch_size=1.5"], ["holds whole numbers", "'1.5'"]),  # was rounded to 1
    (["pareto", "--objective", "energy_j:min", "--objective", "latency_ms:min", "--filter", "batch_size>=inf"],
     ["not a finite number"]),
    (["recommend", "--objective", "energy_j:min", "--constraint", "energy_j<=1e400"], ["not a finite number"]),
    (["recommend", "--objective", "energy_j:min", "--objective", "latency_ms:min", "--weight", "energy_j=inf"],
     ["not a finite number"]),
    (["recommend", "--objective", "energy_j:min", "--price-per-gpu-hour", "nan"], ["--price-per-gpu-hour", "nan"]),
    (["pareto", "--objective", "cost_usd:min", "--gpu-price", "B200=cheap"], ["--gpu-price", "'cheap' is not a number"]),
    (["recommend", "--objective", "cost_usd:min", "--gpu-price", "B200"], ["--gpu-price", "HARDWARE=PRICE"]),
    (["runs", "--out", "/no/such/dir/x.parquet"], ["Cannot write /no/such/dir/x.parquet", "no folder"]),
    (["runs", "--out", "/no/such/dir/x.csv"], ["no folder"]),
    (["import", "/no/such/dir/x.csv"], ["/no/such/dir/x.csv: no such file."]),  # was "[Errno 2] No such file ..."
    (["import", "tests"], ["tests is a folder; name the files in it"]),  # was "[Errno 21] Is a directory: 'tests'"
    (["import", "--quality", "tests"], ["tests is a folder; name the files in it"]),  # the same
])
def test_bad_arguments_are_one_sentence(small_db, args, words):
    res = engine(*args, "--db", str(small_db))
    one_sentence(res, *words)
    assert res.stdout == ""
    assert not Path("/no/such/dir").exists()


@pytest.mark.parametrize("command", [["runs"], ["pareto", "--objective", "energy_j:min"],
                                     ["recommend", "--objective", "energy_j:min"], ["import", "--list"],
                                     ["search", "--task", "gpqa", "--budget", "3"], ["compare", "a1", "b2"]])
def test_reading_a_missing_store_says_run_init_first(tmp_path, command):
    """`runs --db /no/such/dir/x.duckdb` created an empty store (and its folders) and listed nothing."""
    db = tmp_path / "no" / "such" / "x.duckdb"
    one_sentence(engine(*command, "--db", str(db)), f"No store at {db}", f"python -m engine init --db {db}")
    assert not db.exists() and not db.parent.exists()
    missing = tmp_path / "missing.duckdb"  # the same through PARETOSCOPE_DB
    one_sentence(engine(*command, env_db=missing), f"No store at {missing}")
    assert not missing.exists()


def test_runs_out_writes_the_format_its_name_says(small_db, tmp_path):
    """`runs --out x.csv` wrote Parquet bytes into x.csv."""
    for name in ("x.csv", "x.json", "x.parquet"):
        res = engine("runs", "--out", str(tmp_path / name), "--db", str(small_db))
        assert res.returncode == 0 and "Wrote 4 runs" in res.stdout, res.stderr
    csv = pd.read_csv(tmp_path / "x.csv")
    assert len(csv) == 4 and "acme/tiny-lm-3b" in set(csv["model"])
    assert len(pd.read_json(tmp_path / "x.json")) == 4
    assert duckdb.execute("SELECT count(*) FROM read_parquet(?)", [str(tmp_path / "x.parquet")]).fetchone()[0] == 4
    with Store(tmp_path / "again.duckdb") as s:  # the exchange file still round-trips
        [done] = import_files(s, [tmp_path / "x.parquet"])
        assert done.format == "paretoscope" and done.result.added == 4
    one_sentence(engine("runs", "--out", str(tmp_path / "x.txt"), "--db", str(small_db)), ".parquet", ".csv")
    assert not (tmp_path / "x.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left

"""`python -m engine init` and `pareto` as a person runs them: subprocesses on temp stores."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from engine.store import Store
from tests.conftest import ROOT


def engine(*args, db=None, env_db=None, buffered=False):
    """``buffered``: stdout kept in a buffer until the process flushes it, as in a person's shell
    (these machines set PYTHONUNBUFFERED)."""
    env = dict(os.environ)
    env.pop("PARETOSCOPE_DB", None)
    if buffered:
        env.pop("PYTHONUNBUFFERED", None)
    if env_db:
        env["PARETOSCOPE_DB"] = str(env_db)
    cmd = [sys.executable, "-m", "engine", *args] + (["--db", str(db)] if db else [])
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def brute_front(df: pd.DataFrame, cols, maximize) -> set:
    z = df[cols].to_numpy(float) * np.where(maximize, -1, 1)
    keep = set()
    for i in range(len(z)):
        if not any((z[j] <= z[i]).all() and (z[j] < z[i]).any() for j in range(len(z))):
            keep.add(df["run_id"].iloc[i])
    return keep


def test_the_import_command_starts_numpy_without_blas_threads(monkeypatch):
    """An import calls no BLAS routine; numpy's OpenBLAS threads would spin on the cores DuckDB
    reads with (cli.COMMAND_ENV), so the import command's process starts with one. A person's own
    setting stays, and other commands are left as they are."""
    from engine import cli

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    cli.build_parser("pareto")
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    cli.build_parser("import")
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "8")
    cli.build_parser("import")
    assert os.environ["OPENBLAS_NUM_THREADS"] == "8"


def test_the_import_command_leaves_at_once_yet_says_everything_and_keeps_every_run(tmp_path):
    """The import's process ends past Python's teardown (cli.LEAVE_AT_ONCE, os._exit): what it
    printed (held in stdout's buffer to the end) still reaches a pipe, its exit status is the
    command's, and the store it wrote holds every run. A reader gone before the last line gets
    status 141, as main() gives for it, and the runs stay imported."""
    csv = tmp_path / "sweep.csv"
    csv.write_text("model,batch_size,energy_j\nm,1,2.5\nm,2,3.5\nm,4,5.0\n")
    db = tmp_path / "s.duckdb"
    done = engine("import", str(csv), db=db, buffered=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sweep.csv (csv): 3 runs added as batch ")
    missing = engine("import", str(tmp_path / "nowhere.csv"), db=db, buffered=True)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ") and "nowhere.csv" in missing.stderr
    other = tmp_path / "other.csv"
    other.write_text("model,batch_size,energy_j\nn,1,2.5\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    gone = subprocess.Popen([sys.executable, "-m", "engine", "import", str(other), "--db", str(db)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    gone.stdout.close()  # nobody reads what it says
    assert gone.wait(timeout=300) == 141, gone.stderr.read()
    listing = subprocess.Popen([sys.executable, "-m", "engine", "runs", "--db", str(db)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # another command, the same way
    listing.stdout.close()
    assert listing.wait(timeout=300) == 141 and listing.stderr.read() == b""
    with Store(db, read_only=True) as s:
        assert s.count() == 4 and sorted(s.distinct("model")) == ["m", "n"]


def test_init_builds_the_store_once(tmp_path):
    db = tmp_path / "new.duckdb"
    first = engine("init", env_db=db)
    assert first.returncode == 0, first.stderr
    assert "Loaded 2,017 bundled runs" in first.stdout  # 1,858 ML.ENERGY + 159 Qwen2 quantization runs
    assert "Published quality: gpqa_diamond: 152 runs updated from 10 quality rows; 0 rows matched no run." in first.stdout
    again = engine("init", db=db)
    assert again.returncode == 0 and "no new bundled runs" in again.stdout and "Published quality" not in again.stdout
    with Store(db) as s:
        assert s.count() == 2017


def test_done_when_command_prints_the_gpqa_front_as_csv(seeded_db):
    res = engine("pareto", "--objective", "energy_j:min", "--objective", "itl_p90_ms:min",
                 "--filter", "task=gpqa", "--format", "csv", env_db=seeded_db)
    assert res.returncode == 0, res.stderr
    front = pd.read_csv(io.StringIO(res.stdout))
    with Store(seeded_db) as s:
        gpqa = s.query(["run_id", "energy_j", "itl_p90_ms"], {"task": ["gpqa"]})
    assert set(front["run_id"]) == brute_front(gpqa, ["energy_j", "itl_p90_ms"], [False, False])
    assert len(front) >= 5 and (front["task"] == "gpqa").all()
    assert front["energy_j"].is_monotonic_increasing  # sorted along the first objective
    assert {"model", "hardware", "precision", "batch_size", "num_gpus"} <= set(front.columns)



def test_pareto_prices_each_gpu_at_its_own_rate(seeded_db):
    """At one price a B200 (faster) looks cheaper than an H100 per token; priced at its own rate,
    the cost front is the brute-force front of the costs at those prices."""
    args = ("pareto", "--objective", "accuracy:max", "--objective", "cost_usd:min", "--filter", "task=gpqa",
            "--format", "csv", "--price-per-gpu-hour", "2", "--gpu-price", "B200=6")
    res = engine(*args, env_db=seeded_db)
    assert res.returncode == 0, res.stderr
    front = pd.read_csv(io.StringIO(res.stdout))
    with Store(seeded_db) as s:
        runs = s.query(["run_id", "hardware", "num_gpus", "throughput", "accuracy"], {"task": ["gpqa"]}).dropna()
    runs["cost_usd"] = runs.num_gpus * np.where(runs.hardware == "B200", 6.0, 2.0) / 3600 / runs.throughput
    assert set(front["run_id"]) == brute_front(runs, ["accuracy", "cost_usd"], [True, False])
    got = front.set_index("run_id")["cost_usd"]
    np.testing.assert_allclose(got, runs.set_index("run_id").loc[got.index, "cost_usd"])
    one_price = pd.read_csv(io.StringIO(engine(*args[:-2], env_db=seeded_db).stdout))
    assert set(one_price["run_id"]) != set(front["run_id"])  # the prices change which runs are on the front
    typo = engine(*args, "--gpu-price", "H10=1", env_db=seeded_db)
    assert typo.returncode == 0 and "--gpu-price H10: no run in the store is on H10" in typo.stderr

def test_pareto_json_and_table_with_max_direction_and_ranges(seeded_db):
    args = ["pareto", "--objective", "throughput:max", "--objective", "energy_j", "--filter", "task=lm-arena-chat",
            "--filter", "hardware=H100,B200", "--filter", "batch_size>=16"]
    res = engine(*args, "--format", "json", db=seeded_db)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    with Store(seeded_db) as s:
        df = s.query(["run_id", "throughput", "energy_j"], {"task": ["lm-arena-chat"], "batch_size": {"min": 16}})
    assert {r["run_id"] for r in rows} == brute_front(df, ["throughput", "energy_j"], [True, False])
    assert all(r["batch_size"] >= 16 for r in rows)
    table = engine(*args, "--format", "table", db=seeded_db)
    assert table.returncode == 0 and "run_id" in table.stdout.splitlines()[0]
    assert len(table.stdout.strip().splitlines()) == len(rows) + 1


@pytest.mark.parametrize("args, words", [
    (["--objective", "bogus:min", "--filter", "task=gpqa"], "bogus"),
    (["--objective", "energy_j:min", "--objective", "itl_p90_ms:min"], "work unit"),
    (["--objective", "energy_j:min", "--objective", "itl_ms:min", "--filter", "nonsense=1"], "nonsense"),
    (["--objective", "energy_j:min", "--objective", "itl_ms:min", "--filter", "task"], "COL=VALUE"),
    (["--objective", "energy_j:min", "--objective", "itl_ms:min", "--filter", "batch_size>=many"], "not a number"),
    (["--objective", "energy_j:sideways", "--filter", "task=gpqa"], "direction"),
])
def test_pareto_errors_are_one_sentence_and_nonzero(seeded_db, args, words):
    res = engine("pareto", *args, db=seeded_db)
    assert res.returncode != 0
    assert res.stdout == ""
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert words in err

"""Sweeps end to end into real stores: every built-in workload, the grid, skips, failures, cancel."""
import json

import pytest

from engine.cli import main
from engine.profiler import knobs, launch
from engine.profiler.sweep import Options, Sweep
from engine.profiler.workloads import get_workload
from engine.store import Store

FAST = ["--repeats", "3", "--min-time", "0.05", "--warmup", "1"]


def runs(db, **filters):
    with Store(db) as s:
        return s.query(None, filters or None, include_failed=True, order_by="run_id"), s.imports()


def test_grid_expansion_and_errors():
    w = get_workload("tiny-gpt")
    grid = knobs.parse_grid(["precision=fp32,int8", "batch_size=1,4", "seq_len=8", "compile=off,on"], w.knobs, w.name)
    assert grid["precision"] == ["float32", "int8"] and grid["compile"] == [False, True]
    cfgs = knobs.expand(grid, w.defaults)
    assert len(cfgs) == 8
    assert list(cfgs[0]) == ["precision", "batch_size", "seq_len", "gen_len", "compile", "threads"]
    assert cfgs[0]["gen_len"] == 16 and cfgs[0]["threads"] is None  # defaults fill the rest
    with pytest.raises(ValueError, match="no 'seq_len' knob"):
        knobs.parse_grid(["seq_len=8"], get_workload("digits-mlp").knobs, "digits-mlp")
    with pytest.raises(ValueError, match="not one of"):
        knobs.parse_grid(["precision=int3"], w.knobs, w.name)
    with pytest.raises(ValueError, match="at least 1"):
        knobs.parse_grid(["batch_size=0"], w.knobs, w.name)


def test_digits_mlp_cli_stores_ok_and_skipped_runs(empty_db, capsys):
    rc = main(["profile", "--workload", "digits-mlp", "--grid", "precision=float32,int8,fp8",
               "--grid", "batch_size=1,64", "--db", str(empty_db), *FAST])
    assert rc == 0
    df, imports = runs(empty_db)
    assert len(df) == 6
    ok = df[df.status == "ok"]
    assert sorted(ok.precision.unique()) == ["float32", "int8"]
    assert (ok.accuracy > 0.9).all() and (ok.latency_ms > 0).all() and (ok.throughput > 0).all()
    assert (ok.latency_p90_ms >= ok.latency_ms).all() and ok.flops_per_s.notna().all()
    # every statistic with its 95 % interval, which holds the value
    for col in ("latency_ms", "latency_p90_ms", "throughput"):
        assert (ok[col + "_ci_lo"] <= ok[col]).all() and (ok[col] <= ok[col + "_ci_hi"]).all(), col
    assert (ok.work_unit == "sample").all() and (ok.task == "digits-mlp").all()
    skipped = df[df.status == "skipped"]
    assert len(skipped) == 2 and skipped.reason.str.contains("fp8 needs an NVIDIA GPU").all()
    env = json.loads(ok.environment.iloc[0])
    assert env["hardware"]["cpu_model"] and env["settings"]["precision"] in ("float32", "int8")
    assert "torch" in env["hardware"]["versions"] and env["memory_method"]
    assert len(imports) == 1 and imports.kind[0] == "profile" and imports.rows_added[0] == 6
    assert imports.source[0].startswith("profile:") and (df.source == imports.source[0]).all()
    assert "6 of 6 configurations stored" in capsys.readouterr().out


def test_digits_cnn_profiles(empty_db):
    assert main(["profile", "--workload", "digits-cnn", "--grid", "batch_size=8", "--db", str(empty_db), *FAST]) == 0
    df, _ = runs(empty_db)
    assert len(df) == 1 and df.status[0] == "ok" and df.accuracy[0] > 0.9


def test_tiny_gpt_fidelity_and_token_latency(empty_db, capsys):
    rc = main(["profile", "--workload", "tiny-gpt", "--param", "layers=1", "--param", "width=64",
               "--grid", "precision=float32,bfloat16", "--grid", "seq_len=8,600", "--grid", "gen_len=4",
               "--db", str(empty_db), *FAST])
    assert rc == 0
    df, _ = runs(empty_db)
    ok = df[df.status == "ok"].set_index("precision")
    assert ok.loc["float32", "agreement"] == 1.0 and ok.loc["float32", "kl_div"] < 1e-6
    assert 0.5 < ok.loc["bfloat16", "agreement"] <= 1.0 and ok.loc["bfloat16", "kl_div"] > 0
    assert (ok.work_unit == "token").all()
    assert "accuracy" not in df or df.accuracy.isna().all()  # fidelity is not task accuracy (no labels here)
    assert ok.itl_ms.notna().all() and ok.ttft_ms.notna().all() and (ok.itl_p90_ms >= ok.itl_ms).all()
    assert ok.model.iloc[0] == "tiny-gpt-L1-d64-h4"
    failed = df[df.status == "failed"]
    assert len(failed) == 2 and failed.reason.str.contains("exceeds tiny-gpt's context").all()
    header = capsys.readouterr().out.split("configurations stored")[1].splitlines()[1].split()
    assert "agreement" in header and "kl_div" in header and "accuracy" not in header


def test_user_model_and_a_failing_configuration(empty_db):
    assert main(["profile", "--model", "tests.profile_factory:factory", "--grid", "precision=float32,int8",
                 "--db", str(empty_db), *FAST]) == 0
    assert main(["profile", "--model", "tests.profile_factory:picky", "--grid", "batch_size=1,4,2",
                 "--db", str(empty_db), *FAST]) == 0
    df, imports = runs(empty_db)
    assert len(imports) == 2
    mine = df[df.model == "tests.profile_factory:factory"]
    assert (mine.status == "ok").all() and (mine.accuracy > 0.7).all()
    picky = df[df.model == "tests.profile_factory:picky"].set_index("batch_size")
    assert list(picky.status.loc[[1, 2, 4]]) == ["ok", "ok", "failed"]  # the sweep went on after the failure
    assert "batch 4 is too large" in picky.reason.loc[4] and picky.work_unit.loc[1] == "request"


def test_a_factory_that_raises_is_one_clear_error(empty_db, capsys):
    assert main(["profile", "--model", "tests.profile_factory:broken", "--db", str(empty_db)]) == 1
    assert "cannot build its model" in capsys.readouterr().err


def test_cancel_stops_after_the_current_configuration(tmp_path):
    db, cancel, progress = tmp_path / "c.duckdb", tmp_path / "cancel", tmp_path / "progress.json"
    w = get_workload("digits-mlp")
    configs = knobs.expand({"batch_size": [1, 2, 4, 8]}, w.defaults)

    def log(msg):  # the person presses Cancel while the first configuration is being measured
        if msg.startswith("[1/4] "):
            cancel.touch()

    sweep = Sweep(w, configs, db=db, options=Options(repeats=2, min_time_s=0.05, warmup=0),
                  progress_file=progress, cancel_file=cancel, log=log)
    rows = sweep.run()
    assert len(rows) == 1
    info = json.loads(progress.read_text())
    assert info["state"] == "cancelled" and len(info["results"]) == 1 and info["n"] == 4
    assert launch.explore_axes(info) == ("accuracy", "latency_ms")  # digits: held-out accuracy vs latency
    assert info["results"][0]["accuracy"] > 0.9
    df, imports = runs(db)
    assert len(df) == 1 and df.status[0] == "ok" and imports.rows_added[0] == 1


def test_tiny_gpt_progress_names_its_fidelity_not_accuracy(tmp_path):
    progress = tmp_path / "progress.json"
    w = get_workload("tiny-gpt", params={"layers": 1, "width": 32})
    configs = knobs.expand({"seq_len": [8], "gen_len": [3]}, w.defaults)
    Sweep(w, configs, db=False, options=Options(repeats=2, min_time_s=0.0, warmup=0, sample=False),
          progress_file=progress, log=lambda m: None).run()
    info = json.loads(progress.read_text())
    assert launch.explore_axes(info) == ("agreement", "itl_ms")
    row = info["results"][0]
    assert row["agreement"] == 1.0 and "accuracy" not in row and row["itl_ms"] > 0
    assert "x=agreement" in launch.explore_url("tiny-gpt", "profile:x", *launch.explore_axes(info))

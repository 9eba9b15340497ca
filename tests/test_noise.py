"""Noise-aware fronts (confidence intervals beside the values): the store, `engine pareto`."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.fields import CANONICAL_BY_NAME, ci_fields
from engine.store import Store
from tests.conftest import plotly_values
from tests.test_cli import engine


def _runs_with_intervals(path) -> None:
    runs = pd.DataFrame({
        "task": "t", "model": ["a", "b", "c", "d"], "batch_size": [1, 2, 3, 4],
        "latency_ms": [10.0, 10.5, 20.0, 9.0], "latency_ms_ci_lo": [9.0, 9.8, 19.5, None],
        "latency_ms_ci_hi": [11.0, 11.2, 20.5, None], "accuracy": [0.80, 0.79, 0.60, 0.50],
        "accuracy_ci_lo": [0.78, 0.77, 0.58, None], "accuracy_ci_hi": [0.82, 0.81, 0.62, None],
    })
    extra = [*ci_fields(CANONICAL_BY_NAME["latency_ms"]), *ci_fields(CANONICAL_BY_NAME["accuracy"])]
    with Store(path) as s:
        s.add_runs(runs, source="noisy", kind="test", extra_fields=extra)
        assert not any(f.name.endswith("_ci_lo") for f in s.metrics())  # intervals are not objectives


def test_pareto_json_marks_front_tied_and_leaves_confidently_dominated_out(empty_db):
    _runs_with_intervals(empty_db)
    res = engine("pareto", "--objective", "latency_ms:min", "--objective", "accuracy:max", "--format", "json",
                 db=empty_db)
    assert res.returncode == 0, res.stderr
    rows = {r["model"]: r for r in json.loads(res.stdout)}
    # a: fastest-accurate pair with d; b is dominated by a's values but the intervals overlap; c clearly not
    assert {m: r["membership"] for m, r in rows.items()} == {"a": "front", "d": "front", "b": "tied"}
    assert rows["b"]["latency_ms_ci_hi"] == 11.2


def test_without_intervals_pareto_is_unchanged(seeded_db):
    res = engine("pareto", "--objective", "energy_j:min", "--objective", "itl_p90_ms:min", "--filter", "task=gpqa",
                 "--format", "json", env_db=seeded_db)
    assert res.returncode == 0 and all("membership" not in r for r in json.loads(res.stdout))


def test_recommend_says_when_pick_and_runner_up_are_indistinguishable(empty_db):
    from engine.recommend import recommend

    _runs_with_intervals(empty_db)
    with Store(empty_db) as s:
        rec = recommend(s, ["accuracy"], [True], filters={"model": ["a", "b"]})
        assert rec.pick["model"] == "a" and rec.runner_up["model"] == "b"
        assert "not distinguishable at 95 %" in rec.reason and "accuracy" in rec.indistinct
        clear = recommend(s, ["accuracy"], [True], filters={"model": ["a", "c"]})
        assert clear.indistinct is None and "distinguishable" not in clear.reason
        both = recommend(s, ["latency_ms", "accuracy"], [False, True], filters={"model": ["a", "b"]})
        # they overlap most in accuracy (60 % of the joint span), where b's interval is the wider
        assert "More repeats of the runner-up's accuracy (interval 5 % of its value)" in both.indistinct


def test_explore_draws_error_bars_and_tied_runs_with_a_toggle(empty_db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    _runs_with_intervals(empty_db)
    monkeypatch.setenv("PARETOSCOPE_DB", str(empty_db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"x": "latency_ms", "y": "accuracy", "task": "t"})
    at.run()
    assert not at.exception, at.exception
    traces = {t["name"].split(" (")[0]: t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    front, tied = traces["front"], traces["tied with the front"]
    assert plotly_values(front["x"]) == [9.0, 10.0]  # d (no interval), then a
    assert plotly_values(front["error_x"]["array"]) == [0.0, 1.0] and plotly_values(front["error_x"]["arrayminus"]) == [0.0, 1.0]
    assert plotly_values(tied["x"]) == [10.5] and plotly_values(tied["error_y"]["array"]) == pytest.approx([0.02])
    table = at.dataframe[0].value
    assert dict(zip(table["model"], table["membership"])) == {"a": "front", "d": "front", "b": "tied"}
    assert "1 tied with it (not beaten at 95 %)" in " ".join(c.value for c in at.caption)
    # off: the point-value front of today, no bars, and the link says so
    at.toggle(key="ci").set_value(False).run()
    traces = {t["name"].split(" (")[0]: t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert "tied with the front" not in traces and "error_x" not in traces["front"]
    assert at.query_params["ci"] == ["off"] or at.query_params["ci"] == "off"
    assert set(at.dataframe[0].value["model"]) == {"a", "d"}


def test_imports_keep_intervals_and_turn_std_with_n_into_them(tmp_path):
    """A table's <metric>_ci_lo / _ci_hi follow the metric's unit conversion; <metric>_std with a
    repeat count n becomes a t-interval of the mean; all are information, never objectives; a
    Paretoscope export carries them to another store."""
    csv = tmp_path / "repeated.csv"
    csv.write_text("model,task,latency_s,latency_s_ci_lo,latency_s_ci_hi,energy_j,energy_j_std,n\n"
                   "a,t,0.010,0.009,0.011,5.0,0.5,5\n"
                   "b,t,0.0105,0.0098,0.0112,4.0,0.5,1\n")
    db = tmp_path / "s.duckdb"
    res = engine("import", str(csv), db=db)
    assert res.returncode == 0, res.stderr
    with Store(db) as s:
        assert s.field("latency_ms_ci_lo").role == "info" and s.field("latency_ms_ci_lo").unit == "ms"
        assert s.field("energy_j_std").role == "info"
        assert "energy_j_ci_hi" not in {f.name for f in s.metrics()}
        runs = s.query().set_index("model")
    assert runs.loc["a", "latency_ms_ci_lo"] == pytest.approx(9.0) and runs.loc["b", "latency_ms_ci_hi"] == pytest.approx(11.2)
    # t(0.975, 4) = 2.776: 5 +/- 2.776 * 0.5 / sqrt(5); one repeat gives no interval
    assert runs.loc["a", "energy_j_ci_lo"] == pytest.approx(5 - 2.7764 * 0.5 / 5 ** 0.5, abs=1e-3)
    assert pd.isna(runs.loc["b", "energy_j_ci_lo"])
    res = engine("pareto", "--objective", "latency_ms:min", "--objective", "energy_j:min", "--format", "json", db=db)
    assert {r["model"]: r["membership"] for r in json.loads(res.stdout)} == {"a": "front", "b": "front"}
    # export and import elsewhere: the intervals come along, with their roles
    out = tmp_path / "runs.parquet"
    assert engine("runs", "--out", str(out), db=db).returncode == 0
    other = tmp_path / "other.duckdb"
    res = engine("import", str(out), db=other)
    assert res.returncode == 0, res.stderr
    with Store(other) as s:
        assert s.field("energy_j_ci_hi").role == "info"
        assert s.query().set_index("model").loc["a", "energy_j_ci_hi"] == pytest.approx(runs.loc["a", "energy_j_ci_hi"])


def test_rounds_store_the_median_and_an_interval_over_interleaved_rounds(empty_db):
    from engine.profiler.results import combine_rounds

    env = json.dumps({"notes": []})
    rounds = [dict(run_id="r", status="ok", latency_ms=v, latency_ms_ci_lo=v - 0.1, latency_ms_ci_hi=v + 0.1,
                   batch_size=8, environment=env, wall_s=1.0) for v in (10.0, 14.0, 11.0)]
    one = combine_rounds(rounds)
    assert one["latency_ms"] == 11.0 and one["batch_size"] == 8 and one["wall_s"] == 3.0
    # three rounds: the order-statistic interval of their median is [lowest, highest], never narrower
    # than the median round's own
    assert (one["latency_ms_ci_lo"], one["latency_ms_ci_hi"]) == (10.0, 14.0)
    assert "median of 3 interleaved rounds" in json.loads(one["environment"])["notes"][-1]
    failed = [dict(run_id="r", status="failed", reason="boom")]
    assert combine_rounds(failed + rounds[:1])["latency_ms"] == 10.0 and combine_rounds(failed)["status"] == "failed"

    res = engine("profile", "--workload", "digits-mlp", "--grid", "batch_size=1,8", "--rounds", "2",
                 "--min-time", "0.05", "--no-sampler", db=empty_db)
    assert res.returncode == 0, res.stderr
    assert "[2/2 round 2/2]" in res.stdout and "round 1/2" in res.stdout
    with Store(empty_db) as s:
        runs = s.query()
    assert len(runs) == 2 and runs["latency_ms_ci_lo"].notna().all()
    assert all(json.loads(e)["rounds"] == 2 for e in runs["environment"])

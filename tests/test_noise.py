"""Noise-aware fronts (confidence intervals beside the values): the store, `engine pareto`."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.fields import CANONICAL_BY_NAME, ci_fields
from engine.store import Store
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


def _values(v) -> list:
    """A plotly array from a figure's JSON: a list, or a typed array plotly encodes as base64."""
    if isinstance(v, dict):
        import base64

        import numpy as np
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


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
    assert _values(front["x"]) == [9.0, 10.0]  # d (no interval), then a
    assert _values(front["error_x"]["array"]) == [0.0, 1.0] and _values(front["error_x"]["arrayminus"]) == [0.0, 1.0]
    assert _values(tied["x"]) == [10.5] and _values(tied["error_y"]["array"]) == pytest.approx([0.02])
    table = at.dataframe[0].value
    assert dict(zip(table["model"], table["membership"])) == {"a": "front", "d": "front", "b": "tied"}
    assert "1 tied with it (not beaten at 95 %)" in " ".join(c.value for c in at.caption)
    # off: the point-value front of today, no bars, and the link says so
    at.toggle(key="ci").set_value(False).run()
    traces = {t["name"].split(" (")[0]: t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert "tied with the front" not in traces and "error_x" not in traces["front"]
    assert at.query_params["ci"] == ["off"] or at.query_params["ci"] == "off"
    assert set(at.dataframe[0].value["model"]) == {"a", "d"}

"""Noise-aware fronts (confidence intervals beside the values): the store, `engine pareto`."""
from __future__ import annotations

import json

import pandas as pd

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

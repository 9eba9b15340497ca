"""Recommendations on small hand-checked data and on the bundled runs (CLI)."""
from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from engine.explore import MixedWorkUnits
from engine.recommend import Constraint, recommend
from engine.store import Store
from tests.conftest import ROOT

RUNS = pd.DataFrame({
    "run_id": ["r1", "r2", "r3", "r4", "r5", "r6"],
    "task": ["t"] * 6, "work_unit": ["token"] * 6, "model": ["m"] * 6,
    "hardware": ["A", "A", "A", "B", "B", "B"],
    "batch_size": [1, 2, 4, 1, 8, 4],
    "energy_j": [10.0, 5.0, 2.0, 8.0, 1.0, 1.8],
    "itl_p90_ms": [1.0, 2.0, 4.0, 3.0, 10.0, 6.0],
    "accuracy": [0.90, 0.95, 0.95, 0.99, 0.80, 0.97],
})
BOTH = (["energy_j", "itl_p90_ms"], [False, False])


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "small.duckdb") as s:
        s.add_runs(RUNS, source="hand", kind="test")
        yield s


def test_front_and_constraint(store):
    rec = recommend(store, *BOTH, ["itl_p90_ms<=5"])
    assert sorted(rec.front["run_id"]) == ["r1", "r2", "r3"]  # r4 is dominated by r2
    assert rec.n_feasible == 4 and rec.pick["run_id"] in {"r1", "r2", "r3"}
    assert rec.runner_up["run_id"] != rec.pick["run_id"]
    assert "knee" in rec.reason


def test_single_objective_pick_and_constraint_cost(store):
    rec = recommend(store, ["energy_j"], [False], ["itl_p90_ms<=5"])
    assert rec.pick["run_id"] == "r3" and rec.runner_up["run_id"] == "r2"
    (cost,) = rec.costs
    assert cost.best_with == 2.0 and cost.best_without == 1.0 and cost.change_pct == pytest.approx(50.0)
    assert "could drop 50 %" in cost.text and rec.binding == ["itl_p90_ms <= 5"]
    assert "could drop 50 %" in rec.reason


def test_no_run_to_pick_from_is_said_as_it_is(store, tmp_path):
    """With nothing to pick from, the reason says why: filters that match nothing, no run with a
    value for an objective, or a store without measured runs; never filters nobody set."""
    assert recommend(store, ["energy_j"], [False], filters={"hardware": ["C"]}).reason == (
        "No run matches the filters with a value for every objective.")
    said = recommend(store, ["power_w"], [False]).reason  # a metric none of these runs measured
    assert said.startswith("No run has a value for every objective.") and "power_w" in said
    with Store(tmp_path / "empty.duckdb") as empty:
        assert recommend(empty, ["energy_j"], [False]).reason == "The store holds no measured runs yet."


def test_infeasible_names_binding_constraint_and_margin(store):
    rec = recommend(store, *BOTH, ["itl_p90_ms<=0.5"])
    assert rec.pick is None and rec.front.empty
    assert rec.infeasible == "no run meets itl_p90_ms <= 0.5: the lowest is 1 ms (100 % over)."
    assert rec.binding == ["itl_p90_ms <= 0.5"]
    # each constraint alone is satisfiable, together not: both are named with what they miss by
    rec = recommend(store, *BOTH, ["itl_p90_ms<=2", "accuracy>=0.96"])
    assert rec.pick is None
    assert "no run meets accuracy >= 0.96: the highest among runs meeting the other constraints is 0.95" in rec.reason
    assert "no run meets itl_p90_ms <= 2" in rec.reason
    assert set(rec.binding) == {"itl_p90_ms <= 2", "accuracy >= 0.96"}


def test_relative_constraints(store):
    rec = recommend(store, ["energy_j"], [False], ["accuracy>=best-1%"])  # >= 0.99 * 0.99
    assert rec.limits["accuracy >= best-1%"] == pytest.approx(0.9801)
    assert rec.pick["run_id"] == "r4" and rec.n_feasible == 1
    rec = recommend(store, ["energy_j"], [False], ["accuracy>=best-0.05"])  # >= 0.94
    assert rec.pick["run_id"] == "r6" and rec.n_feasible == 4
    assert Constraint.parse("itl_p90_ms <= best+20%").limit(RUNS["itl_p90_ms"], False) == pytest.approx(1.2)
    with pytest.raises(ValueError, match="must look like"):
        Constraint.parse("itl_p90_ms = 5")


def test_weights_change_the_pick(store):
    by_energy = recommend(store, *BOTH, weights=[1, 0])
    by_itl = recommend(store, *BOTH, weights=[0, 1])
    assert by_energy.pick["run_id"] == "r5" and by_itl.pick["run_id"] == "r1"
    assert "weights" in by_energy.reason
    with pytest.raises(ValueError, match="Weights"):
        recommend(store, *BOTH, weights=[1])


def test_per_hardware_best(store):
    rec = recommend(store, ["energy_j"], [False], ["itl_p90_ms<=5"])
    best = dict(zip(rec.per_hardware["hardware"], rec.per_hardware["run_id"]))
    assert best == {"A": "r3", "B": "r4"}
    assert list(rec.per_hardware["feasible_runs"]) == [3, 1]


def test_never_mixes_work_units(store):
    store.add_runs(pd.DataFrame({"task": ["img"], "work_unit": ["image"], "energy_j": [3.0], "itl_p90_ms": [1.0]}),
                   source="hand2", kind="test")
    with pytest.raises(MixedWorkUnits):
        recommend(store, *BOTH)
    assert recommend(store, *BOTH, filters={"task": ["t"]}).pick is not None


def test_unknown_metric_is_one_sentence(store):
    with pytest.raises(ValueError, match="'speed' is not a metric"):
        recommend(store, ["speed"], [False])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "engine", "recommend", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


def test_done_when_question_via_cli(seeded_db):
    """'Lowest energy per token for gpqa with p90 ITL <= 60 ms on H100.'"""
    ask = ["--objective", "energy_j:min", "--constraint", "itl_p90_ms<=60", "--filter", "task=gpqa",
           "--filter", "hardware=H100", "--db", str(seeded_db)]
    out = _cli(*ask, "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    pick = doc["pick"]
    assert pick["hardware"] == "H100" and pick["itl_p90_ms"] <= 60
    with Store(seeded_db) as s:
        ok = s.query(["energy_j", "itl_p90_ms"], {"task": ["gpqa"], "hardware": ["H100"]})
    assert pick["energy_j"] == pytest.approx(ok.loc[ok["itl_p90_ms"] <= 60, "energy_j"].min())
    assert ok["energy_j"].min() < pick["energy_j"]  # the limit costs something, so it binds
    assert doc["binding"] == ["itl_p90_ms <= 60"] and "Pick:" in doc["reason"]
    assert doc["front"] and doc["runner_up"]["energy_j"] >= pick["energy_j"]
    # the two-objective view of the same question: a feasible front and a knee
    out = _cli(*ask, "--objective", "itl_p90_ms:min")
    assert out.returncode == 0, out.stderr
    assert "Pareto-optimal" in out.stdout and "pick" in out.stdout and "runner-up" in out.stdout
    assert "What each constraint costs" in out.stdout and "Best configuration per hardware" in out.stdout


def test_a_cost_per_token_is_also_said_per_million_tokens(seeded_db):
    """A person reads serving cost per million tokens: the reason gives the pick's cost per work unit
    and, where it is that small, per million of them; a value readable as it is stays alone."""
    with Store(seeded_db) as s:
        rec = recommend(s, ["accuracy", "cost_usd"], [True, False], filters={"task": ["gpqa"]})
        energy = recommend(s, ["energy_j", "itl_p90_ms"], [False, False], filters={"task": ["gpqa"]})
    cost = float(rec.pick["cost_usd"])
    assert cost < 1e-3 and rec.pick["work_unit"] == "token"
    assert f"cost_usd {cost:.3g} $ = {cost * 1e6:.3g} $ per million tokens" in rec.reason
    assert float(energy.pick["energy_j"]) > 1e-3 and "per million" not in energy.reason


def test_cli_infeasible_and_bad_input(seeded_db):
    out = _cli("--objective", "energy_j:min", "--constraint", "itl_p90_ms<=1", "--filter", "task=gpqa", "--db", str(seeded_db))
    assert out.returncode == 2 and "Nothing is feasible: no run meets itl_p90_ms <= 1: the lowest is" in out.stdout
    out = _cli("--objective", "energy_j:min", "--constraint", "itl_p90_ms=<1", "--db", str(seeded_db), "--filter", "task=gpqa")
    assert out.returncode == 1 and out.stderr.startswith("error: Constraint") and "Traceback" not in out.stderr

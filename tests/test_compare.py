"""Compare runs side by side: engine.compare and `python -m engine compare`."""
from __future__ import annotations

import json

import pytest

from engine.compare import compare
from engine.store import Store
from tests.test_cli import engine

PAIR = {"task": ["gpqa"], "hardware": ["B200"], "model": ["openai/gpt-oss-20b", "openai/gpt-oss-120b"],
        "batch_size": [512], "num_gpus": [1]}


def _ids(db) -> list[str]:
    with Store(db) as s:
        df = s.query(["run_id", "model"], PAIR, order_by="model")
    assert list(df.model) == ["openai/gpt-oss-120b", "openai/gpt-oss-20b"]
    return list(df.run_id)


def test_compare_rows_ratios_and_best(seeded_db):
    big, small = _ids(seeded_db)
    with Store(seeded_db) as s:
        cmp = compare(s, [big[:10], small])  # a unique prefix is enough
    assert list(cmp.runs.run_id) == [big, small] and cmp.labels == ["run 1", "run 2"]
    rows = cmp.rows.set_index("field")
    assert rows.loc["model", "run 1"] == "openai/gpt-oss-120b" and rows.loc["model", "run 2"] == "openai/gpt-oss-20b"
    e1, e2 = rows.loc["energy_j", "run 1"], rows.loc["energy_j", "run 2"]
    assert rows.loc["energy_j", "run 2 ratio"] == pytest.approx(e2 / e1)
    assert rows.loc["energy_j", "run 2 diff"] == pytest.approx(e2 - e1)
    assert rows.loc["energy_j", "best"] == ("run 2" if e2 < e1 else "run 1")
    assert rows.loc["accuracy", "best"] == "run 1"  # 0.801 against 0.715: higher is better
    assert "accuracy_source" not in rows.index and "accuracy_source" in cmp.runs.columns


@pytest.mark.parametrize("ids, error", [
    (["ffffffffff"], "Compare takes 2 to 8 runs"),
    (["zzzz", "yyyy"], "No run has the id 'zzzz'"),
    (["0", "1"], "is the start of several run ids"),
])
def test_compare_refuses_unclear_ids(seeded_db, ids, error):
    with Store(seeded_db) as s, pytest.raises(ValueError, match=error):
        compare(s, ids)


def test_compare_cli_table_and_json(seeded_db):
    big, small = _ids(seeded_db)
    res = engine("compare", big, small, "--format", "json", env_db=seeded_db)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [r["run_id"] for r in doc["runs"]] == [big, small]
    assert {r["field"]: r.get("best") for r in doc["fields"]}["accuracy"] == "run 1"
    table = engine("compare", big[:12], small[:12], env_db=seeded_db)
    assert table.returncode == 0 and f"run 1: {big}" in table.stdout and "run 2 ratio" in table.stdout
    same = engine("compare", big, big, env_db=seeded_db)
    assert same.returncode == 1 and same.stderr.strip() == "error: The same run was named twice."


def test_compare_page_from_a_link(seeded_db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    big, small = _ids(seeded_db)
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=60)
    at.query_params["runs"] = f"{big[:10]},{small}"
    at.run()
    assert not at.exception, at.exception
    heads, metrics = at.dataframe[0].value, at.dataframe[1].value
    assert list(heads["run_id"]) == [big, small]
    row = metrics.set_index("field").loc["accuracy"]
    assert row["run 1"] == pytest.approx(0.801) and row["best"] == "run 1"
    assert at.query_params["runs"] == f"{big[:10]},{small}"
    at.text_input(key="c_ids").set_value(big).run()
    assert "Give at least two run ids." in at.info[0].value
    at.text_input(key="c_ids").set_value(f"{big},nope").run()
    assert "No run has the id 'nope'." in at.error[0].value

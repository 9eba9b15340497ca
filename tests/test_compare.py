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


def test_a_profiled_run_keeps_its_timeline_and_compare_draws_it(empty_db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from engine import timeseries
    from tests.conftest import ROOT, plotly_values

    res = engine("profile", "--workload", "digits-mlp", "--grid", "batch_size=1,32", "--min-time", "0.3", db=empty_db)
    assert res.returncode == 0, res.stderr
    with Store(empty_db) as s:
        ids = list(s.query(["run_id"], order_by="run_id")["run_id"])
        series = timeseries.read(s, ids)
    assert set(series["run_id"]) == set(ids) and {"cpu_util_pct", "rss_mb"} <= set(series["name"])
    per = series.groupby(["run_id", "name"])["t_s"]
    assert (per.count() >= 3).all() and (per.max() <= 5).all() and per.apply(lambda t: t.is_monotonic_increasing).all()
    # a share of all cores: never above 100, though 10 ms ticks over 50 ms intervals once read 115
    assert series.loc[series["name"] == "cpu_util_pct", "value"].between(0, 100).all()

    monkeypatch.setenv("PARETOSCOPE_DB", str(empty_db))
    at = AppTest.from_file(str(ROOT / "app_pages" / "compare.py"), default_timeout=60)
    at.query_params["runs"] = ",".join(ids)
    at.run()
    assert not at.exception, at.exception
    charts = {json.loads(c.proto.spec)["layout"]["title"]["text"]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    assert {"cpu_util_pct", "rss_mb"} <= set(charts)
    lines = charts["rss_mb"]["data"]
    assert [t["name"] for t in lines] == ["run 1", "run 2"] and all(len(plotly_values(t["y"])) >= 3 for t in lines)

    # deleting the sweep's batch deletes the timelines with the runs
    with Store(empty_db) as s:
        s.delete_import(s.imports()["import_id"].iloc[0])
        assert timeseries.read(s, ids).empty


def test_nvidia_smi_and_zeus_power_logs_import_with_their_timelines(empty_db):
    from engine import timeseries
    from tests.conftest import ROOT

    fixtures = ROOT / "tests" / "fixtures"
    res = engine("import", str(fixtures / "nvidia-smi-query.csv"), str(fixtures / "zeus-power-timeline.json"), db=empty_db)
    assert res.returncode == 0, res.stderr
    assert "(nvidia-smi): 2 runs added" in res.stdout and "(zeus-power): 1 run added" in res.stdout
    with Store(empty_db) as s:
        runs = s.query().set_index("run_id")
        series = timeseries.read(s, list(runs.index))
    smi0 = runs.loc[[i for i in runs.index if i.startswith("nvidia-smi:") and i.endswith(":0")][0]]
    # GPU 0 ramps 100 -> 320 W over 2.2 s: mean 210 W, trapezoid energy 2.2 s x 210 W
    assert smi0["hardware"] == "H100 80GB HBM3" and smi0["power_w"] == pytest.approx(210.0)
    assert smi0["log_energy_j"] == pytest.approx(462.0) and smi0["peak_memory_mb"] == 6500
    gpu1 = series[(series["run_id"].str.endswith(":1")) & (series["name"] == "gpu_power_w")]
    assert len(gpu1) == 12 and gpu1["value"].isna().sum() == 1  # "[N/A]" stays missing, never 0
    zeus = series[series["run_id"].str.startswith("zeus:")]
    assert set(zeus["name"]) == {"gpu_power_w", "gpu_memory_power_w"} and zeus["t_s"].min() == 0
    # the same log again adds nothing and duplicates no sample
    again = engine("import", str(fixtures / "nvidia-smi-query.csv"), db=empty_db)
    assert again.returncode == 0 and "already imported" in again.stdout
    with Store(empty_db) as s:
        assert len(timeseries.read(s, list(runs.index))) == len(series)

"""The Recommend page through AppTest, and the done-when question in a real browser."""
from __future__ import annotations

import json
import os
import re

from streamlit.testing.v1 import AppTest

from engine.cli import main
from engine.profiler import launch
from engine.store import Store
from tests.browser import chromium_page, streamlit_server
from tests.conftest import ROOT, follow_search, searched, shown

PAGE = str(ROOT / "app_pages" / "recommend.py")


def _app(monkeypatch, db):
    monkeypatch.setenv("PARETOSCOPE_DB", str(db))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_recommend_tab_gives_a_pick(monkeypatch, seeded_db):
    at = _app(monkeypatch, seeded_db)
    assert at.selectbox(key="r_task").value == "gpqa"
    at.multiselect(key="r_hw").set_value(["H100"]).run()
    at.multiselect(key="r_obj_gpqa").set_value(["energy_j"]).run()
    assert not at.exception, at.exception
    reason = shown(at.success[0].value)
    assert "Pick: openai/gpt-oss-20b / H100" in reason and "itl_p90_ms <= 60" in reason
    # an impossible limit: the binding message instead of a pick
    at.text_input(key="r_cv_0").set_value("1").run()
    assert not at.success and "no run meets itl_p90_ms <= 1: the lowest is" in shown(at.error[0].value)


def test_the_choices_are_kept_until_the_store_changes(monkeypatch, seeded_db):
    """The filters' choices, the measured metrics and the search tab's defaults are kept between
    reruns (they took 0.17-0.2 s of each at 1e6 runs), per store file: runs another writer adds on
    new hardware, with a new metric, are choices on the next rerun."""
    import pandas as pd

    at = _app(monkeypatch, seeded_db)
    assert "Z9" not in at.multiselect(key="r_hw").options
    assert "joules_per_image" not in at.multiselect(key="r_obj_gpqa").options
    with Store(seeded_db) as s:
        calls = []
        real = Store.distinct
        monkeypatch.setattr(Store, "distinct", lambda self, *a, **k: calls.append(a) or real(self, *a, **k))
        at.run()
        assert not calls  # kept: nothing asked of the store for the choices
        from engine.fields import Field
        s.add_runs(pd.DataFrame({"task": ["gpqa"], "model": ["acme/new"], "hardware": ["Z9"], "energy_j": [1.0],
                                 "joules_per_image": [2.0]}), source="test", kind="test",
                   extra_fields=[Field("joules_per_image", "metric", "double", "J", "min")])
    at.run()
    assert not at.exception, at.exception
    assert "Z9" in at.multiselect(key="r_hw").options
    assert "joules_per_image" in at.multiselect(key="r_obj_gpqa").options


def test_quality_is_a_default_objective_and_one_click_constraint(monkeypatch, seeded_db):
    at = _app(monkeypatch, seeded_db)
    assert at.multiselect(key="r_obj_gpqa").value == ["accuracy", "energy_j"]
    assert at.radio(key="r_dir_accuracy").value == "max"
    reason = shown(at.success[0].value)
    assert "Pick: openai/gpt-oss-120b" in reason and "accuracy 0.801" in reason
    assert "35 runs lack accuracy (not measured): Qwen/Qwen3-235B-A22B-Thinking-2507-FP8" in reason
    at.toggle(key="r_q1_gpqa").set_value(True).run()
    assert not at.exception, at.exception
    reason = shown(at.success[0].value)
    assert "Pick: Qwen/Qwen3-235B-A22B-Thinking-2507 " in reason and "19 of 152 runs meet the constraints" in reason
    # another task: its own quality metric (a rating, not an accuracy)
    at.selectbox(key="r_task").set_value("lm-arena-chat").run()
    assert at.multiselect(key="r_obj_lm-arena-chat").value == ["arena_score", "energy_j"]
    assert shown(at.toggle(key="r_q1_lm-arena-chat").proto.label).startswith("Keep arena_score within 1 %")


def test_search_tab_lookup_draws_hypervolume(monkeypatch, seeded_db, capsys):
    """The page and the CLI show one number for a lookup search: the engine's share of the true
    front's hypervolume (the same task, budget, seed and default objectives)."""
    at = _app(monkeypatch, seeded_db)
    at.selectbox(key="s_task").set_value("sourcegraph-fim").run()
    at.number_input(key="s_budget_sourcegraph-fim").set_value(12).run()
    at.button(key="s_start").click().run()
    assert not at.exception, at.exception
    charts = at.get("vega_lite_chart")
    text = shown(" ".join(m.value for m in at.markdown))
    assert "Hypervolume over evaluations" in text and "after 12 evaluations" in text
    assert charts, "no hypervolume line chart"
    assert "Front found" in text
    page = re.search(r"([\d.]+) % of the true front's hypervolume after 12 evaluations", text)
    assert main(["search", "--task", "sourcegraph-fim", "--budget", "12", "--seed", "0", "--db", str(seeded_db)]) == 0
    cli = re.search(r"Evaluated 12 of 34 configurations; ([\d.]+) % of the true front's hypervolume", capsys.readouterr().out)
    assert page and cli and page.group(1) == cli.group(1), (text, cli)
    assert 0 < float(page.group(1)) <= 100


def _progress(db) -> dict:
    (folder,) = [p for p in launch.sweeps_dir(db).iterdir() if p.is_dir()]
    return json.loads((folder / "progress.json").read_text())


def _stored(db, task):
    with Store(db) as store:
        return store.query(None, {"task": [task]}, include_failed=True)


def test_search_tab_measures_in_its_own_process(monkeypatch, seeded_db):
    """A measure search from the Search tab runs as `python -m engine search` in a child process
    (the page only reads its progress file); its result shows as a lookup's does."""
    at = _app(monkeypatch, seeded_db)
    at.radio(key="s_kind").set_value("workload (profile now)").run()
    at.number_input(key="s_budget_digits-mlp").set_value(2).run()
    at.button(key="s_start").click().run()
    assert not at.exception, at.exception
    follow_search(at, searched)
    assert not at.error, [e.value for e in at.error]
    info = _progress(seeded_db)
    assert info["kind"] == "search" and info["state"] == "done" and info["pid"] != os.getpid()
    assert [s["n"] for s in info["results"]] == [1, 2]
    text = shown(" ".join(m.value for m in at.markdown))
    assert any("Search done: 2 evaluations" in shown(m.value) for m in at.success)
    assert "[1/2] precision=" in text and "[2/2] precision=" in text  # the per-evaluation lines, as the CLI prints them
    assert "Hypervolume over evaluations" in text and "after 2 evaluations" in text and "Front found" in text
    assert at.get("vega_lite_chart") and len(at.dataframe[-1].value) >= 1
    assert len(_stored(seeded_db, "digits-mlp")) == 2  # the child process stored what it measured
    assert not at.button(key="s_start").disabled  # nothing measuring any more


def test_search_tab_cancel_keeps_what_was_measured(monkeypatch, seeded_db):
    at = _app(monkeypatch, seeded_db)
    at.radio(key="s_kind").set_value("workload (profile now)").run()
    at.number_input(key="s_budget_digits-mlp").set_value(6).run()
    at.button(key="s_start").click().run()
    assert at.button(key="s_start").disabled  # one measuring process at a time
    follow_search(at, lambda a: len(_progress(seeded_db)["results"]) >= 1)
    at.button(key="s_cancel").click().run()
    follow_search(at, lambda a: searched(a, "Search cancelled"))
    assert not at.error, [e.value for e in at.error]
    info = _progress(seeded_db)
    assert info["state"] == "cancelled" and 1 <= len(info["results"]) < 6
    assert len(_stored(seeded_db, "digits-mlp")) == len(info["results"])
    text = shown(" ".join(m.value for m in at.markdown))
    assert f"after {len(info['results'])} evaluations" in text and "Front found" in text


def test_search_tab_names_a_failed_search(monkeypatch, seeded_db):
    """An unreachable Ray cluster: the child process fails fast and the page says why, in one sentence."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    at = _app(monkeypatch, seeded_db)
    at.radio(key="s_kind").set_value("workload (profile now)").run()
    at.radio(key="s_run_on").set_value("Ray cluster").run()
    at.text_input(key="s_ray_at").set_value(f"127.0.0.1:{port}").run()
    at.button(key="s_start").click().run()
    follow_search(at, lambda a: a.error, timeout=60)
    assert f"The search failed: Cannot reach a Ray cluster at 127.0.0.1:{port}" in shown(at.error[0].value)


def test_done_when_question_in_the_browser(seeded_db):
    """Quality beside energy by default, the accuracy constraint in one click, then a hardware filter."""
    with streamlit_server(seeded_db) as url, chromium_page() as page:
        page.goto(url + "/recommend")
        page.get_by_text("Pick:").first.wait_for()
        alert = page.get_by_text("Pick:").first.inner_text()
        assert "openai/gpt-oss-120b" in alert and "accuracy 0.801" in alert and "lack accuracy (not measured)" in alert
        page.get_by_text("Keep accuracy within 1 % of the best").click()
        page.get_by_text("19 of 152 runs meet the constraints").wait_for()
        hw = page.get_by_role("combobox").nth(1)  # Task, Hardware, Model, Precision
        hw.click()
        page.get_by_role("option", name="H100").click()
        page.keyboard.press("Escape")
        page.get_by_text("3 of 65 runs meet the constraints").wait_for()
        alert = page.get_by_text("Pick:").first.inner_text()
        assert "H100" in alert and "Qwen/Qwen3-235B-A22B-Thinking-2507" in alert
        page.get_by_text("Feasible Pareto front").wait_for()


def _param(at, key):
    v = at.query_params.get(key)
    return v[0] if isinstance(v, list) else v


def test_a_recommend_link_reproduces_the_recommendation(monkeypatch, seeded_db):
    at = _app(monkeypatch, seeded_db)
    at.multiselect(key="r_hw").set_value(["H100"]).run()
    at.multiselect(key="r_obj_gpqa").set_value(["energy_j"]).run()
    at.toggle(key="r_q1_gpqa").set_value(False).run()
    reason = shown(at.success[0].value)
    link = {k: _param(at, k) for k in at.query_params}
    assert link == {"task": "gpqa", "hardware": "H100", "obj": "energy_j:min", "con": "itl_p90_ms<=60"}
    # the same link in a new session: the same widgets, the same pick and reason
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    again = AppTest.from_file(PAGE, default_timeout=120)
    again.query_params.update(link)
    again.run()
    assert not again.exception, again.exception
    assert again.multiselect(key="r_hw").value == ["H100"] and again.multiselect(key="r_obj_gpqa").value == ["energy_j"]
    assert again.text_input(key="r_cv_0").value == "60"
    assert shown(again.success[0].value) == reason

    # weights and the quality toggle travel too; names the store lacks are dropped with a note
    third = AppTest.from_file(PAGE, default_timeout=120)
    third.query_params.update({"task": "gpqa", "obj": "accuracy:max,energy_j:min,nope:min", "w": "0.8,0.2",
                               "con": "accuracy>=best-1%;rowid<=1", "hardware": "H100,TPU"})
    third.run()
    assert not third.exception, third.exception
    notes = shown(" ".join(i.value for i in third.info))
    assert "unknown objective 'nope'" in notes and "'TPU'" in notes and "'rowid<=1' names an unknown metric" in notes
    assert third.toggle(key="r_q1_gpqa").value is True and third.number_input(key="r_ncons").value == 0
    assert third.checkbox(key="r_use_w").value is True and third.slider(key="r_w_accuracy").value == 0.8
    assert _param(third, "w") == "0.8,0.2" and _param(third, "con") == "accuracy>=best-1%"


def test_a_recommend_link_carries_the_prices_its_costs_were_computed_at(monkeypatch, seeded_db):
    """Opened from a link with prices, the app puts them in the sidebar, and Recommend's own link
    keeps them beside its question (a cost objective's pick depends on them)."""
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"gpu_prices": "B200=6,H100=2.9", "price": "3"})
    at.run()
    at.switch_page("app_pages/recommend.py").run()
    assert not at.exception, at.exception
    assert _param(at, "gpu_prices") == "B200=6,H100=2.9" and _param(at, "price") == "3"
    assert _param(at, "task") == "gpqa"
    assert "B200 $6.00; H100 $2.90" in shown(" ".join(c.value for c in at.sidebar.caption))


def test_many_runs_are_drawn_as_densities_beside_the_whole_front(monkeypatch, tmp_path):
    """Past DENSITY_FROM runs off the front, the figure draws all of them as two shaded layers,
    infeasible and feasible-but-dominated, each cell's count on hover, said in a caption, and the
    whole front as points (it drew every run: 24 s in chromium at 1e6 runs); the reason counts them all."""
    from bench.bench_explore import build_store
    from engine.density import DENSITY_FROM
    from tests.conftest import plotly_values
    db = tmp_path / "runs.duckdb"
    build_store(db, 20_000)
    monkeypatch.setenv("PARETOSCOPE_DB", str(db))
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params.update({"task": "gpqa", "obj": "energy_j:min,itl_p90_ms:min", "con": "itl_p90_ms<=50"})
    at.run()
    assert not at.exception, at.exception
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    kinds = {t["name"].split(" (")[0]: t["type"] for t in fig["data"]}
    assert kinds == {"infeasible": "heatmap", "feasible, dominated": "heatmap", "feasible front": "scatter",
                     "pick": "scatter", "runner-up": "scatter"}
    counted_in = {t["name"].split(" (")[0]: sum(map(sum, plotly_values(t["customdata"])))
                  for t in fig["data"] if t["type"] == "heatmap"}
    assert all(n > 0 for n in counted_in.values())
    with Store(db) as s:
        n = s.count({"task": ["gpqa"]})
    reason = shown(at.success[0].value)
    front = int(re.search(r"; ([\d,]+) (?:is|are) Pareto-optimal", reason).group(1))
    assert len(plotly_values(fig["data"][2]["x"])) == front and re.match(rf"[\d,]+ of {n:,} runs meet", reason)
    assert sum(counted_in.values()) == n - front > DENSITY_FROM  # every other run counted, none sampled away
    caption = " ".join(c.value for c in at.caption)
    assert f"The other {n - front:,} runs are drawn as shaded densities" in caption

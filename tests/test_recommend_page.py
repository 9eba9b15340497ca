"""The Recommend page through AppTest, and the done-when question in a real browser."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.browser import chromium_page, streamlit_server
from tests.conftest import ROOT

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
    at.multiselect(key="r_obj").set_value(["energy_j"]).run()
    assert not at.exception, at.exception
    reason = at.success[0].value
    assert "Pick: openai/gpt-oss-20b / H100" in reason and "itl_p90_ms <= 60" in reason
    # an impossible limit: the binding message instead of a pick
    at.text_input(key="r_cv_0").set_value("1").run()
    assert not at.success and "no run meets itl_p90_ms <= 1: the lowest is" in at.error[0].value


def test_search_tab_lookup_draws_hypervolume(monkeypatch, seeded_db):
    at = _app(monkeypatch, seeded_db)
    at.selectbox(key="s_task").set_value("sourcegraph-fim").run()
    at.number_input(key="s_budget_sourcegraph-fim").set_value(12).run()
    at.button(key="s_start").click().run()
    assert not at.exception, at.exception
    charts = at.get("vega_lite_chart")
    text = " ".join(m.value for m in at.markdown)
    assert "Hypervolume over evaluations" in text and "after 12" in text
    assert charts, "no hypervolume line chart"
    assert "Front found" in text


def test_done_when_question_in_the_browser(seeded_db):
    with streamlit_server(seeded_db) as url, chromium_page() as page:
        page.goto(url + "/recommend")
        page.get_by_text("Pick:").first.wait_for()
        hw = page.get_by_role("combobox").nth(1)  # Task, Hardware, Model, Precision
        hw.click()
        page.get_by_role("option", name="H100").click()
        page.keyboard.press("Escape")
        page.get_by_text("of 81 runs meet the constraints").wait_for()
        alert = page.get_by_text("Pick:").first.inner_text()
        assert "H100" in alert and "itl_p90_ms ≤ 60" in alert
        page.get_by_text("Feasible Pareto front").wait_for()

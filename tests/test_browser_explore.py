"""End to end in a real browser: `streamlit run app.py` on a seeded store, driven by chromium."""
from __future__ import annotations

from tests.browser import chromium_page, streamlit_server


def plot_y_title(page) -> str:
    return page.locator(".js-plotly-plot .g-ytitle").first.text_content()


def test_explore_changes_objective_and_opens_links(seeded_db):
    with streamlit_server(seeded_db) as url, chromium_page() as page:
        page.goto(url)
        page.get_by_role("heading", name="Explore").wait_for()
        page.locator(".js-plotly-plot .g-ytitle").first.wait_for()
        # the landing view: published GPQA-Diamond accuracy against energy per token on gpqa
        assert plot_y_title(page) == "accuracy"
        assert page.locator(".js-plotly-plot .g-xtitle").first.text_content() == "energy_j (J per token)"
        assert "x=energy_j" in page.url and "y=accuracy" in page.url and "task=gpqa" in page.url
        assert page.get_by_text("runs lack accuracy (not measured)").first.is_visible()
        before = page.get_by_text("runs match").first.inner_text()
        assert "lack an objective" in before

        # pick another y objective in the selectbox
        page.get_by_label("y objective").first.click()
        page.get_by_role("option", name="throughput (1/s)").click()
        page.wait_for_function(
            "() => document.querySelector('.js-plotly-plot .g-ytitle')?.textContent === 'throughput (token/s)'")
        page.wait_for_url("**y=throughput**")
        page.get_by_text("runs lack accuracy").wait_for(state="detached")
        after = page.get_by_text("runs match").first.inner_text()
        assert after != before and "lack an objective" not in after  # every gpqa run has throughput

        # a link with query params opens that view
        page.goto(url + "/?x=power_w&y=itl_p99_ms&task=lm-arena-chat&hardware=B200&group=model")
        page.wait_for_function(
            "() => document.querySelector('.js-plotly-plot .g-xtitle')?.textContent === 'power_w (W)'")
        assert plot_y_title(page) == "itl_p99_ms (ms)"
        assert page.get_by_label("front per model").is_checked()
        assert page.locator("[data-testid=stSidebar]").get_by_text("lm-arena-chat").first.is_visible()

"""End to end in a real browser: `streamlit run app.py` on a seeded store, driven by chromium."""
from __future__ import annotations

import re

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser import chromium_page, streamlit_server


def hover_text(page, x: float, y: float) -> str:
    """The hover labels plotly draws with the mouse at (x, y), read in one DOM call: a label seen
    by one locator call can be gone by the next (plotly redraws the hover layer on its own frames),
    and a locator waiting for it then waits out its whole timeout."""
    page.mouse.move(x, y)
    labels = "() => Array.from(document.querySelectorAll('.js-plotly-plot .hoverlayer .hovertext'),"\
             " e => e.textContent).join(' | ')"
    try:  # plotly draws the label on a later frame, or not at all over an empty spot
        page.wait_for_function(labels, timeout=500)
    except PlaywrightTimeout:
        return ""
    return page.evaluate(labels)


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
        page.get_by_text("runs lack accuracy (not measured)").first.wait_for()  # drawn after the plot, maybe in a later delta
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
        sidebar = page.locator("[data-testid=stSidebar]")
        sidebar.get_by_text("Runs where task is lm-arena-chat and hardware is B200.").wait_for()

        # the filter widgets are drawn when the sidebar's "Filters" popover opens; it stays open while
        # the front redraws beside it
        assert not page.get_by_label("hardware", exact=True).is_visible()
        sidebar.get_by_role("button", name="Filters").click()
        page.get_by_label("hardware", exact=True).click()
        page.get_by_role("option", name="H100", exact=True).click()
        sidebar.get_by_text("Runs where task is lm-arena-chat and hardware is B200 or H100.").wait_for()
        page.wait_for_url(re.compile(r".*hardware=B200(,|%2C)H100.*"))
        assert page.get_by_label("hardware", exact=True).is_visible()


def test_select_runs_on_the_plot_and_compare_them(seeded_db):
    with streamlit_server(seeded_db) as url, chromium_page() as page:
        page.goto(url + "/?x=energy_j&y=itl_p90_ms&task=gpqa&hardware=H100&model=openai/gpt-oss-20b")
        plot = page.locator(".js-plotly-plot").first
        plot.locator(".g-ytitle").wait_for()
        # box-select every point: the plot's drag layer, after the modebar's box-select button
        plot.hover()
        plot.locator('.modebar-btn[data-val="select"]').first.click()
        box = plot.locator(".nsewdrag").first.bounding_box()
        page.mouse.move(box["x"] + 3, box["y"] + 3)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
        page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] - 3, steps=5)
        page.mouse.up()
        link = page.get_by_role("link", name="Compare the")
        link.wait_for(timeout=30_000)
        assert "selected on the plot or in the table" in page.get_by_text("selected on the plot").first.inner_text()
        link.click()
        page.get_by_role("heading", name="Compare").wait_for()
        page.get_by_role("heading", name="Metrics").wait_for()
        assert "runs=" in page.url
        page.get_by_text("Ratio and difference are against").first.wait_for()
        # energy per token against batch size on H100: one curve per model, one click away
        page.goto(url + "/?x=itl_p90_ms&y=energy_j&task=gpqa&hardware=H100&group=model")
        page.locator(".js-plotly-plot .g-xtitle").first.wait_for()
        page.get_by_label("x objective or knob").first.click()
        page.keyboard.type("batch_size (k")  # the option list is long and virtualised: filter it
        page.get_by_role("option", name="batch_size (knob)").click()
        page.wait_for_function("() => document.querySelector('.js-plotly-plot .g-xtitle')?.textContent === 'batch_size'")
        page.wait_for_url("**x=batch_size**")
        page.get_by_text("one line per model").first.wait_for()
        legend = page.locator(".js-plotly-plot").first.locator(".legend .traces")
        assert legend.count() >= 5 and legend.filter(has_text="openai/gpt-oss-20b").count() == 1
        # no front, no parallel coordinates (the old ones stay on the page until the rerun ends)
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length === 1", timeout=30_000)
        assert page.get_by_text("one line per model").first.is_visible()


def test_many_dominated_runs_are_drawn_as_one_image_whose_cells_say_their_count(tmp_path):
    """At 10,000 runs chromium draws the dominated runs as the density's one image, not a marker
    each, and hovering a shaded cell says how many runs it holds."""
    from bench.bench_explore import build_store
    db = tmp_path / "runs.duckdb"
    build_store(db, 10_000)
    with streamlit_server(db) as url, chromium_page() as page:
        page.goto(url + "/?x=energy_j&y=itl_p90_ms&task=gpqa&log=x,y")
        plot = page.locator(".js-plotly-plot").first
        plot.locator(".hm image").wait_for(state="attached")  # plotly's heatmap layer: one image
        assert plot.locator(".scatterlayer .point").count() < 100  # the front's few markers, no dominated ones
        page.get_by_text("dominated runs are drawn as a shaded density").first.wait_for()
        box = plot.locator(".nsewdrag").first.bounding_box()
        said = ""
        for i in range(1, 12):  # across the plot's middle band until a shaded cell answers
            for j in range(2, 8):
                said = hover_text(page, box["x"] + box["width"] * i / 12, box["y"] + box["height"] * j / 10)
                if "in this cell" in said:
                    break
            if "in this cell" in said:
                break
        assert re.search(r"runs in this cell: [1-9][\d,]*", said), said

"""A real browser starts a small sweep from the Profile page and sees its runs."""
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from engine.store import Store
from tests.browser import chromium_page, streamlit_server


def test_profile_page_runs_a_sweep(empty_db):
    with streamlit_server(empty_db) as url, chromium_page() as page:
        page.goto(url + "/profile")
        page.get_by_role("heading", name="Profile").wait_for()
        page.get_by_text("1 configuration", exact=True).wait_for()  # one, in the singular
        group = page.locator('[data-testid="stButtonGroup"]').filter(has=page.get_by_text("Precision", exact=True))
        group.get_by_role("button", name="int8", exact=True).click()
        page.get_by_text("2 configurations").wait_for()
        seconds = page.get_by_label("Minimum seconds per configuration")
        seconds.fill("0.2")
        seconds.press("Enter")
        page.get_by_role("button", name="Start").click()
        page.get_by_text("Now measuring").or_(page.get_by_text("Sweep done")).first.wait_for()
        link = page.get_by_role("link", name="Open these runs in Explore").first  # a rerun may briefly show two
        link.wait_for(timeout=120_000)
        page.get_by_text("2 of 2 configurations measured and stored").first.wait_for()
        expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(1)
        query = parse_qs(urlparse(link.get_attribute("href")).query)
        assert query["task"] == ["digits-mlp"] and query["source"][0].startswith("profile:")
        assert query["x"] == ["accuracy"] and query["y"] == ["latency_ms"]
        expect(page.get_by_role("button", name="Start")).to_be_enabled()  # after the page's own refresh
        page.get_by_role("link", name="Open these runs in Explore").first.click()
        page.get_by_role("heading", name="Explore").wait_for()
        page.get_by_text("2 runs match").wait_for()  # the link's task + sweep filters are applied
        expect(page.get_by_text("Page not found")).to_have_count(0)
    with Store(empty_db) as s:
        df = s.query(["precision", "accuracy", "latency_ms", "source"], {"source": query["source"]})
    assert sorted(df.precision) == ["float32", "int8"]
    assert (df.accuracy > 0.9).all() and (df.latency_ms > 0).all()

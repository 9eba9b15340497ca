"""A real browser profiles a saved tiny Hugging Face model from the Profile page: the memory
prediction shows before Start, the sweep runs, and the Explore link plots perplexity vs ITL."""
from urllib.parse import parse_qs, urlparse

from engine.store import Store
from tests.browser import chromium_page, streamlit_server


def test_profile_page_runs_an_hf_sweep(empty_db, tiny_llama):
    with streamlit_server(empty_db) as url, chromium_page() as page:
        page.goto(url + "/profile")
        page.get_by_role("heading", name="Profile").wait_for()
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Workload").get_by_role("combobox").click()
        page.get_by_role("option", name="hf: a Hugging Face model").click()
        page.get_by_text("Name a model above.").wait_for()
        box = page.get_by_role("textbox", name="Model: a hub id (org/name) or a local folder")
        box.fill(str(tiny_llama))
        box.press("Enter")
        page.get_by_text("Predicted peak memory, before running").wait_for()
        def pills(label):
            return page.locator('[data-testid="stButtonGroup"]').filter(has=page.get_by_text(label, exact=True))

        pills("Quantization (torchao)").get_by_role("button", name="int8-dynamic", exact=True).click()
        page.get_by_text("2 configurations").wait_for()
        for label, new, old in (("Prompt length (tokens)", "8", "32"), ("Generated tokens", "4", "16")):  # a short run
            pills(label).get_by_role("button", name=new, exact=True).click()
            page.get_by_text("4 configurations").wait_for()
            pills(label).get_by_role("button", name=old, exact=True).click()
            page.get_by_text("2 configurations").wait_for()
        for label, value in (("Minimum seconds per configuration", "0.1"), ("Minimum timed batches per configuration", "2")):
            field = page.get_by_label(label)
            field.fill(value)
            field.press("Enter")
        page.get_by_role("button", name="Start").click()
        link = page.get_by_role("link", name="Open these runs in Explore: perplexity vs itl_ms").first
        link.wait_for(timeout=180_000)
        page.get_by_text("2 of 2 configurations measured and stored").first.wait_for()
        query = parse_qs(urlparse(link.get_attribute("href")).query)
        assert query["task"] == ["text-generation"] and query["x"] == ["perplexity"] and query["y"] == ["itl_ms"]
        link.click()
        page.get_by_role("heading", name="Explore").wait_for()
        page.get_by_text("2 runs match").wait_for()
    with Store(empty_db) as s:
        df = s.query(["quant", "perplexity", "predicted_memory_mb", "peak_memory_mb", "itl_ms"], {"source": query["source"]})
    assert sorted(df.quant) == ["int8-dynamic", "none"]
    assert df.notna().all().all()

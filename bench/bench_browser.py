"""What a person waits for in a real browser: from navigation to the Explore front drawn, in
headless Debian chromium, at 10,000 and 1,000,000 runs, and a filter change redrawn at 1e6,
against a minimal Streamlit page with one plotly chart (bench/minimal_app.py) in the same run:
the pages are served at once and measured in turns, ROUNDS times, each round's page against that
round's minimal page. Targets (issue 13): Explore <= 1.5x the minimal page; a filter change under
1 s at 1e6. The Recommend tab at the largest size is timed beside them, without a target (it drew
every run, 24 s at 1e6, until it drew a sample as Explore does)."""
from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_explore import build_store
from tests.browser import CHROMIUM_ARGS as ARGS
from tests.browser import streamlit_server
from tests.conftest import CHROMIUM

# Drawn: the front's plotly figure has its axes and a trace layer, and Streamlit is not running.
DRAWN = """() => {
  const plot = document.querySelector('.js-plotly-plot');
  const busy = document.querySelector('[data-testid="stStatusWidget"]');
  return !!plot && !!plot.querySelector('.xtick') && !busy; }"""
TIMES = 5
ROUNDS = 5  # the pages in turns: one page measured in one stretch read 1.59 s in one run, 1.87 s in the next;
# with 3 rounds one busy spell (1.39x and 1.51x in a round whose others read 1.16x and 1.06x) was a third of the median


def _drawn(page, url: str) -> float:
    t = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN, polling=50, timeout=120_000)
    return time.perf_counter() - t


def navigation(page, url: str) -> float:
    """Median of TIMES warm navigations (one cold first, not counted)."""
    _drawn(page, url)
    return statistics.median(_drawn(page, url) for _ in range(TIMES))


def filter_change(page, url: str) -> float:
    """Median time from picking another hardware in the sidebar to the redrawn front."""
    page.goto(url)
    page.wait_for_function(DRAWN, polling=50, timeout=120_000)
    times = []
    for hw in ["A100", "B200", "H100", "MI300X", "A100", "B200"]:
        page.get_by_role("button", name="Filters").click()  # the sidebar's popover of filters
        box = page.get_by_label("hardware", exact=True)  # the multiselect (not the radio "front per hardware")
        box.click()
        t = time.perf_counter()
        page.get_by_role("option", name=hw, exact=True).click()
        page.keyboard.press("Escape")
        page.wait_for_url(f"**hardware=**{hw}**", timeout=120_000)
        page.wait_for_function(DRAWN, polling=50, timeout=120_000)
        times.append(time.perf_counter() - t)
        page.goto(url)
        page.wait_for_function(DRAWN, polling=50, timeout=120_000)
    return statistics.median(times[1:])


def main(argv: list[str] | None = None) -> None:
    if not Path(CHROMIUM).exists():
        print(f"skipped: {CHROMIUM} is not installed (apt-get install chromium)")
        return
    from playwright.sync_api import sync_playwright

    sizes = [10_000] if "--quick" in (argv or []) else [10_000, 1_000_000]
    view = "/?x=energy_j&y=itl_p90_ms&task=gpqa"
    pages = ["minimal page, one plotly chart"] + [f"Explore at {n:,} runs" for n in sizes] + \
        [f"Recommend at {sizes[-1]:,} runs (no target)"]
    times: dict[str, list[float]] = {p: [] for p in pages}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw, contextlib.ExitStack() as servers:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        urls = [servers.enter_context(streamlit_server(None, 90, script="bench/minimal_app.py"))]
        for n in sizes:
            db = Path(tmp) / f"runs_{n}.duckdb"
            build_store(db, n)
            base = servers.enter_context(streamlit_server(db, 90))
            urls.append(base + view)
        urls.append(base + "/recommend?task=gpqa&obj=energy_j:min,itl_p90_ms:min")  # its figure and tables
        for _ in range(ROUNDS):  # in turns, so a busy spell slows every page alike
            for name, url in zip(pages, urls):
                times[name].append(navigation(page, url))
        change = filter_change(page, urls[len(sizes)])
        browser.close()
    ratios = {p: [t / m for t, m in zip(times[p], times[pages[0]])] for p in pages}
    print(f"headless chromium, navigation to the front drawn (median of {TIMES} warm loads, in {ROUNDS} rounds "
          "taken in turns; the ratio is each round's against the minimal page of the same round)")
    print(f"{'page':44s} {'seconds':>8s} {'ratio':>7s}   ratio per round")
    for p in pages:
        print(f"{p:44s} {statistics.median(times[p]):8.2f} {statistics.median(ratios[p]):6.2f}x   "
              + ", ".join(f"{r:.2f}x" for r in ratios[p]))
    worst = max(statistics.median(ratios[p]) for p in pages[1:] if p.startswith("Explore"))
    print(f"target Explore <= 1.5x the minimal page: {'met' if worst <= 1.5 else 'NOT met'} ({worst:.2f}x)")
    print(f"filter change to the redrawn front at {sizes[-1]:,} runs: {change:.2f} s "
          f"(target < 1 s: {'met' if change < 1 else 'NOT met'})")


if __name__ == "__main__":
    main(sys.argv[1:])

"""User data is shown as the characters it holds, never rendered (issue 18 item 9), and a browser
never sees a traceback (item 10): model names, file names, column headers and values from a link
through Streamlit's Markdown and plotly's HTML-like labels, checked in a real chromium."""
from __future__ import annotations

import http.server
import os
import re
import threading
import tomllib
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from engine.explore import ViewState, build_view
from engine.ingest import import_files
from engine.store import Store
from tests.browser import chromium_page, streamlit_server, wait_idle
from tests.conftest import ROOT, shown
from ui.figures import front_figure, hover_text
from ui.text import literal, plain

CRAFTED = ["![t](http://127.0.0.1:9/m.png) [log in](http://evil.example/login)", "<b>bold</b> <a href='x'>a</a> &amp;",
           "**b** _i_ `c` ~~s~~ $x^2$ :red[r] :material/home: :smile:", "# h", "1. l", "- l", "> q", "| a | b |",
           "www.evil.example/x http://evil.example a@evil.example", "line\nbreak\\ back\\slash"]


@pytest.mark.parametrize("text", CRAFTED)
def test_literal_escapes_every_markdown_construct(text):
    md = literal(text)
    assert shown(md) == " ".join(text.split())  # reads as the text, on one line
    assert "\n" not in md
    bare = re.sub(r"\\.", "", md)  # what is left once every escaped character is taken out
    assert not set(bare) & set("[]()!*_`$~<>:@#|&\\"), bare  # no construct can open
    for autolink in ("http://", "www.", "a@", ":material/"):
        assert autolink not in md.replace("\\", "")  # broken up by an invisible word joiner
    assert plain(text).count("<") == 0 and "&lt;" in plain("<b>")


def test_hover_legend_and_axis_titles_escape_html():
    df = pd.DataFrame({"model": ["<a href='http://evil.example'>x</a>", "<img src=x>"], "hardware": ["H100", "<b>B</b>"],
                       "energy_j": [1.0, 2.0], "accuracy": [0.5, 0.4],
                       "accuracy_source": ["<i>paper</i>", None]})
    text = hover_text(df, ["energy_j", "accuracy"], lambda n: f"{n} (<u>unit</u>)", sources=True)
    joined = " ".join(text)
    assert "<a href" not in joined and "<img" not in joined and "<u>" not in joined and "<i>paper" not in joined
    assert "&lt;a href='http://evil.example'&gt;x&lt;/a&gt;" in joined and "&lt;b&gt;B&lt;/b&gt;" in joined
    assert "<br>" in joined and "<b>energy_j (&lt;u&gt;unit&lt;/u&gt;)</b>" in joined  # our own markup stays
    from engine.explore import FrontView
    view = FrontView(front=df, dominated=df.iloc[0:0], n_runs=2, n_dominated=0, n_missing=0)
    fig = front_figure(view, ["energy_j", "accuracy"], lambda n: f"{n} <u>u</u>", group="model").to_dict()
    assert {t["name"] for t in fig["data"][1:]} == {"&lt;a href='http://evil.example'&gt;x&lt;/a&gt;", "&lt;img src=x&gt;"}
    assert fig["layout"]["xaxis"]["title"]["text"] == "energy_j &lt;u&gt;u&lt;/u&gt;"


def test_a_figure_of_many_points_is_drawn_with_webgl_a_few_as_svg():
    """WebGL only where SVG would be slower (ui.figures.SVG_MAX): a browser without a GPU draws
    WebGL in software, so a few points go to SVG. One kind per figure: plotly draws WebGL over
    SVG, so a front in SVG over a WebGL sample of dominated runs would be hidden."""
    from engine.explore import FrontView
    from ui.figures import SVG_MAX

    def view(n_dominated: int) -> FrontView:
        x = np.linspace(1.0, 2.0, n_dominated)
        dom = pd.DataFrame({"run_id": [f"d{i}" for i in range(n_dominated)], "energy_j": x, "accuracy": 1.0 - x / 4})
        front = pd.DataFrame({"run_id": ["f0", "f1"], "energy_j": [0.5, 0.9], "accuracy": [0.8, 0.9]})
        return FrontView(front=front, dominated=dom, n_runs=n_dominated + 2, n_dominated=n_dominated, n_missing=0)

    few = front_figure(view(SVG_MAX - 2), ["energy_j", "accuracy"], str).to_dict()
    many = front_figure(view(SVG_MAX - 1), ["energy_j", "accuracy"], str).to_dict()  # with the front's two: one over
    assert [t["type"] for t in few["data"]] == ["scatter", "scatter"]
    assert [t["type"] for t in many["data"]] == ["scattergl", "scattergl"]  # the front's two runs too: drawn on top
    assert len(many["data"][0]["customdata"]) == SVG_MAX - 1  # every dominated run drawn, still named on selection


def test_browser_never_shows_error_details():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


class _Trap(http.server.BaseHTTPRequestHandler):
    """Stands in for an attacker's server: records every request the browser makes to it."""
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Trap.hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def _main_text(page) -> str:
    """What a person reads on the page (word joiners are invisible)."""
    return page.evaluate("() => document.querySelector('[data-testid=stApp]').innerText.replaceAll('\\u2060', '')")


def _links_and_images(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid=stApp] a, [data-testid=stApp] img')]
        .map(e => e.href || e.src).filter(u => u && ['evil.example', '127.0.0.1:' + window.TRAP]
        .includes(new URL(u, location.href).host))""")


def test_crafted_names_stay_text_in_the_browser(seeded_db, tmp_path):
    trap = http.server.HTTPServer(("127.0.0.1", 0), _Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    port = trap.server_address[1]
    image = f"![t](http://127.0.0.1:{port}/m.png)"
    best = f"{image} [log in](http://evil.example/login) **pick** <b>me</b>"  # dominates every gpqa run
    lacking = f"[lacks](http://evil.example/lacks) {image}"  # no accuracy: named in the caption
    runs = tmp_path / "crafted.csv"
    pd.DataFrame({"model": [best, lacking], "task": "gpqa", "work_unit": "token", "hardware": "H100",
                  "precision": "bfloat16", "batch_size": 8, "energy_j": [1e-4, 2e-4], "accuracy": [0.99, None],
                  "itl_p90_ms": 10.0}).to_csv(runs, index=False)
    with Store(seeded_db) as s:
        import_files(s, [runs])
    shots = Path(os.environ.get("PARETOSCOPE_SHOTS") or ROOT / "bench" / "out")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with streamlit_server(seeded_db) as url, chromium_page(height=1400) as page:
            # Explore from a crafted link: the two crafted models, and values the store lacks
            link = (f"{url}/?task=gpqa&x=energy_j&y=accuracy&model={quote(best)},{quote(lacking)},"
                    f"{quote('[log in](http://evil.example/link)')}&hardware={quote(image)}")
            page.goto(link)
            page.evaluate(f"window.TRAP = {port}")
            page.get_by_text("on the front").first.wait_for()
            page.get_by_text("is not in the store").first.wait_for()
            page.locator(".js-plotly-plot").first.wait_for(timeout=240_000)  # the plotly bundle loads slowly on a busy machine
            text = _main_text(page)
            assert "The link's model value '[log in](http://evil.example/link)' is not in the store; ignored." in text
            assert f"The link's hardware value '{image}' is not in the store; ignored." in text
            assert f"accuracy (not measured): {lacking}." in text
            page.screenshot(path=str(shots / "explore_crafted_link.png"), full_page=True)
            assert _links_and_images(page) == []

            # Recommend: the crafted model is the pick, and its reason box shows the name as text
            page.goto(url + "/recommend")
            page.evaluate(f"window.TRAP = {port}")
            page.get_by_text("Pick:").first.wait_for()
            assert f"Pick: {best} / H100 / bfloat16" in _main_text(page)
            assert _links_and_images(page) == []
            page.screenshot(path=str(shots / "recommend_crafted_model.png"), full_page=True)

            # Import: a crafted file name and column header, a bad value, and JSON nested too deeply
            bad = tmp_path / "[f](https:evil.example) sweep.csv"  # a file name holds no /
            bad.write_text("model,batch_size,[click](http://evil.example/c)\na,1e20,1\n")
            deep = tmp_path / "deep.json"
            deep.write_bytes(b'{"a": ' * 100_000 + b"1" + b"}" * 100_000)
            page.goto(url + "/import")
            page.evaluate(f"window.TRAP = {port}")
            page.get_by_role("heading", name="Import runs").wait_for()
            wait_idle(page)
            page.locator("input[type=file]").first.set_input_files([str(bad)])
            page.get_by_text("detected types").first.wait_for()
            text = _main_text(page)
            assert f"{bad.name} · detected format: csv" in text
            assert "1 rows · detected types: model (text), batch_size (double), [click](http://evil.example/c) (integer)" in text
            page.get_by_role("button", name="Commit import").click()
            page.get_by_text("Nothing imported").wait_for()
            assert (f"Nothing imported: {bad.name}: line 2, column 'batch_size': 1e20 is not a whole number between 1 "
                    "and 2^31.") in _main_text(page)
            page.screenshot(path=str(shots / "import_bad_file.png"), full_page=True)
            page.locator("input[type=file]").first.set_input_files([str(deep)])  # added to the list
            page.get_by_text("deep.json: JSON nested too deeply to read").wait_for()
            assert _links_and_images(page) == [] and "Traceback" not in _main_text(page)
            page.screenshot(path=str(shots / "import_deep_json.png"), full_page=True)
    finally:
        trap.shutdown()
    assert _Trap.hits == []  # the browser fetched nothing from the crafted image URLs
    with Store(seeded_db) as s:
        assert s.count() == 2019  # the bad upload added nothing
        state = ViewState(x="energy_j", y="accuracy", filters={"task": ["gpqa"]})
        assert best in set(build_view(s, state).front["model"])

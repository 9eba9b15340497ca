"""The Explore page through streamlit.testing's AppTest on a real seeded store: change widgets,
check what is shown against engine.explore for the same state, and the URL round trip."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from engine.derived import Settings
from engine.explore import ViewState, build_view
from engine.store import Store
from tests.conftest import ROOT, plotly_values, shown


@pytest.fixture
def app(seeded_db, monkeypatch):
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))

    def make(params: dict | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.query_params.update(params or {})
        at.run()
        assert not at.exception, at.exception
        return at

    make.db = seeded_db
    return make


def front_ids(at: AppTest) -> set:
    return set(at.dataframe[0].value["run_id"])


def expected_ids(db, state: ViewState) -> set:
    with Store(db) as s:
        return set(build_view(s, state).front["run_id"])


def figure(at: AppTest) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)  # the front plot comes first


def test_default_view_is_gpqa_accuracy_against_energy(app):
    at = app()
    assert at.selectbox(key="x").value == "energy_j" and at.selectbox(key="y").value == "accuracy"
    assert at.multiselect(key="f_task").value == ["gpqa"]
    assert front_ids(at) == expected_ids(app.db, ViewState(x="energy_j", y="accuracy", filters={"task": ["gpqa"]}))
    fig = figure(at)
    assert fig["layout"]["xaxis"]["title"]["text"] == "energy_j (J per token)"
    assert fig["layout"]["yaxis"]["title"]["text"] == "accuracy"
    assert fig["layout"]["xaxis"]["type"] == "log" and fig["layout"]["yaxis"]["type"] == "linear"
    assert [t["type"] for t in fig["data"]] == ["scatter", "scatter"]  # 149 dominated, 3 on the front: SVG
    front_hover = " ".join(fig["data"][1]["text"])
    assert "accuracy source: " in front_hover and "Table" in front_hover
    assert at.query_params["x"] == "energy_j" and at.query_params["y"] == "accuracy" and at.query_params["task"] == "gpqa"
    assert any(b.proto.label == "Download the front as CSV" for b in at.get("download_button"))
    # the runs without a published accuracy are counted and named, not dropped silently
    notes = shown(" ".join(c.value for c in at.caption))
    assert "runs lack accuracy (not measured): " in notes and "Qwen/Qwen3-235B-A22B-Thinking-2507-FP8" in notes
    table = at.dataframe[0].value
    assert list(table.columns[:8]) == ["model", "hardware", "precision", "batch_size", "num_gpus", "task", "energy_j",
                                       "accuracy"]
    assert "accuracy_source" in table.columns and table["accuracy_source"].notna().all()


def test_parallel_coordinates_are_drawn_on_request(app):
    at = app()
    assert len(at.get("plotly_chart")) == 1  # the front only: the WebGL parcoords wait to be asked for
    at.toggle(key="pc_show").set_value(True).run()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert [c["data"][0]["type"] for c in charts] == ["scatter", "parcoords"]
    labels = [d["label"] for d in charts[1]["data"][0]["dimensions"]]
    assert labels[:2] == ["energy_j (J per token)", "accuracy"]


def test_a_task_without_accuracy_is_pointed_at_its_own_quality_metric(app):
    at = app({"x": "energy_j", "y": "accuracy", "task": "lm-arena-chat"})
    assert any("quality metric is arena_score" in shown(w.value) for w in at.warning)
    at = app({"x": "energy_j", "y": "arena_score", "task": "lm-arena-chat"})
    notes = shown(" ".join(c.value for c in at.caption))
    assert "lack arena_score (not measured)" in notes and "Qwen/Qwen3-8B" in notes
    assert figure(at)["layout"]["yaxis"]["title"]["text"] == "arena_score (Elo)"


def test_changing_objective_filters_group_and_log_updates_the_front(app):
    at = app()
    at.selectbox(key="y").set_value("throughput").run()
    state = ViewState(y="throughput", filters={"task": ["gpqa"]})
    assert front_ids(at) == expected_ids(app.db, state)
    assert at.radio(key="dir_throughput").value == "max"  # preset from the registry
    assert figure(at)["layout"]["yaxis"]["title"]["text"] == "throughput (token/s)"

    at.multiselect(key="f_hardware").set_value(["H100"]).run()
    at.select_slider(key="r_batch_size").set_range(8, 512).run()
    state.filters.update({"hardware": ["H100"], "batch_size": {"min": 8, "max": 512}})
    assert front_ids(at) == expected_ids(app.db, state)
    assert at.query_params["hardware"] == "H100" and at.query_params["batch_size"] == "8..512"

    at.radio(key="group").set_value("model").run()
    state.group = "model"
    shown = at.dataframe[0].value
    assert set(shown["run_id"]) == expected_ids(app.db, state)
    fig = figure(at)
    assert len(fig["data"]) == 1 + shown["model"].nunique()  # dominated + one line per model

    at.toggle(key="log_y").set_value(False).run()
    assert figure(at)["layout"]["yaxis"]["type"] == "linear"
    assert at.query_params.get("log") == "x"

    at.radio(key="dir_throughput").set_value("min").run()
    state.dirs = {"energy_j": "min", "throughput": "min"}
    assert front_ids(at) == expected_ids(app.db, state)
    assert at.query_params["dirs"] == "min,min"


def test_clearing_the_task_asks_for_one_instead_of_mixing_work_units(app):
    at = app()
    at.multiselect(key="f_task").set_value([]).run()
    assert not at.exception
    warnings = shown(" ".join(w.value for w in at.warning))
    assert "work unit" in warnings and "task" in warnings
    assert len(at.dataframe) == 0 and not figure_present(at)
    # metrics that are not per work unit may still be compared across tasks
    at.selectbox(key="x").set_value("power_w").run()
    at.selectbox(key="y").set_value("latency_ms").run()
    assert len(at.warning) == 0 and len(at.dataframe[0].value) > 0


def test_the_front_follows_the_store_and_the_settings_between_reruns(app):
    """The page keeps each view's front per store file, derived-metric settings and view, so a
    rerun that changes none of them does not query again; a run added to the file since shows on
    the next rerun, and a new price per GPU-hour rescales cost_usd."""
    at = app()
    cols = ["model", "hardware", "precision", "batch_size", "num_gpus", "task", "work_unit", "energy_j", "accuracy"]
    with Store(app.db) as s:
        best = s.execute(f"SELECT {', '.join(cols)} FROM runs WHERE task = 'gpqa' AND energy_j IS NOT NULL "
                         "ORDER BY accuracy DESC NULLS LAST LIMIT 1").df()
        s.add_runs(best.assign(run_id="test-cheaper-best", energy_j=best["energy_j"] / 10), source="test", kind="test")
    assert "test-cheaper-best" not in front_ids(at)
    at.run()
    assert front_ids(at) == expected_ids(app.db, ViewState(x="energy_j", y="accuracy", filters={"task": ["gpqa"]}))
    assert "test-cheaper-best" in front_ids(at)

    at = app({"x": "energy_j", "y": "cost_usd", "task": "gpqa"})
    cost = at.dataframe[0].value.set_index("run_id")["cost_usd"]
    at.number_input(key="price_per_gpu_hour").set_value(Settings().price_per_gpu_hour * 2).run()
    again = at.dataframe[0].value.set_index("run_id")["cost_usd"]
    assert len(cost) and list(again.index) == list(cost.index)
    assert again.to_numpy() == pytest.approx(2 * cost.to_numpy())


def test_the_sidebar_says_the_filters_in_force_in_words(app):
    """The filter widgets sit in a popover (drawn when opened); the filters in force stay in view."""
    def said(at) -> str:
        return next(c.value for c in at.sidebar.caption if c.value.startswith(("Runs where", "No filters"))).replace("\\", "")

    at = app({"x": "energy_j", "y": "accuracy", "task": "gpqa"})
    assert said(at) == "Runs where task is gpqa."
    at.multiselect(key="f_hardware").set_value(["H100", "B200"]).run()
    assert said(at) == "Runs where task is gpqa and hardware is H100 or B200."  # engine.filters' words
    at.multiselect(key="f_task").set_value([]).run()
    at.multiselect(key="f_hardware").set_value([]).run()
    assert said(at) == "No filters: every run."


def test_the_sidebar_counts_the_runs_the_store_holds_now(app):
    """The sidebar's count is kept in the session between reruns, and redone when the file changes."""
    import pandas as pd

    def count(at) -> int:
        said = next(c.value for c in at.sidebar.caption if c.value.startswith("Store "))
        return int(said.split("· ")[1].split(" runs")[0].replace(",", ""))

    at = app()
    with Store(app.db) as s:
        before = s.count(include_failed=False)
    assert count(at) == before
    at.run()
    assert count(at) == before
    with Store(app.db) as s:  # another writer: the Import page, a profiling sweep, the CLI
        s.add_runs(pd.DataFrame({"model": ["acme/new", "acme/newer"], "energy_j": [1.0, 2.0]}),
                   source="test", kind="test")
    at.run()
    assert count(at) == before + 2


def test_the_page_keeps_its_elements_in_place_whether_the_sidebar_counts_again_or_not(app):
    """A rerun that opens the store for the sidebar's count (the file changed) and one that keeps
    it draw the same elements in the main area: when the page's moved by one, the browser showed a
    stale copy of each beside the new one for a moment."""
    at = app()  # counted: the first run
    first = [type(e).__name__ for e in at.main]
    at.run()  # kept
    assert [type(e).__name__ for e in at.main] == first


def test_prices_per_hardware_in_the_sidebar_reprice_only_that_hardware(app):
    at = app({"x": "energy_j", "y": "cost_usd", "task": "gpqa", "group": "hardware"})  # a front per GPU
    table = at.dataframe[0].value.set_index("run_id")
    at.text_input(key="gpu_prices").set_value("B200=10, H10=1").run()
    again = at.dataframe[0].value.set_index("run_id")
    shared = table.index.intersection(again.index)
    b200 = table.loc[shared, "hardware"] == "B200"
    assert b200.any() and (~b200).any()
    ratio = again.loc[shared, "cost_usd"] / table.loc[shared, "cost_usd"]
    assert ratio[b200].to_numpy() == pytest.approx(10 / Settings().price_per_gpu_hour)
    assert ratio[~b200].to_numpy() == pytest.approx(1.0)
    assert any("No runs on H10" in w.value.replace("\\", "") for w in at.sidebar.warning)
    assert any("B200 $10.00" in c.value.replace("\\", "") for c in at.sidebar.caption)  # as Markdown: escaped
    at.text_input(key="gpu_prices").set_value("B200=ten").run()
    assert any("'ten' is not a number" in e.value.replace("\\", "") for e in at.sidebar.error)
    assert at.dataframe[0].value.set_index("run_id").loc[shared, "cost_usd"].to_numpy() == pytest.approx(
        table.loc[shared, "cost_usd"].to_numpy())  # not applied while the text is wrong


def test_a_link_carries_the_prices_a_cost_view_was_drawn_at(app):
    """The whole view lives in the URL: a view of cost_usd depends on the prices, so the link
    written back holds them, and opening it draws the same costs in a fresh session."""
    base = app({"x": "energy_j", "y": "cost_usd", "task": "gpqa", "group": "hardware"})
    costs = base.dataframe[0].value.set_index("run_id")["cost_usd"]
    base.text_input(key="gpu_prices").set_value("B200=10").run()
    base.number_input(key="price_per_gpu_hour").set_value(5.0).run()
    link = dict(base.query_params)
    assert link["gpu_prices"] == "B200=10" and link["price"] == "5"
    shared = app(link)  # a new session, as the person the link was sent to
    again = shared.dataframe[0].value.set_index("run_id")
    both = costs.index.intersection(again.index)
    ratio = again.loc[both, "cost_usd"] / costs.loc[both]
    b200 = again.loc[both, "hardware"] == "B200"
    assert b200.any() and (~b200).any()
    assert ratio[b200].to_numpy() == pytest.approx(10 / Settings().price_per_gpu_hour)
    assert ratio[~b200].to_numpy() == pytest.approx(5 / Settings().price_per_gpu_hour)
    assert shared.text_input(key="gpu_prices").value == "B200=10"
    bad = app({"x": "energy_j", "y": "cost_usd", "task": "gpqa", "price": "-3", "gpu_prices": "B200=x"})
    said = " ".join(i.value.replace("\\", "") for i in bad.sidebar.info)
    assert "The link's price '-3' is not a number of at least 0" in said and "The link's gpu_prices" in said
    assert bad.number_input(key="price_per_gpu_hour").value == Settings().price_per_gpu_hour


def figure_present(at: AppTest) -> bool:
    return len(at.get("plotly_chart")) > 0


def test_query_params_drive_the_initial_view(app):
    params = {"x": "throughput", "y": "itl_p99_ms", "task": "lm-arena-chat", "hardware": "B200",
              "precision": "fp8,bfloat16", "batch_size": "16..1024", "group": "hardware", "log": "y",
              "utm_source": "mail"}
    at = app(params)
    assert at.selectbox(key="x").value == "throughput" and at.selectbox(key="y").value == "itl_p99_ms"
    assert at.multiselect(key="f_precision").value == ["fp8", "bfloat16"]
    assert at.radio(key="group").value == "hardware"
    assert at.select_slider(key="r_batch_size").value == (16, 1024)
    assert at.toggle(key="log_y").value and not at.toggle(key="log_x").value
    state = ViewState(x="throughput", y="itl_p99_ms", group="hardware", filters={
        "task": ["lm-arena-chat"], "hardware": ["B200"], "precision": ["fp8", "bfloat16"],
        "batch_size": {"min": 16, "max": 1024}})
    assert front_ids(at) == expected_ids(app.db, state)
    assert "utm_source" not in at.query_params  # unknown params are ignored


def test_unknown_names_in_the_url_are_rejected_with_a_note(app):
    at = app({"x": "energy_j; DROP TABLE runs", "y": "itl_p90_ms", "task": "gpqa,nope", "z": "rowid"})
    notes = shown(" ".join(i.value for i in at.info))
    assert "unknown metric" in notes and "'nope'" in notes
    assert at.selectbox(key="x").value == "energy_j" and at.selectbox(key="z").value == "(none)"
    assert at.multiselect(key="f_task").value == ["gpqa"]
    with Store(app.db) as s:
        assert s.count() == 2017


def test_empty_states(app):
    at = app({"x": "energy_j", "y": "itl_p90_ms", "task": "gpqa", "hardware": "H100", "batch_size": "3072..4096"})
    assert any("No runs match" in i.value for i in at.info)
    assert any("(task is gpqa, hardware is H100 and batch_size between 3072 and 4096)" in shown(i.value) for i in at.info)
    at = app({"x": "energy_j", "y": "itl_p90_ms", "task": "text-to-image"})
    assert any("itl_p90_ms" in shown(w.value) and "None of the 638" in shown(w.value) for w in at.warning)


@pytest.mark.parametrize("page", ["explore", "recommend", "compare", "import", "explore after a failed sweep"])
def test_a_store_without_runs_says_where_runs_come_from(empty_db, monkeypatch, page):
    """On a store that holds no measured runs, the pages that show runs say how to bring some in
    (Import, Profile, the bundled data) instead of 'no runs match the filters' with no filter set;
    the pages that bring runs in are drawn as they are."""
    if page.endswith("failed sweep"):  # runs that failed are not measurements: nothing to draw either
        import pandas as pd

        with Store(empty_db) as s:
            s.add_runs(pd.DataFrame({"model": ["m"], "batch_size": [4096], "status": ["failed"]}), source="sweep", kind="csv")
        page = "explore"
    monkeypatch.setenv("PARETOSCOPE_DB", str(empty_db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    if page != "explore":
        at.switch_page(f"app_pages/{'import_runs' if page == 'import' else page}.py").run()
    assert not at.exception, at.exception
    said = " ".join(shown(i.value) for i in at.info)
    if page == "import":
        assert "holds no measured runs yet" not in said and at.get("file_uploader")
        return
    assert f"The store {empty_db} holds no measured runs yet" in said and said.endswith("with this command:")
    assert [c.value for c in at.code] == [f"python -m engine init --db {empty_db}"]
    assert "No runs match" not in said and not at.selectbox and not at.multiselect
    assert at.title[0].value == page.capitalize()
    assert {link.proto.label for link in at.get("page_link")} == {"Import runs", "Profile a model"}


def test_third_objective_as_colour_and_3d(app):
    at = app({"x": "energy_j", "y": "itl_p90_ms", "z": "throughput", "task": "gpqa"})
    state = ViewState(z="throughput", filters={"task": ["gpqa"]})
    assert front_ids(at) == expected_ids(app.db, state)
    fig = figure(at)
    assert fig["data"][1]["marker"]["colorbar"]["title"]["text"] == "throughput (token/s)"
    at.radio(key="z_mode").set_value("3d").run()
    fig = figure(at)
    assert {t["type"] for t in fig["data"]} == {"scatter3d"}
    assert fig["layout"]["scene"]["zaxis"]["title"]["text"] == "throughput (token/s)"
    assert at.query_params["zmode"] == "3d"


def test_a_link_range_of_nan_or_inf_is_named_not_matched_silently(seeded_db):
    """Issue 18 item 11, in a link: batch_size=nan..inf filtered every run out without a word."""
    from engine.explore import state_from_params

    with Store(seeded_db) as s:
        state, notes = state_from_params(s, {"x": "energy_j", "y": "itl_p90_ms", "task": "gpqa", "batch_size": "nan..inf"})
    assert "batch_size" not in state.filters
    assert notes == ["The link's batch_size range 'nan..inf' is not LO..HI of finite numbers; ignored."]


def test_a_metric_against_a_knob_draws_one_line_per_model(app):
    at = app({"x": "batch_size", "y": "energy_j", "task": "gpqa", "hardware": "H100", "group": "model"})
    fig = figure(at)
    with Store(app.db) as s:
        runs = s.query(["model", "batch_size", "energy_j"], {"task": ["gpqa"], "hardware": ["H100"]}).dropna()
    best = runs.groupby(["model", "batch_size"])["energy_j"].min()
    assert sorted(t["name"] for t in fig["data"]) == sorted(runs["model"].unique())
    for t in fig["data"]:  # each line: the lowest energy per batch size of that model, in batch order
        expected = best.loc[t["name"]]
        assert plotly_values(t["x"]) == list(expected.index)
        assert plotly_values(t["y"]) == pytest.approx(list(expected.values))
    assert fig["layout"]["xaxis"]["title"]["text"] == "batch_size"
    assert at.query_params["x"] == "batch_size"
    # back to a metric: the front again
    at.selectbox(key="x").set_value("itl_p90_ms").run()
    assert not at.exception and any("on the front" in c.value for c in at.caption)
    # a text knob is a categorical axis
    at = app({"x": "precision", "y": "energy_j", "task": "gpqa", "hardware": "H100", "group": "model"})
    assert figure(at)["layout"]["xaxis"]["type"] == "category"


def test_many_dominated_runs_are_drawn_as_a_density_behind_an_svg_front(tmp_path, monkeypatch):
    """Past DENSITY_FROM dominated runs the figure draws all of them as one shaded layer, each
    cell's count in its hover data, said in a caption, and the front stays SVG over it (each SVG
    marker cost the page 0.15-0.3 ms in chromium; engine.density)."""
    from bench.bench_explore import TOKEN_TASKS, build_store
    from engine.density import DENSITY_FROM
    db = tmp_path / "runs.duckdb"
    build_store(db, 10_000)
    monkeypatch.setenv("PARETOSCOPE_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"x": "energy_j", "y": "itl_p90_ms", "task": ",".join(TOKEN_TASKS)})
    at.run()
    assert not at.exception, at.exception
    fig = figure(at)
    assert [t["type"] for t in fig["data"]] == ["heatmap", "scatter"]
    dominated, front = fig["data"]
    assert len(plotly_values(front["x"])) == len(at.dataframe[0].value)
    n = int(dominated["name"].split("(")[1].split(")")[0].replace(",", ""))
    assert n > DENSITY_FROM
    counts = plotly_values(dominated["customdata"])
    assert sum(map(sum, counts)) == n  # linear axes: every dominated run counted
    assert dominated["hovertemplate"].startswith("runs in this cell: %{customdata:,}")
    assert f"The {n:,} dominated runs are drawn as a shaded density" in " ".join(c.value for c in at.caption)
    # a handful of dominated runs stay points, each named on hover and selection
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"x": "energy_j", "y": "itl_p90_ms", "task": TOKEN_TASKS[0], "hardware": "H100",
                            "model": "synth/model-1"})
    at.run()
    assert not at.exception, at.exception
    assert [t["type"] for t in figure(at)["data"]] == ["scatter", "scatter"]

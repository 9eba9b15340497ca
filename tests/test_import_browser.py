"""End to end in a real browser, one server for the module on one seeded store, with a profiling
sweep writing to it from the start (issue 15: the pages keep working while it writes): upload a CSV
on the Import page, commit, find its runs, then delete that batch the way a person does (pick it,
Delete, confirm) and see the message; a page import and a command-line import at once take turns;
the sweep's runs show in Explore on refresh."""
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import expect

from engine.store import Store
from tests.browser import chromium_page, streamlit_server, wait_idle
from tests.conftest import ROOT

FIXTURES = Path(__file__).parent / "fixtures"
SHOTS = ROOT / "bench" / "out"


@pytest.fixture(scope="module")
def served(_seeded_template, tmp_path_factory):
    """(url, store, sweep process, sweep id): the app serving a private copy of the seeded store,
    shared by this module's tests (each touches only the runs it brings), and a two-configuration
    sweep started at once (its runs land while the tests use the pages)."""
    db = tmp_path_factory.mktemp("import-browser") / "runs.duckdb"
    shutil.copy(_seeded_template, db)
    sid = "browser-" + db.parent.name[-8:]
    with streamlit_server(db) as url:
        sweep = subprocess.Popen([sys.executable, "-m", "engine", "profile", "--workload", "digits-mlp", "--grid",
                                  "batch_size=1,2", "--repeats", "2", "--min-time", "0.05", "--warmup", "0",
                                  "--sweep-id", sid, "--db", str(db)], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        try:
            yield url, db, sweep, sid
        finally:
            if sweep.poll() is None:
                sweep.kill()
                sweep.wait()


def test_upload_csv_commit_see_runs_and_delete_the_batch(served):
    url, db, _, _ = served
    with chromium_page(height=1600) as page:
        page.goto(url)
        page.get_by_role("link", name="Import").click()
        page.get_by_role("heading", name="Import runs").wait_for()
        wait_idle(page)
        page.locator("input[type=file]").first.set_input_files(str(FIXTURES / "sweep.csv"))
        page.get_by_text("detected format").first.wait_for()
        page.get_by_text("4 rows").wait_for()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "import_page.png"), full_page=True)
        page.get_by_role("button", name="Commit import").click()
        page.get_by_text("4 runs added").wait_for()
        page.screenshot(path=str(SHOTS / "import_done.png"), full_page=True)
        # the batch is listed on the page, and the runs are in the store the Explore page reads
        page.get_by_text("sweep.csv").first.wait_for()
        lines = _runs_of("acme/tiny-lm-3b", db)
        assert len(lines) == 2 and "acme/tiny-lm-3b" in lines[1] and "7400.0" in lines[1]  # 7.4 GB -> MB
        with Store(db) as s:
            batch = s.imports().query("source == 'sweep.csv'").import_id.iloc[0]
        pick(page, "Batch to delete", batch)
        page.get_by_role("button", name="Delete batch…").click()
        page.get_by_text(f"Delete batch {batch} (csv, sweep.csv) and remove its 4 runs?").wait_for()
        page.screenshot(path=str(SHOTS / "import_delete_confirm.png"), full_page=True)
        with Store(db) as s:
            assert batch in set(s.imports().import_id)  # asking deletes nothing
        page.get_by_role("button", name=f"Yes, delete batch {batch}").click()
        page.get_by_text(f"Deleted batch {batch} and its 4 runs.").wait_for()
        expect(page.get_by_role("button", name=f"Yes, delete batch {batch}")).to_have_count(0)
        page.screenshot(path=str(SHOTS / "import_deleted.png"), full_page=True)
        page.get_by_role("link", name="Explore").click()
        page.get_by_role("heading", name="Explore").wait_for()
    with Store(db) as s:
        assert batch not in set(s.imports().import_id) and s.count({"source": ["sweep.csv"]}) == 0


def test_page_and_cli_imports_take_turns_and_the_sweep_shows_on_refresh(served, tmp_path):
    """The Import page takes a commit while a command-line import writes (the two take turns, or one
    says the store is busy), and Explore, opened again on the sweep's runs, shows them as they land."""
    url, db, sweep, sid = served
    mine = tmp_path / "page_runs.csv"
    mine.write_text("model,batch_size,energy_j\npage/m-1,1,0.5\npage/m-2,2,0.25\npage/m-3,4,0.125\n")
    big = tmp_path / "big.csv"
    duckdb.execute(f"""COPY (SELECT 'cli/model-' || (i % 13) AS model, 1 + i % 64 AS batch_size, i * 1e-6 AS energy_j,
        (i % 1000) * 0.1 AS latency_ms FROM range(20000) t(i)) TO '{big}' (HEADER)""")
    with chromium_page(height=1600) as page:
        page.goto(url + "/import")
        page.get_by_role("heading", name="Import runs").wait_for()
        wait_idle(page)
        page.locator("input[type=file]").first.set_input_files(str(mine))
        page.get_by_text("3 rows").wait_for()
        cli = subprocess.Popen([sys.executable, "-m", "engine", "import", str(big), "--db", str(db)],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        page.get_by_role("button", name="Commit import").click()  # the page's import and the CLI's at once
        page.get_by_text("3 runs added").or_(page.get_by_text("is busy")).first.wait_for(timeout=120_000)
        page_ok = page.get_by_text("3 runs added").count() > 0
        out, err = cli.communicate(timeout=600)
        assert cli.returncode == 0 or "is busy" in err, err
        assert page_ok or cli.returncode == 0
        deadline = time.monotonic() + 300
        while True:  # Explore on the sweep's runs, opened again until both have landed
            ended = sweep.poll() is not None  # before the page opens: a page opened after the end shows both
            page.goto(f"{url}/?task=digits-mlp&source=profile:{sid}&x=accuracy&y=latency_ms")
            landed = page.get_by_text(re.compile(r"\b1 run match|runs match"))  # one run has landed, or both
            landed.or_(page.get_by_text("is not in the store; ignored")).first.wait_for()  # before the first lands
            expect(page.locator('[data-testid="stException"]')).to_have_count(0)
            if page.get_by_text("2 runs match").count() or ended:
                break
            assert time.monotonic() < deadline, "the sweep's runs never showed"
        log, _ = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, log
        page.get_by_text("2 runs match").wait_for()
    with Store(db) as s:
        assert s.count({"source": [f"profile:{sid}"]}) == 2
        assert s.count({"source": ["page_runs.csv"]}) == (3 if page_ok else 0)
        assert s.count({"source": ["big.csv"]}) == (20_000 if cli.returncode == 0 else 0)
        n, distinct = s.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchall()[0]
        assert n == distinct


def pick(page, label: str, text: str) -> None:
    """Choose the option holding ``text`` in a selectbox: typing into its combobox opens the list
    filtered to it (a click only focuses it)."""
    box = page.get_by_label(label).first
    box.click()
    box.press_sequentially(text)
    page.get_by_role("option").filter(has_text=text).first.click()


def _runs_of(model, db) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "engine", "runs", "--db", str(db), "--filter", f"model={model}",
                          "--format", "csv"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()

"""End to end in a real browser: upload a CSV on the Import page, commit, find its runs; then
delete that batch the way a person does (pick it, Delete, confirm) and see the message."""
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from engine.store import Store
from tests.browser import chromium_page, streamlit_server
from tests.conftest import ROOT

FIXTURES = Path(__file__).parent / "fixtures"
SHOTS = ROOT / "bench" / "out"


def test_upload_csv_commit_see_runs_and_delete_the_batch(seeded_db):
    with streamlit_server(seeded_db) as url, chromium_page(height=1600) as page:
        page.goto(url)
        page.get_by_role("link", name="Import").click()
        page.get_by_role("heading", name="Import runs").wait_for()
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
        lines = _runs_of("acme/tiny-lm-3b", seeded_db)
        assert len(lines) == 2 and "acme/tiny-lm-3b" in lines[1] and "7400.0" in lines[1]  # 7.4 GB -> MB
        with Store(seeded_db) as s:
            batch = s.imports().query("source == 'sweep.csv'").import_id.iloc[0]
        pick(page, "Batch to delete", batch)
        page.get_by_role("button", name="Delete batch…").click()
        page.get_by_text(f"Delete batch {batch} (csv, sweep.csv) and remove its 4 runs?").wait_for()
        page.screenshot(path=str(SHOTS / "import_delete_confirm.png"), full_page=True)
        with Store(seeded_db) as s:
            assert batch in set(s.imports().import_id)  # asking deletes nothing
        page.get_by_role("button", name=f"Yes, delete batch {batch}").click()
        page.get_by_text(f"Deleted batch {batch} and its 4 runs.").wait_for()
        expect(page.get_by_role("button", name=f"Yes, delete batch {batch}")).to_have_count(0)
        page.screenshot(path=str(SHOTS / "import_deleted.png"), full_page=True)
        page.get_by_role("link", name="Explore").click()
        page.get_by_role("heading", name="Explore").wait_for()
    with Store(seeded_db) as s:
        assert batch not in set(s.imports().import_id) and s.count({"source": ["sweep.csv"]}) == 0
    assert len(_runs_of("acme/tiny-lm-3b", seeded_db)) <= 1  # the header only: its runs went with the batch


def pick(page, label: str, text: str, tries: int = 4) -> None:
    """Choose the option holding ``text`` in a selectbox; a rerun that lands while the list is
    open closes it, so wait for the app to settle and try again."""
    for attempt in range(tries):
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached")
        page.get_by_label(label).first.click()
        option = page.get_by_role("option").filter(has_text=text).first
        try:
            option.click(timeout=15_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"no option '{text}' in '{label}'")


def _runs_of(model, db) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "engine", "runs", "--db", str(db), "--filter", f"model={model}",
                          "--format", "csv"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()

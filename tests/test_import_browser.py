"""End to end in a real browser: upload a CSV on the Import page, commit, find its runs."""
import subprocess
import sys
from pathlib import Path

from tests.browser import chromium_page, streamlit_server
from tests.conftest import ROOT

FIXTURES = Path(__file__).parent / "fixtures"
SHOTS = ROOT / "bench" / "out"


def test_upload_csv_commit_and_see_runs(seeded_db):
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
        page.get_by_role("link", name="Explore").click()
        page.get_by_role("heading", name="Explore").wait_for()
    out = subprocess.run([sys.executable, "-m", "engine", "runs", "--db", str(seeded_db), "--filter",
                          "model=acme/tiny-lm-3b", "--format", "csv"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and "acme/tiny-lm-3b" in lines[1] and "7400.0" in lines[1]  # 7.4 GB -> MB

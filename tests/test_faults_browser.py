"""Faults as a person sees them in the browser (issue 15): a damaged store is named with how to
rebuild it and left alone; the app stays usable while a sweep and a command-line import write,
a page import waits its turn, and the new runs show on refresh."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
from playwright.sync_api import expect

from engine.store import Store
from tests.browser import chromium_page, streamlit_server
from tests.conftest import ROOT
from tests.test_faults import _damage

FIXTURES = Path(__file__).parent / "fixtures"
SHOTS = ROOT / "bench" / "out"


def test_the_app_names_a_damaged_store_and_how_to_rebuild_it(seeded_db):
    _damage(seeded_db, "truncated-half")
    raw = seeded_db.read_bytes()
    with streamlit_server(seeded_db) as url, chromium_page() as page:
        for path in ("", "/import", "/profile", "/recommend"):
            page.goto(url + path)
            msg = page.get_by_text(f"The store {seeded_db} is damaged")
            msg.wait_for()
            expect(page.get_by_text(f"python -m engine init --db {seeded_db}")).to_have_count(1)
            expect(page.locator('[data-testid="stException"]')).to_have_count(0)
            if path == "":
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / "damaged_store.png"), full_page=True)
    assert seeded_db.read_bytes() == raw and not Path(str(seeded_db) + ".wal").exists()


def test_pages_keep_working_while_a_sweep_and_a_cli_import_write(seeded_db, tmp_path):
    big = tmp_path / "big.csv"
    duckdb.execute(f"""COPY (SELECT 'cli/model-' || (i % 13) AS model, 1 + i % 64 AS batch_size, i * 1e-6 AS energy_j,
        (i % 1000) * 0.1 AS latency_ms FROM range(200000) t(i)) TO '{big}' (HEADER)""")
    sweep = subprocess.Popen([sys.executable, "-m", "engine", "profile", "--workload", "digits-mlp", "--grid",
                              "batch_size=1,2,4,8", "--repeats", "2", "--min-time", "0.3", "--warmup", "0",
                              "--db", str(seeded_db)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        with streamlit_server(seeded_db) as url, chromium_page(height=1600) as page:
            page.goto(url)  # Explore while the sweep writes
            page.get_by_text("runs match").first.wait_for()
            page.goto(url + "/import")
            page.get_by_role("heading", name="Import runs").wait_for()
            page.locator("input[type=file]").first.set_input_files(str(FIXTURES / "sweep.csv"))
            page.get_by_text("4 rows").wait_for()
            cli = subprocess.Popen([sys.executable, "-m", "engine", "import", str(big), "--db", str(seeded_db)],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            page.get_by_role("button", name="Commit import").click()  # the page's import and the CLI's at once
            page.get_by_text("4 runs added").or_(page.get_by_text("is busy")).first.wait_for(timeout=120_000)
            page_ok = page.get_by_text("4 runs added").count() > 0
            out, err = cli.communicate(timeout=600)
            assert cli.returncode == 0 or "is busy" in err, err
            assert page_ok or cli.returncode == 0
            log, _ = sweep.communicate(timeout=600)
            assert sweep.returncode == 0, log
            source = next(ln.split("source '")[1].split("'")[0] for ln in log.splitlines() if "stored as source" in ln)
            page.goto(f"{url}/?task=digits-mlp&source={source}&x=accuracy&y=latency_ms")
            page.get_by_text("4 runs match").wait_for()  # the sweep's runs, on refresh
            expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    with Store(seeded_db) as s:
        assert s.count({"source": [source]}) == 4
        assert s.count({"source": ["sweep.csv"]}) == (4 if page_ok else 0)
        assert s.count({"source": ["big.csv"]}) == (200_000 if cli.returncode == 0 else 0)
        n, distinct = s.con.execute("SELECT count(*), count(DISTINCT run_id) FROM runs").fetchall()[0]
        assert n == distinct

"""The Import page in Streamlit's AppTest: limit stated, batches listed and deletable."""
from streamlit.testing.v1 import AppTest

from engine.ingest import import_files
from engine.store import Store
from tests.conftest import ROOT
from tests.test_import_adapters import FX

PAGE = str(ROOT / "app_pages" / "import_runs.py")


def test_page_states_limit_lists_and_deletes_batches(seeded_db, monkeypatch):
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    with Store(seeded_db) as s:
        [done] = import_files(s, [FX / "sweep.csv"])
        before = s.count()
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "Import runs"
    assert "200 MB" in at.caption[0].value
    assert any("sweep.csv" in str(df.value.to_csv()) for df in at.dataframe)
    at.selectbox[0].select(done.result.import_id).run()
    [b for b in at.button if b.label == "Delete batch"][0].click().run()
    assert not at.exception
    with Store(seeded_db) as s:
        assert s.count() == before - 4 and done.result.import_id not in set(s.imports()["import_id"])

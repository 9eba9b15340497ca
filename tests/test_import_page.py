"""The Import page in Streamlit's AppTest: limit stated, batches listed, and a delete that names the
batch it was asked for, asks first, says what it did, and refuses a batch another tab deleted."""
from streamlit.testing.v1 import AppTest

from engine.ingest import import_files
from engine.store import Store
from tests.conftest import ROOT, shown
from tests.test_import_adapters import FX

PAGE = str(ROOT / "app_pages" / "import_runs.py")


def _tab() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    return at


def _button(at: AppTest, label: str):
    [b] = [b for b in at.button if b.label == label]
    return b


def _batches(db) -> list[str]:
    with Store(db) as s:
        return s.imports()["import_id"].tolist()


def test_page_states_limit_lists_and_deletes_after_confirmation(seeded_db, monkeypatch):
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    with Store(seeded_db) as s:
        [done] = import_files(s, [FX / "sweep.csv"])
        before = s.count()
    iid = done.result.import_id
    at = _tab()
    assert at.title[0].value == "Import runs"
    assert "200 MB" in at.caption[0].value
    assert any("sweep.csv" in str(df.value.to_csv()) for df in at.dataframe)
    assert at.selectbox(key="victim").value is None  # no batch is picked for the person
    at.selectbox(key="victim").select(iid).run()
    _button(at, "Delete batch…").click().run()
    assert any(iid in shown(w.value) and "cannot be undone" in shown(w.value) for w in at.warning)  # asks, naming the batch
    assert iid in _batches(seeded_db)  # nothing deleted yet
    _button(at, "Cancel").click().run()
    assert iid in _batches(seeded_db) and not at.warning
    _button(at, "Delete batch…").click().run()
    _button(at, f"Yes, delete batch {iid}").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == [f"Deleted batch {iid} and its 4 runs."]  # the message is seen
    with Store(seeded_db) as s:
        assert s.count() == before - 4 and iid not in set(s.imports()["import_id"])


def test_a_batch_deleted_in_another_tab_is_refused_never_another(seeded_db, monkeypatch):
    """Two tabs pick batch B; tab A deletes it; tab B's Delete must not fall back to the seed batch."""
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    with Store(seeded_db) as s:
        [done] = import_files(s, [FX / "sweep.csv"])
    b = done.result.import_id
    others = [i for i in _batches(seeded_db) if i != b]
    tab_a, tab_b, tab_c = _tab(), _tab(), _tab()
    for tab in (tab_a, tab_b, tab_c):
        tab.selectbox(key="victim").select(b).run()
    _button(tab_c, "Delete batch…").click().run()  # tab C is already at the confirmation
    _button(tab_a, "Delete batch…").click().run()
    _button(tab_a, f"Yes, delete batch {b}").click().run()
    assert _batches(seeded_db) == others

    _button(tab_b, "Delete batch…").click().run()
    assert not tab_b.exception
    assert any(f"Batch {b} is no longer in the store" in shown(e.value) for e in tab_b.error)
    assert not any("Yes, delete" in x.label for x in tab_b.button)
    _button(tab_c, f"Yes, delete batch {b}").click().run()
    assert not tab_c.exception
    assert any(f"No import batch '{b}'" in shown(e.value) and "nothing was deleted" in shown(e.value) for e in tab_c.error)
    assert _batches(seeded_db) == others  # the seed batches are all still there


def test_an_uploaded_table_is_read_once_for_preview_edits_and_commit(seeded_db, monkeypatch):
    """The page reads a table file once per upload: its reruns (each edit of the mapping) and the
    commit reuse that read instead of parsing the file again (issue: a file was parsed for the
    preview, again on commit, and read a third time for its hash)."""
    from engine.importers import tabular

    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    reads = []
    real = tabular.read_table
    monkeypatch.setattr(tabular, "read_table", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    with Store(seeded_db) as s:
        before = s.count()
    at = _tab()
    at.file_uploader(key="uploads").set_value(("sweep.csv", (FX / "sweep.csv").read_bytes(), "text/csv")).run()
    assert not at.exception and not at.error
    assert any("acme/tiny-lm-1b" in df.value.to_csv() for df in at.dataframe)  # the preview
    at.run()  # a rerun, as an edit of the mapping makes
    _button(at, "Commit import").click().run()
    assert not at.exception and not at.error
    assert [shown(s.value) for s in at.success] == [f"sweep.csv (csv): 4 runs added as batch {_batches(seeded_db)[-1]}."]
    assert len(reads) == 1
    with Store(seeded_db) as s:
        assert s.count() == before + 4


def test_the_sidebar_counts_the_runs_an_import_just_added(seeded_db, monkeypatch):
    """The sidebar is drawn before the page runs; when the page writes to the store (a commit, a
    delete), the count is said again in the same rerun, not one click later."""
    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))

    def count(at) -> int:
        said = next(c.value for c in at.sidebar.caption if c.value.startswith("Store "))
        return int(said.split("· ")[1].split(" runs")[0].replace(",", ""))

    with Store(seeded_db) as s:
        before = s.count(include_failed=False)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/import_runs.py").run()
    assert not at.exception and count(at) == before
    at.file_uploader(key="uploads").set_value(("sweep.csv", (FX / "sweep.csv").read_bytes(), "text/csv")).run()
    _button(at, "Commit import").click().run()
    assert not at.exception and at.success
    assert count(at) == before + 4
    at.run()
    assert count(at) == before + 4

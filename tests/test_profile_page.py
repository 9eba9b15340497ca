"""The Profile page (AppTest): the choice of where a sweep runs reaches the sweep process."""
import socket
import time

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, shown


def test_profile_page_runs_on_a_ray_cluster_it_names(monkeypatch, empty_db):
    """Run on: Ray cluster at ... reaches the sweep process (an unreachable one: its sentence shows)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PARETOSCOPE_DB", str(empty_db))
    at = AppTest.from_file(str(ROOT / "app_pages" / "profile.py"), default_timeout=60).run()
    at.radio(key="run_on").set_value("Ray cluster").run()
    at.text_input(key="ray_at").set_value(f"127.0.0.1:{port}").run()
    assert any("spread over the cluster's nodes" in m.value for m in at.markdown)
    next(b for b in at.button if b.label == "Start").click().run()
    deadline = time.monotonic() + 60
    while not at.error and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    assert at.error and f"Cannot reach a Ray cluster at 127.0.0.1:{port}" in shown(at.error[0].value)

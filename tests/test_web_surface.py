"""The web surface (issue 15): `make run` serves on localhost only, and nothing a browser sends can
make the server import Python code. Streamlit has no login, so both matter.

To extend when a page gains a new way to name code or models (an `hf:MODEL` field, a folder),
add the names a browser could send to PROBES and the page's URL parameters to PAGES."""
from __future__ import annotations

import os
import pickle
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine.ingest import read_files
from engine.profiler import launch
from engine.profiler.workloads import BUILTIN
from tests.browser import _free_port, chromium_page, streamlit_server
from tests.conftest import ROOT

PROBE_MODULE = "tests.evil_probe"
PROBES = [f"{PROBE_MODULE}:factory", f"--model={PROBE_MODULE}:factory", f"--model {PROBE_MODULE}:factory",
          str(ROOT / "tests" / "evil_probe.py"), "../tests/evil_probe", "digits-mlp --model tests.evil_probe:factory"]
# every page, with every URL parameter a page reads or might read, set to a probe
PAGES = {"": ["task", "x", "y", "z", "source", "model", "workload"], "import": ["format", "workload"],
         "profile": ["workload", "model", "grid"], "recommend": ["task", "workload", "model"]}


@pytest.fixture
def probe(tmp_path, monkeypatch) -> Path:
    marker = tmp_path / "imported.marker"
    monkeypatch.setenv("PARETOSCOPE_PROBE", str(marker))
    sys.modules.pop(PROBE_MODULE, None)
    return marker


def _addresses() -> list[str]:
    """This machine's addresses other than loopback."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if not a.startswith("127.") and ":" not in a]


def test_make_run_serves_on_localhost_only(empty_db):
    """Start the server exactly as `make run` does: it answers on 127.0.0.1 and nowhere else."""
    dry = subprocess.run(["make", "-n", "run", "PYTHON=" + sys.executable], cwd=ROOT, capture_output=True,
                         text=True).stdout
    [line] = [ln for ln in dry.splitlines() if "streamlit run" in ln]
    assert "--server.address localhost" in line
    port = _free_port()
    argv = shlex.split(line.split(" ", 1)[1])  # drop the PARETOSCOPE_DB=... assignment
    argv = [sys.executable, "-m", "streamlit", *argv[1:]]
    argv[argv.index("--server.port") + 1] = str(port)
    env = dict(os.environ, PARETOSCOPE_DB=str(empty_db))
    proc = subprocess.Popen(argv + ["--server.headless", "true"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "streamlit did not start"
                time.sleep(0.3)
        for address in _addresses():
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, port))
    finally:
        proc.terminate()
        proc.wait(30)
    assert "address" not in (ROOT / ".streamlit" / "config.toml").read_text()  # nothing widens it


def test_readme_explains_reaching_a_remote_dashboard_through_ssh():
    text = (ROOT / "README.md").read_text()
    assert "ssh -N -L 8501:localhost:8501" in text and "no login" in text


@pytest.mark.parametrize("name", PROBES)
def test_a_sweep_started_from_a_page_takes_registry_workloads_only(tmp_path, probe, name):
    with pytest.raises(ValueError, match="the pages run the built-in workloads only"):
        launch.start(tmp_path / "runs.duckdb", name, {"precision": ["float32"], "batch_size": [1]})
    assert not (tmp_path / "sweeps").exists() and not probe.exists()


def test_grid_values_from_a_page_cannot_become_options():
    """Every grid value travels as KEY=VALUE in one argument, so it can never be read as --model."""
    args = launch.grid_args({"precision": ["float32 --model tests.evil_probe:factory"], "batch_size": ["--model=x"]})
    assert all(a == "--grid" or not a.startswith("-") for a in args)


class _Boom:
    def __reduce__(self):  # unpickling this runs code: it imports the probe module
        return (__import__, (PROBE_MODULE,))


@pytest.mark.parametrize("name", ["runs.pkl", "runs.parquet", "runs.json", "benchmark.json", "emissions.csv",
                                  "model.pt", "results.jsonl"])
def test_uploaded_files_are_read_as_data_never_unpickled(tmp_path, probe, name):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(_Boom()))
    try:
        read_files([path])
    except ValueError as e:
        assert name in str(e) and "\n" not in str(e)
    assert not probe.exists()


def test_no_page_imports_python_code_named_in_the_browser(seeded_db, probe):
    with streamlit_server(seeded_db, env={"PARETOSCOPE_PROBE": str(probe)}) as url, chromium_page() as page:
        for path, params in PAGES.items():
            for value in PROBES[:2]:
                query = "&".join(f"{p}={urllib.request.quote(value)}" for p in params)
                page.goto(f"{url}/{path}?{query}")
                page.locator('[data-testid="stApp"]').wait_for()
                page.locator('[data-testid="stMain"] h1').first.wait_for()
                assert page.locator('[data-testid="stException"]').count() == 0, (path, value)
        # the Profile page offers the registry's workloads and nothing else
        page.goto(f"{url}/profile")
        page.get_by_text("configurations").first.wait_for()
        page.get_by_role("combobox", name="Workload").click()
        offered = {o.strip() for o in page.get_by_role("option").all_inner_texts()}
        assert offered == set(BUILTIN)
    assert not probe.exists()

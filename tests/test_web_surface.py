"""The web surface (issue 15): `make run` serves on localhost only, and nothing a browser sends can
make the server import Python code. Streamlit has no login, so both matter.

One server for the module, started exactly as `make run` starts it. To extend when a page gains a
new way to name code or models, add the names a browser could send to PROBES and the page's URL
parameters to PAGES."""
from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from engine.ingest import read_files
from engine.profiler import launch
from engine.profiler.workloads import BUILTIN, get_workload
from tests.browser import _free_port, chromium_page
from tests.conftest import ROOT

PROBE_MODULE = "tests.evil_probe"
PROBES = [f"{PROBE_MODULE}:factory", f"--model={PROBE_MODULE}:factory", f"--model {PROBE_MODULE}:factory",
          str(ROOT / "tests" / "evil_probe.py"), "../tests/evil_probe", "digits-mlp --model tests.evil_probe:factory"]
# the pages that read URL parameters or name workloads, with every parameter they read (and a few
# they might) set to a probe; Import and Recommend read none
PAGES = {"explore": ["task", "x", "y", "z", "source", "model", "workload", "price", "carbon", "gpu_prices"], "compare": ["runs"],
         "profile": ["workload", "model"]}


@pytest.fixture
def probe(tmp_path, monkeypatch) -> Path:
    """The file tests/evil_probe.py creates if anything imports it in this process."""
    marker = tmp_path / "imported.marker"
    monkeypatch.setenv("PARETOSCOPE_PROBE", str(marker))
    sys.modules.pop(PROBE_MODULE, None)
    return marker


@pytest.fixture(scope="module")
def served(_seeded_template, tmp_path_factory):
    """(url, port, marker): the app started as `make run` starts it, on a seeded store; the marker
    appears if the server ever imports the probe module."""
    dry = subprocess.run(["make", "-n", "run", "PYTHON=" + sys.executable], cwd=ROOT, capture_output=True,
                         text=True).stdout
    [line] = [ln for ln in dry.splitlines() if "streamlit run" in ln]
    assert "--server.address localhost" in line
    folder = tmp_path_factory.mktemp("served")
    db, marker = folder / "runs.duckdb", folder / "imported.marker"
    shutil.copy(_seeded_template, db)
    port = _free_port()
    argv = shlex.split(line.split(" ", 1)[1])  # drop the PARETOSCOPE_DB=... assignment
    argv = [sys.executable, "-m", "streamlit", *argv[1:], "--server.headless", "true"]
    argv[argv.index("--server.port") + 1] = str(port)
    env = dict(os.environ, PARETOSCOPE_DB=str(db), PARETOSCOPE_PROBE=str(marker))
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "streamlit did not start"
                time.sleep(0.3)
        yield url, port, marker
    finally:
        proc.terminate()
        proc.wait(30)


def _addresses() -> list[str]:
    """This machine's addresses other than loopback."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if not a.startswith("127.") and ":" not in a]


def test_make_run_serves_on_localhost_only(served):
    """It answers on 127.0.0.1 (checked as it started) and on no other address of this machine."""
    _, port, _ = served
    for address in _addresses():
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(2)
            s.connect((address, port))
    assert "address" not in (ROOT / ".streamlit" / "config.toml").read_text()  # nothing widens it


def test_the_server_watches_no_source_files():
    """Read with Streamlit's own config loader, in the checkout, as `make run` starts it: the file
    watcher is off. It walked every imported module in each new session, and with the venv inside
    the checkout Explore took twice as long in chromium (.streamlit/config.toml)."""
    out = subprocess.run([sys.executable, "-c", "import streamlit.config as c; print(c.get_option('server.fileWatcherType'))"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert out[-1] == "none"


def test_readme_explains_reaching_a_remote_dashboard_through_ssh():
    text = (ROOT / "README.md").read_text()
    assert "ssh -N -L 8501:localhost:8501" in text and "no login" in text


def test_a_sweep_started_from_a_page_takes_registry_workloads_only(tmp_path, probe):
    for name in PROBES:
        with pytest.raises(ValueError, match="the pages run the built-in workloads only"):
            launch.start(tmp_path / "runs.duckdb", name, {"precision": ["float32"], "batch_size": [1]})
    assert not (tmp_path / "sweeps").exists() and not probe.exists()


def test_grid_values_from_a_page_cannot_become_options():
    """Every grid value travels as KEY=VALUE in one argument, so it can never be read as --model."""
    args = launch.grid_args({"precision": ["float32 --model tests.evil_probe:factory"], "batch_size": ["--model=x"]})
    assert all(a == "--grid" or not a.startswith("-") for a in args)


def test_a_model_folder_from_a_page_is_read_as_data(tmp_path, probe):
    """hf:FOLDER (the Profile page's model field) with code beside its config: transformers is never
    allowed to run it (trust_remote_code stays off), so the folder is refused and nothing imported."""
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(ROOT / "tests" / "evil_probe.py", folder / "modeling_evil.py")
    (folder / "config.json").write_text(json.dumps({"model_type": "evil", "architectures": ["EvilForCausalLM"],
                                                    "auto_map": {"AutoConfig": "modeling_evil.factory",
                                                                 "AutoModelForCausalLM": "modeling_evil.factory"}}))
    (folder / "model.safetensors").write_bytes(b"")
    launch.check_workload(f"hf:{folder}")  # allowed as a name: what it names is read as data
    with pytest.raises(ValueError, match=f"cannot load hf:{folder}"):
        get_workload(f"hf:{folder}", params={"fetch": False})
    assert not probe.exists()


class _Boom:
    def __reduce__(self):  # unpickling this runs code: it imports the probe module
        return (__import__, (PROBE_MODULE,))


def test_uploaded_files_are_read_as_data_never_unpickled(tmp_path, probe):
    for name in ("runs.pkl", "runs.parquet", "runs.json", "benchmark.json", "emissions.csv", "model.pt"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(_Boom()))
        with pytest.raises(ValueError) as err:
            read_files([path])
        assert name in str(err.value) and "\n" not in str(err.value)
    assert not probe.exists()


def test_no_page_imports_python_code_named_in_the_browser(served):
    url, _, marker = served
    with chromium_page() as page:
        for path, params in PAGES.items():
            query = urllib.parse.urlencode({p: PROBES[1] for p in params})
            page.goto(f"{url}/{path}?{query}")
            page.locator('[data-testid="stMain"] h1').first.wait_for()
            assert page.locator('[data-testid="stException"]').count() == 0, path
        # the Profile page (the last one opened) offers the registry's workloads and the hf: field, nothing else
        page.get_by_text("configuration").first.wait_for()  # "1 configuration", or more
        page.get_by_role("combobox", name="Workload").click()
        offered = {o.strip() for o in page.get_by_role("option").all_inner_texts()}
        assert offered - set(BUILTIN) == {"hf: a Hugging Face model"}
    assert not marker.exists()

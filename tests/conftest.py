"""Shared fixtures: real DuckDB stores in temp folders, seeded with the bundled data."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import settings as _hyp_settings

from engine import seed
from engine.store import Store

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def _seeded_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "seed.duckdb"
    with Store(path) as s:
        seed.load(s)
    return path


@pytest.fixture
def seeded_db(_seeded_template, tmp_path) -> Path:
    """A private copy of a store holding the 1,858 bundled runs."""
    path = tmp_path / "runs.duckdb"
    shutil.copy(_seeded_template, path)
    return path


@pytest.fixture
def empty_db(tmp_path) -> Path:
    return tmp_path / "empty.duckdb"


def store_snapshot(db, store: Store | None = None) -> tuple[str, ...]:
    """Everything a store holds (runs, batches, registry, undo records, meta) as text, to compare
    before and after something that must leave it unchanged. Columns in name order: a canonical
    column that a write gave storage moves last in the table (engine.store._lean_runs), not in
    what the store shows."""
    s = store or Store(db)
    try:
        return tuple(s.execute(f"SELECT * FROM {t} ORDER BY ALL").df().sort_index(axis=1).to_csv()
                     for t in ("runs", "imports", "fields", "quality_changes", "meta"))
    finally:
        if store is None:
            s.close()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny Llama-style checkpoint (random weights, safetensors, BPE tokenizer) saved once."""
    from engine.profiler import hf_tiny

    return hf_tiny.save(tmp_path_factory.mktemp("hf") / "tiny-llama", "llama")


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> Path:
    """A tiny Qwen2-style checkpoint (tied embeddings, q/k/v biases) saved once."""
    from engine.profiler import hf_tiny

    return hf_tiny.save(tmp_path_factory.mktemp("hf") / "tiny-qwen", "qwen2")


def shown(markdown: str) -> str:
    """What a person reads from Markdown that ui.text.literal escaped (backslashes, word joiners gone)."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def require_browser():
    """Skip browser tests where chromium is absent, except in CI where they are mandatory."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("PARETOSCOPE_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing but browser tests are mandatory here")
        pytest.skip("chromium not installed")


# CI runs hypothesis deterministically so a red build is reproducible; locally it explores.
_hyp_settings.register_profile("ci", derandomize=True, deadline=None)
_hyp_settings.register_profile("dev", deadline=None)
_hyp_settings.load_profile("ci" if os.environ.get("CI") else "dev")


def plotly_values(v) -> list:
    """A plotly array from a figure's JSON: a list, or the typed array plotly encodes as base64."""
    if isinstance(v, dict) and "bdata" in v:
        import base64

        import numpy as np
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return (a.reshape([int(n) for n in str(v["shape"]).split(",")]) if "shape" in v else a).tolist()
    return list(v)


def follow_search(at, until, timeout=90):
    """Run the page again (what the Search tab's fragment does each second) until ``until(at)``."""
    deadline = time.monotonic() + timeout
    while not until(at) and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    assert until(at), ([e.value for e in at.error], [m.value for m in at.markdown])
    return at


def searched(at, said: str = "Search done") -> bool:
    """The Search tab says its search ended (``said``), or shows an error."""
    return bool(at.error) or any(said in shown(m.value) for m in [*at.success, *at.warning])

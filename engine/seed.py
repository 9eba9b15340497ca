"""Bundled seed data: build data/seed/*.parquet from the ML.ENERGY files, and load it into an
empty store on first start (``python -m engine init``)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from engine import exchange
from engine.importers import mlenergy
from engine.ingest import file_hash
from engine.store import ROOT, Store

SEED_DIR = ROOT / "data" / "seed"
SEED_SOURCE = "mlenergy-v3"


def build(src_dir: Path, out: Path = SEED_DIR / "mlenergy-v3.parquet") -> int:
    """Convert the ML.ENERGY v3 task files into one compact exchange file; returns the run count."""
    files = sorted(p for p in Path(src_dir).glob("*.json") if p.name != "index.json")
    parsed = [mlenergy.parse_file(p) for p in files]
    runs = pd.concat([p.runs for p in parsed], ignore_index=True)
    extra = {f.name: f for p in parsed for f in p.extra_fields}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "seed.duckdb") as store:
        store.add_runs(runs, source=SEED_SOURCE, kind="seed", extra_fields=list(extra.values()))
        out.parent.mkdir(parents=True, exist_ok=True)
        return exchange.export_runs(store, out)


def load(store: Store, seed_dir: Path = SEED_DIR) -> int:
    """Import every seed file not yet in the store; returns how many runs were added."""
    added = 0
    for path in sorted(Path(seed_dir).glob("*.parquet")):
        parsed = exchange.read_export(path)
        res = store.add_runs(parsed.runs, source=SEED_SOURCE, kind="seed", extra_fields=parsed.extra_fields,
                             file_name=path.name, file_hash=file_hash(path))
        added += res.added
    return added


if __name__ == "__main__":
    import sys

    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets" / "mlenergy-v3"
    print(f"{build(src)} runs written to {SEED_DIR / 'mlenergy-v3.parquet'}")

"""Bundled seed data: load data/seed/ into a store (``python -m engine init``), and rebuild the
ML.ENERGY seed file from the leaderboard's files (``python -m engine.seed SRC_DIR``).

data/seed/ holds Paretoscope export files (*.parquet, one per source: ML.ENERGY v3, the Qwen2
quantization study) and ``quality.csv``: published quality figures for the ML.ENERGY models, one
row per figure with its provenance (see data/README.md). Each file is loaded once per store (the
store's ``meta`` table remembers it by content hash), so a batch a person deleted stays deleted
and an updated quality file is applied again.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from engine import exchange, quality
from engine.counts import counted
from engine.fields import QUALITY_BY_NAME
from engine.importers import mlenergy
from engine.ingest import file_hash
from engine.store import ROOT, Store, first_row

SEED_DIR = ROOT / "data" / "seed"
SEED_SOURCE = "mlenergy-v3"
QUALITY_FILE = "quality.csv"
QUALITY_COLUMNS = ("task", "model", "precision", "metric", "value", "unit", "headline", "benchmark", "setting",
                   "source", "reference", "licence")


@dataclass
class Loaded:
    runs_added: int = 0
    quality: list[quality.QualityResult] = field(default_factory=list)

    def message(self, store: Store) -> str:
        lines = [f"Loaded {counted(self.runs_added, 'bundled run')} into {store.path}." if self.runs_added else
                 f"{store.path} holds {counted(store.count(), 'run')}; no new bundled runs."]
        lines += [f"Published quality: {r.message()}" for r in self.quality]
        return "\n".join(lines)


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


def _seen(store: Store) -> dict[str, str]:
    row = first_row(store.execute("SELECT value FROM meta WHERE key = 'seed_files'"))
    return json.loads(row[0]) if row else {}


def load(store: Store, seed_dir: Path = SEED_DIR) -> Loaded:
    """Import every seed file this store has not loaded yet, then the published quality figures
    when they are new or changed; all in one transaction."""
    out = Loaded()
    seen = _seen(store)
    with store.transaction():
        for path in sorted(Path(seed_dir).glob("*.parquet")):
            digest = file_hash(path)
            if seen.get(path.name) == digest:
                continue
            parsed = exchange.read_export(path)
            res = store.add_runs(parsed.runs, source=path.stem, kind="seed", extra_fields=parsed.extra_fields,
                                 file_name=path.name, file_hash=digest)
            out.runs_added += res.added
            seen[path.name] = digest
        qpath = Path(seed_dir) / QUALITY_FILE
        if qpath.exists() and seen.get(qpath.name) != (digest := file_hash(qpath)):
            out.quality = load_quality(store, qpath)
            seen[qpath.name] = digest
        store.execute("INSERT OR REPLACE INTO meta VALUES ('seed_files', ?)", [json.dumps(seen, sort_keys=True)])
    return out


def read_quality(path: Path) -> pd.DataFrame:
    """The published-quality table, checked: known columns and metrics, numbers, a source per row."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in QUALITY_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path.name} lacks the column(s) {', '.join(missing)}.")
    for i, r in table.iterrows():
        where = f"{path.name}: line {i + 2}"
        if r["metric"] not in QUALITY_BY_NAME:
            raise ValueError(f"{where}: '{r['metric']}' is not a quality metric of engine.fields.QUALITY_FIELDS.")
        if r["headline"] not in ("", "accuracy"):
            raise ValueError(f"{where}: headline must be empty or 'accuracy', not '{r['headline']}'.")
        if not (r["source"] and r["reference"] and r["licence"]):
            raise ValueError(f"{where}: every figure needs its source, reference and licence.")
        try:
            float(r["value"])
        except ValueError:
            raise ValueError(f"{where}: value '{r['value']}' is not a number.") from None
    return table


def provenance(row) -> str:
    """The ``<metric>_source`` text of one figure: who published it, in what setting, where."""
    return f"{row['source']}; {row['benchmark']}, {row['setting']}; {row['reference']}"


def load_quality(store: Store, path: Path = SEED_DIR / QUALITY_FILE) -> list[quality.QualityResult]:
    """Attach each published figure to the runs of its task, model and precision; a figure marked
    as the task's headline also sets ``accuracy`` (a percentage divided by 100)."""
    table = read_quality(path)
    table["source"] = table.apply(provenance, axis=1)
    table["value"] = table["value"].astype(float)
    table["precision"] = table["precision"].replace("", None)
    results = []
    with store.transaction():  # one quality batch for the file: deleting it undoes every figure
        batch = store.new_batch(source=path.name, kind="quality", file_name=path.name, note="published quality figures")
        for metric, rows in table.groupby("metric", sort=False):
            frame = rows[["model", "precision", "task", "source"]].assign(**{metric: rows["value"]})
            results.append(quality.attach(store, frame, metric, name=path.name, field=QUALITY_BY_NAME[metric],
                                          batch=batch))
        head = table[table["headline"] == "accuracy"]
        if len(head):
            acc = head["value"].where(head["unit"] != "%", (head["value"] / 100).round(6))
            frame = head[["model", "precision", "task", "source"]].assign(accuracy=acc)
            results.append(quality.attach(store, frame, "accuracy", name=path.name, batch=batch))
    return results


if __name__ == "__main__":
    import sys

    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "datasets" / "mlenergy-v3"
    print(f"{build(src)} runs written to {SEED_DIR / 'mlenergy-v3.parquet'}")

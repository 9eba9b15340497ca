"""Import of a 1,000,000-row CSV (target <= 5 s) against two baselines in the same run: plain
DuckDB read_csv + CREATE TABLE, and pandas read_csv + insert into DuckDB."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from engine.ingest import import_files
from engine.store import Store

ROWS = 1_000_000


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = tmp / "sweep.csv"
        duckdb.execute(f"""COPY (SELECT 'org/model-' || (i % 50) AS model, ['bfloat16', 'int8', 'int4'][i % 3 + 1] AS precision,
            1 + i % 64 AS "batch size", random() * 1e-6 AS "Energy (kWh)", random() AS latency_s,
            random() * 8 AS memory_gb, random() * 500 AS tokens_per_s, 'H100' AS gpu, 40 + i % 40 AS temperature_c
            FROM range({ROWS}) t(i)) TO '{csv}' (HEADER)""")
        size_mb = csv.stat().st_size / 2**20

        def ours():
            with Store(tmp / "ours.duckdb") as s:
                [done] = import_files(s, [csv])
                assert done.result.added == ROWS, done.message()

        def plain_duckdb():
            con = duckdb.connect(str(tmp / "plain.duckdb"))
            con.execute(f"CREATE TABLE runs AS SELECT * FROM read_csv('{csv}')")
            con.close()

        def pandas_insert():
            df = pd.read_csv(csv)
            con = duckdb.connect(str(tmp / "pandas.duckdb"))
            con.register("df", df)
            con.execute("CREATE TABLE runs AS SELECT * FROM df")
            con.close()

        t_plain = _timed(plain_duckdb)
        t_pandas = _timed(pandas_insert)
        t_ours = _timed(ours)
    print(f"{ROWS:,}-row CSV, {size_mb:.0f} MB (9 columns; checks, unit conversion, run-id hashes, one transaction)")
    print(f"{'method':44s} {'seconds':>8s} {'ratio':>7s}")
    print(f"{'paretoscope import (engine.ingest)':44s} {t_ours:8.2f} {1.0:7.2f}")
    print(f"{'baseline: DuckDB read_csv + CREATE TABLE':44s} {t_plain:8.2f} {t_ours / t_plain:7.2f}x")
    print(f"{'baseline: pandas read_csv + insert':44s} {t_pandas:8.2f} {t_ours / t_pandas:7.2f}x")
    print(f"target <= 5 s: {'met' if t_ours <= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()

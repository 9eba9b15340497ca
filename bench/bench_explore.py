"""Explore at scale: load 1,000,000 synthetic runs into a store (Store.add_runs), then time the
Explore page's server-side render after a filter change (streamlit AppTest, median of reruns),
against the same on 10,000 runs measured in the same run. Target (DESIGN.md): <= 1.5 s at 1e6."""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from engine.store import ROOT, Store

TARGET_S = 1.5
TOKEN_TASKS = ["gpqa", "lm-arena-chat", "image-chat", "video-chat", "sourcegraph-fim"]

# Synthetic runs with the seed's shape: 7 tasks (5 counted per token, one per image, one per
# video), 40 models, 4 accelerators, 4 precisions, power-of-two batch sizes; energy per unit
# falls and latency rises with batch size, both grow with model size, with log-normal noise.
SYNTH_SQL = """
WITH base AS (
  SELECT i,
         ['gpqa','lm-arena-chat','image-chat','video-chat','sourcegraph-fim','text-to-image','text-to-video'][1 + CAST(hash(i, 1) % 7 AS BIGINT)] AS task,
         1 + CAST(hash(i, 2) % 40 AS BIGINT) AS m,
         ['H100','B200','A100','MI300X'][1 + CAST(hash(i, 3) % 4 AS BIGINT)] AS hardware,
         [1, 2, 4, 8][1 + CAST(hash(i, 4) % 4 AS BIGINT)] AS num_gpus,
         ['bfloat16','fp8','mxfp4','int8'][1 + CAST(hash(i, 5) % 4 AS BIGINT)] AS precision,
         CAST(pow(2, CAST(hash(i, 6) % 12 AS BIGINT)) AS BIGINT) AS batch_size,
         exp(0.35 * sqrt(-2 * ln(1 - random())) * cos(6.283185 * random())) AS noise1,
         exp(0.25 * sqrt(-2 * ln(1 - random())) * cos(6.283185 * random())) AS noise2
  FROM range({n}) t(i)
)
SELECT md5(CAST(i AS VARCHAR)) AS run_id, task,
       'synth/model-' || m AS model, hardware, num_gpus, precision, batch_size,
       CASE task WHEN 'text-to-image' THEN 'image' WHEN 'text-to-video' THEN 'video' ELSE 'token' END AS work_unit,
       m * 2.5 AS params_b,
       m * 0.02 / sqrt(batch_size) * noise1 AS energy_j,
       CASE WHEN task IN ('text-to-image','text-to-video') THEN NULL
            ELSE (4 + m * 0.4) * (1 + batch_size / 256.0) * noise2 END AS itl_p90_ms,
       CASE WHEN task IN ('text-to-image','text-to-video') THEN NULL
            ELSE (3 + m * 0.3) * (1 + batch_size / 256.0) * noise2 END AS itl_ms,
       batch_size * 1000.0 / ((4 + m * 0.4) * (1 + batch_size / 256.0) * noise2) AS throughput,
       300.0 * num_gpus * noise1 AS power_w,
       (50 + m * 5.0) * (1 + batch_size / 64.0) * noise2 AS latency_ms
FROM base
"""


def build_store(path: Path, n: int) -> float:
    """A store of ``n`` synthetic runs; returns the seconds Store.add_runs took."""
    df = duckdb.connect().execute(SYNTH_SQL.format(n=n)).df()
    with Store(path) as s:
        t = time.perf_counter()
        s.add_runs(df, source="synthetic", kind="bench")
        return time.perf_counter() - t


def render_times(path: Path, reruns: int = 5) -> tuple[float, float, int]:
    """(first render s, median filter-change render s, runs in view) for the Explore page on all
    token tasks, alternating a hardware filter between reruns."""
    from streamlit.testing.v1 import AppTest

    os.environ["PARETOSCOPE_DB"] = str(path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"x": "energy_j", "y": "itl_p90_ms", "task": ",".join(TOKEN_TASKS), "log": "x,y"})
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    assert not at.exception, at.exception
    times = []
    choices = [["H100"], ["H100", "B200", "A100"], [], ["MI300X", "B200"]]
    for k in range(reruns):
        at.multiselect(key="f_hardware").set_value(choices[k % len(choices)])
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t)
        assert not at.exception, at.exception
        assert len(at.dataframe) == 1, [w.value for w in at.warning]
    caption = next(c.value for c in at.caption if "runs match" in c.value)
    return first, statistics.median(times), int(caption.split(" runs match")[0].replace(",", ""))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in (10_000, 1_000_000):
            path = Path(tmp) / f"runs{n}.duckdb"
            load_s = build_store(path, n)
            first, median, shown = render_times(path)
            results[n] = median
            print(f"{n:>9,} runs: load {load_s:6.2f} s ({n / load_s:>9,.0f} rows/s) | first render {first:5.2f} s | "
                  f"filter change render median {median:5.2f} s (last view: {shown:,} runs)", flush=True)
        ratio = results[1_000_000] / results[10_000]
        verdict = "met" if results[1_000_000] <= TARGET_S else "NOT met"
        print(f"render 1e6 / 1e4: {ratio:.1f}x; target <= {TARGET_S} s at 1e6 -> {results[1_000_000]:.2f} s, {verdict}")


if __name__ == "__main__":
    main()

"""Time series of a run: power and utilization over its measurement window, kept beside the run.

One long table ``timeseries(run_id, t_s, name, value)``: seconds since the window opened, the
series' name (``gpu_power_w``, ``gpu_util_pct``, ``cpu_util_pct``, ``rss_mb``, or what an imported
log holds) and the value. Compact: a series is thinned to at most MAX_POINTS evenly spaced
samples before it is written. The profiler writes a sweep run's series with the run, in the same
transaction; importers of power logs (nvidia-smi, Zeus) do the same; deleting a batch deletes its
runs' series.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

MAX_POINTS = 300
UNITS = {"gpu_power_w": "W", "gpu_util_pct": "%", "cpu_util_pct": "%", "rss_mb": "MB", "gpu_memory_mb": "MB",
         "gpu_temperature_c": "°C"}
DDL = "CREATE TABLE IF NOT EXISTS timeseries (run_id VARCHAR NOT NULL, t_s DOUBLE NOT NULL, name VARCHAR NOT NULL, value DOUBLE)"


def thin(t: Sequence[float], series: Mapping[str, Sequence[float]], max_points: int = MAX_POINTS) -> pd.DataFrame:
    """Long rows (t_s, name, value) of the series sampled at times ``t``, at most ``max_points`` per series."""
    import pandas as pd
    t = np.asarray(t, float)
    keep = np.unique(np.linspace(0, len(t) - 1, max_points).round().astype(int)) if len(t) > max_points else np.arange(len(t))
    parts = [pd.DataFrame({"t_s": t[keep], "name": name, "value": np.asarray(v, float)[keep]})
             for name, v in series.items() if len(v) == len(t) and len(v)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["t_s", "name", "value"])


def write(store, run_id: str, rows: pd.DataFrame) -> int:
    """Store a run's series (long rows t_s, name, value), replacing what the run had."""
    if rows is None or rows.empty:
        return 0
    df = rows.assign(run_id=str(run_id))[["run_id", "t_s", "name", "value"]]
    with store.transaction():
        store.execute(DDL)
        store.execute("DELETE FROM timeseries WHERE run_id = ?", [str(run_id)])
        with store.registered("_series", df):
            store.execute("INSERT INTO timeseries SELECT run_id, t_s, name, value FROM _series")
    return len(df)


def has_table(store) -> bool:
    return bool(store.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_name = 'timeseries'").fetchall())


def read(store, run_ids: Sequence[str]) -> pd.DataFrame:
    """The series of ``run_ids`` as long rows (run_id, t_s, name, value), in time order."""
    import pandas as pd
    if not run_ids or not has_table(store):
        return pd.DataFrame(columns=["run_id", "t_s", "name", "value"])
    marks = ", ".join("?" for _ in run_ids)
    return store.execute(f"SELECT run_id, t_s, name, value FROM timeseries WHERE run_id IN ({marks}) "
                         "ORDER BY run_id, name, t_s", [str(r) for r in run_ids]).df()


def delete_runs(store, where: str, params: list) -> None:
    """Drop the series of the runs selected by ``where`` (call inside the delete's transaction)."""
    if has_table(store):
        store.execute(f"DELETE FROM timeseries WHERE run_id IN (SELECT run_id FROM runs {where})", params)

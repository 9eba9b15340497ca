"""Power logs a person already has: an ``nvidia-smi --query-gpu=... --format=csv -lms N`` log, or
a Zeus PowerMonitor timeline saved as JSON (``json.dump(monitor.get_all_power_timelines(), f)``).

Each GPU in the log becomes one run (task ``power-log``, work unit ``log``: nothing is counted
per work unit, so energy_j stays empty): its mean power, utilization and peak memory, the log's
duration and total energy, and its timeline kept in engine.timeseries (thinned to a few hundred
points). nvidia-smi writes values with their units ("312.45 W", "98 %", "70000 MiB") and
"[N/A]" where a reading is not supported; both are read as such. The run id is the file's
content hash and the GPU, so the same log imported twice is the same runs.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from engine.fields import GPU_UTIL, Field
from engine.importers import Importer, Parsed
from engine.importers.tabular import check_text
from engine.timeseries import thin

if TYPE_CHECKING:
    import pandas as pd

TASK = "power-log"
EXTRA = {f.name: f for f in (
    GPU_UTIL,
    Field("log_duration_s", "metric", "double", "s", None, "length of the imported power log"),
    Field("log_energy_j", "metric", "double", "J", "min", "energy over the whole imported power log (power x time)"),
)}
# nvidia-smi query field -> (series name, conversion of the number into the series' unit)
NVIDIA_SMI = {"power.draw": ("gpu_power_w", 1.0), "power.draw.instant": ("gpu_power_w", 1.0),
              "power.draw.average": ("gpu_power_w", 1.0), "utilization.gpu": ("gpu_util_pct", 1.0),
              "memory.used": ("gpu_memory_mb", 1.0), "temperature.gpu": ("gpu_temperature_c", 1.0)}
ZEUS_DOMAINS = {"device_instant": "gpu_power_w", "device_average": "gpu_power_average_w",
                "memory_average": "gpu_memory_power_w"}
_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)")


def _field(header: str) -> str:
    return header.strip().split(" [")[0].strip().lower()


def looks_like_nvidia_smi(header: list[str]) -> bool:
    fields = {_field(h) for h in header}
    return "timestamp" in fields and bool(fields & set(NVIDIA_SMI))


def looks_like_zeus(data) -> bool:
    return (isinstance(data, dict) and bool(data) and set(data) <= set(ZEUS_DOMAINS)
            and all(isinstance(v, dict) for v in data.values()))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _run(run_id: str, hardware, power: pd.Series, t: pd.Series, extra: dict) -> dict:
    duration = float(t.max() - t.min()) if len(t) > 1 else 0.0
    # energy by the trapezoid rule over the samples that have a power reading
    ok = power.notna()
    tt, pp = t[ok].to_numpy(float), power[ok].to_numpy(float)
    energy = float(((pp[1:] + pp[:-1]) / 2 * (tt[1:] - tt[:-1])).sum()) if len(tt) > 1 else None
    return {"run_id": run_id, "status": "ok", "task": TASK, "hardware": hardware, "work_unit": "log",
            "power_w": float(pp.mean()) if len(pp) else None, "log_duration_s": duration, "log_energy_j": energy,
            **extra}


def parse_nvidia_smi(path: str | Path, name: str) -> Parsed:
    import pandas as pd
    path = Path(path)
    check_text(path, name)
    raw = pd.read_csv(path, dtype=str, skipinitialspace=True, keep_default_na=False)
    raw.columns = [_field(c) for c in raw.columns]
    when = pd.to_datetime(raw["timestamp"].str.strip(), format="%Y/%m/%d %H:%M:%S.%f", errors="coerce")
    if when.isna().any():
        line = int(when.isna().to_numpy().argmax()) + 2
        raise ValueError(f"{name}: line {line}, column 'timestamp': '{raw['timestamp'].iloc[line - 2]}' is not "
                         "nvidia-smi's YYYY/MM/DD HH:MM:SS.mmm.")
    values = {}
    for col, (series, factor) in NVIDIA_SMI.items():
        if col in raw.columns and series not in values:
            num = raw[col].str.extract(_NUMBER, expand=False).astype(float) * factor  # "[N/A]" -> NaN
            values[series] = num
    gpu = raw["index"].str.strip() if "index" in raw.columns else pd.Series("0", index=raw.index)
    names = raw["name"].str.strip().str.removeprefix("NVIDIA ") if "name" in raw.columns else pd.Series(None, index=raw.index)
    digest, runs, parts = _digest(path), [], []
    t0 = when.min()
    for g in pd.unique(gpu):
        sel = gpu == g
        t = (when[sel] - t0).dt.total_seconds().reset_index(drop=True)
        cols = {k: v[sel].reset_index(drop=True) for k, v in values.items()}
        run_id = f"nvidia-smi:{digest}:{g}"
        extra = {"num_gpus": 1}
        if "gpu_util_pct" in cols:
            extra["gpu_util"] = float(cols["gpu_util_pct"].mean())
        if "gpu_memory_mb" in cols:
            extra["peak_memory_mb"] = float(cols["gpu_memory_mb"].max())
        power = cols.get("gpu_power_w", pd.Series(float("nan"), index=t.index))
        runs.append(_run(run_id, names[sel].iloc[0], power, t, extra))
        parts.append(thin(t, {k: v.tolist() for k, v in cols.items()}).assign(run_id=run_id))
    return _parsed(runs, parts, name)


def parse_zeus(path: str | Path, name: str) -> Parsed:
    import pandas as pd
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not looks_like_zeus(data):
        raise ValueError(f"{name}: not a Zeus power timeline (domains {', '.join(ZEUS_DOMAINS)} -> GPU -> [[time, W], ...]).")
    digest, runs, parts = _digest(path), [], []
    by_gpu: dict[str, dict[str, list]] = {}
    for domain, gpus in data.items():
        for g, samples in gpus.items():
            if not all(isinstance(s, (list, tuple)) and len(s) == 2 for s in samples):
                raise ValueError(f"{name}: {domain} of GPU {g} must be a list of [time, watts] pairs.")
            by_gpu.setdefault(str(g), {})[ZEUS_DOMAINS[domain]] = samples
    t0 = min((float(s[0]) for d in by_gpu.values() for v in d.values() for s in v), default=0.0)
    for g, domains in sorted(by_gpu.items()):
        run_id = f"zeus:{digest}:{g}"
        main = domains.get("gpu_power_w") or domains.get("gpu_power_average_w") or []
        t = pd.Series([float(s[0]) - t0 for s in main])
        power = pd.Series([float(s[1]) for s in main])
        runs.append(_run(run_id, None, power, t, {"num_gpus": 1}))
        for series, samples in domains.items():  # each domain keeps its own sample times
            parts.append(thin([float(s[0]) - t0 for s in samples], {series: [float(s[1]) for s in samples]})
                         .assign(run_id=run_id))
    return _parsed(runs, parts, name)


def _parsed(runs: list[dict], parts: list[pd.DataFrame], name: str) -> Parsed:
    import pandas as pd
    if not runs:
        raise ValueError(f"{name}: the power log holds no samples.")
    df = pd.DataFrame(runs)
    used = [EXTRA[c] for c in df.columns if c in EXTRA]
    series = pd.concat(parts, ignore_index=True) if parts else None
    return Parsed(df, used, source=name, row_label="GPU", series=series)


NVIDIA_SMI_IMPORTER = Importer("nvidia-smi", "an nvidia-smi power log",
                               "nvidia-smi power logs (--query-gpu=timestamp,power.draw,... --format=csv)",
                               "csv", looks_like_nvidia_smi, parse_nvidia_smi)
ZEUS_IMPORTER = Importer("zeus-power", "a Zeus power timeline", "Zeus power timelines (JSON)",
                         "json", looks_like_zeus, parse_zeus)

"""CodeCarbon ``emissions.csv``: one row per tracker flush (EmissionsData fields: timestamp,
project_name, run_id, experiment_id, duration [s], emissions [kg CO2eq], emissions_rate [kg/s],
cpu/gpu/ram_power [W], cpu/gpu/ram_energy and energy_consumed [kWh], country, region, cloud,
os, python_version, codecarbon_version, cpu_count, cpu_model, gpu_count, gpu_model,
ram_total_size [GB], tracking_mode, on_cloud, pue, and in newer versions utilization and water).

How CodeCarbon writes rows: in the default "append" mode every ``stop()`` (and every periodic
save) appends a row, with *cumulative* totals for that run, so one run_id can have several rows:
the last one is the run. It also drops columns that are empty for that row before appending,
so an appended row can be shorter than the header (and its values shifted); such rows are
refused with their line number rather than read wrongly. Older files lack the newer columns.

One CodeCarbon run is one Paretoscope run with work_unit ``run``: energy_j is the energy of the
whole tracked run in J.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from engine.fields import CPU_ENERGY_J, Field
from engine.importers import Importer, Parsed
from engine.importers.tabular import check_size, check_text

if TYPE_CHECKING:
    pass

REQUIRED = {"energy_consumed", "emissions", "duration"}
_KWH_J = 3.6e6
_TEXT = ("experiment_id", "country_name", "country_iso_code", "region", "cloud_provider", "cloud_region", "os",
         "python_version", "codecarbon_version", "tracking_mode", "on_cloud", "timestamp", "project_name",
         "cpu_model", "gpu_model")

EXTRA = {f.name: f for f in (
    Field("emissions_g", "metric", "double", "gCO2eq", "min", "CodeCarbon emissions of the run"),
    Field("duration_s", "metric", "double", "s", "min", "CodeCarbon tracked duration of the run"),
    CPU_ENERGY_J,
    Field("gpu_energy_j", "metric", "double", "J", "min", "GPU energy of the run"),
    Field("ram_energy_j", "metric", "double", "J", "min", "RAM energy of the run"),
    Field("project_name", "config", "text", "", None, "CodeCarbon project name"),
    Field("experiment_id", "config", "text", "", None, "CodeCarbon experiment id"),
    Field("country_iso_code", "config", "text", "", None, "country of the grid whose carbon intensity was used"),
    Field("cpu_model", "config", "text", "", None, "CPU model"),
    Field("measured_at", "info", "text", "", None, "when the tool recorded the run"),
)}


def looks_like(header: list[str]) -> bool:
    return REQUIRED <= set(header) and ("run_id" in header or "project_name" in header)


def parse_file(path: str | Path, name: str | None = None) -> Parsed:
    import pandas as pd
    path = Path(path)
    name = name or path.name
    check_size(path, name)
    check_text(path, name)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows or not looks_like(rows[0]):
        raise ValueError(f"{name}: not a CodeCarbon emissions file (needs {', '.join(sorted(REQUIRED))}).")
    header = rows[0]
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise ValueError(f"{name}: duplicate column '{dup}'.")
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(c.strip() for c in r)]
    if not body:
        raise ValueError(f"{name} has a header but no data rows.")
    for line, r in body:
        if len(r) != len(header):
            raise ValueError(f"{name}: line {line} has {len(r)} fields but the header has {len(header)} columns "
                             "(CodeCarbon drops empty columns when it appends a row).")
    df = pd.DataFrame([r for _, r in body], columns=header).replace({"": None})
    df["_line"] = [line for line, _ in body]
    numeric = [c for c in header if c not in _TEXT]
    for col in numeric:
        if col == "run_id":
            continue
        conv = pd.to_numeric(df[col], errors="coerce")
        bad = df[col].notna() & conv.isna()
        if bad.any():
            i = bad.to_numpy().nonzero()[0][0]
            raise ValueError(f"{name}: line {df['_line'].iloc[i]}, column '{col}': '{df[col].iloc[i]}' is not a number.")
        df[col] = conv
    for col in ("energy_consumed", "duration", "cpu_energy", "gpu_energy", "ram_energy"):
        if col in df and (df[col] < 0).any():
            i = (df[col] < 0).to_numpy().nonzero()[0][0]
            raise ValueError(f"{name}: line {df['_line'].iloc[i]}, column '{col}' is negative ({df[col].iloc[i]}).")
    # cumulative rows per run: keep the last one
    if "run_id" in df and df["run_id"].notna().all():
        df = df.drop_duplicates("run_id", keep="last")
    out = pd.DataFrame({"task": df.get("project_name"), "work_unit": "run"})
    out["energy_j"] = df["energy_consumed"] * _KWH_J
    out["emissions_g"] = df["emissions"] * 1000.0
    out["duration_s"] = df["duration"]
    for part in ("cpu", "gpu", "ram"):
        if f"{part}_energy" in df:
            out[f"{part}_energy_j"] = df[f"{part}_energy"] * _KWH_J
    if "duration" in df:
        out["power_w"] = (out["energy_j"] / df["duration"]).where(df["duration"] > 0)
    gpu = df["gpu_model"] if "gpu_model" in df else pd.Series(None, index=df.index)
    cpu = df["cpu_model"] if "cpu_model" in df else pd.Series(None, index=df.index)
    gpu = gpu.str.replace(r"^\d+ x ", "", regex=True) if gpu.notna().any() else gpu  # "1 x NVIDIA A10G"
    out["hardware"] = gpu.where(gpu.notna(), cpu)
    if "gpu_count" in df:
        out["num_gpus"] = df["gpu_count"].fillna(0)  # a fractional count is refused on import, not rounded
    for col in ("project_name", "experiment_id", "country_iso_code", "cpu_model"):
        if col in df:
            out[col] = df[col]
    if "timestamp" in df:
        out["measured_at"] = df["timestamp"]
    if "run_id" in df:
        # CodeCarbon's run_id is one tracker session; with the project it names the run
        out["run_id"] = "codecarbon:" + df["run_id"].astype(str)
    env_cols = [c for c in ("os", "python_version", "codecarbon_version", "tracking_mode", "region",
                            "cloud_provider", "cloud_region", "pue", "ram_total_size", "cpu_count") if c in df]
    if env_cols:
        out["environment"] = df[env_cols].apply(lambda r: r.dropna().to_json(), axis=1)  # few rows: one per run
    out = out.reset_index(drop=True)
    extra = [f for n, f in EXTRA.items() if n in out.columns]
    return Parsed(out, extra, source=name, notes=[f"{len(body)} rows, {len(out)} runs"], row_label="line",
                  row_numbers=list(df["_line"]))


IMPORTER = Importer("codecarbon", "CodeCarbon", "CodeCarbon emissions.csv", "csv", looks_like, parse_file)

"""Derived metrics: computed in SQL from stored columns and the person's settings, never stored.

- cost_usd: dollars per work unit = num_gpus x price per GPU-hour / 3600 / throughput;
- carbon_g: grams of CO2 per work unit = energy_j / 3.6e6 (kWh) x grid intensity (gCO2/kWh).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.fields import Field


@dataclass(frozen=True)
class Settings:
    price_per_gpu_hour: float = 2.5  # $ per accelerator-hour
    carbon_g_per_kwh: float = 400.0  # grid carbon intensity


DERIVED = {
    "cost_usd": Field("cost_usd", "metric", "double", "$", "min",
                      "cost per work unit at the set price per GPU-hour (derived)"),
    "carbon_g": Field("carbon_g", "metric", "double", "gCO2", "min",
                      "carbon per work unit at the set grid intensity (derived)"),
}


def sql(name: str, settings: Settings) -> str:
    """SQL expression of a derived metric. Settings are floats, rendered with repr (no user text)."""
    price = repr(float(settings.price_per_gpu_hour))
    grid = repr(float(settings.carbon_g_per_kwh))
    if name == "cost_usd":
        return f'(coalesce("num_gpus", 1) * {price} / 3600.0 / nullif("throughput", 0))'
    if name == "carbon_g":
        return f'("energy_j" / 3600000.0 * {grid})'
    raise KeyError(name)

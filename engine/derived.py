"""Derived metrics: computed in SQL from stored columns and the person's settings, never stored.

- cost_usd: dollars per work unit = num_gpus x price per GPU-hour / 3600 / throughput, at the
  price set for the run's hardware where one is (GPUs differ in price: at one price for all, the
  faster GPU always looks cheaper), else at the one price;
- carbon_g: grams of CO2 per work unit = energy_j / 3.6e6 (kWh) x grid intensity (gCO2/kWh).

Prices per hardware are data, not SQL: the store registers them as a table (PRICES) on its
connection, and the cost expression looks the run's hardware up there, so a hardware name a
person types never becomes SQL text.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.fields import Field


@dataclass(frozen=True)
class Settings:
    price_per_gpu_hour: float = 2.5  # $ per accelerator-hour
    carbon_g_per_kwh: float = 400.0  # grid carbon intensity
    gpu_prices: tuple[tuple[str, float], ...] = ()  # (hardware, $ per accelerator-hour) where it differs

    def describe_prices(self) -> str:
        """The prices cost_usd is computed at, for a caption: '$2.50 per GPU-hour; B200 $5.50'."""
        own = "".join(f"; {hw} ${p:,.2f}" for hw, p in self.gpu_prices)
        return f"${self.price_per_gpu_hour:,.2f} per GPU-hour{own}"


DERIVED = {
    "cost_usd": Field("cost_usd", "metric", "double", "$", "min",
                      "cost per work unit at the set price per GPU-hour (derived)"),
    "carbon_g": Field("carbon_g", "metric", "double", "gCO2", "min",
                      "carbon per work unit at the set grid intensity (derived)"),
}
PRICES = "_gpu_prices"  # (gpu_name, usd_per_hour): registered by the store where prices are set


def _cost_sql(settings: Settings) -> str:
    price = repr(float(settings.price_per_gpu_hour))
    if settings.gpu_prices:
        price = f'coalesce((SELECT usd_per_hour FROM {PRICES} WHERE gpu_name = "hardware"), {price})'
    return f'(coalesce("num_gpus", 1) * {price} / 3600.0 / nullif("throughput", 0))'


def _carbon_sql(settings: Settings) -> str:
    return f'("energy_j" / 3600000.0 * {float(settings.carbon_g_per_kwh)!r})'


_SQL = {"cost_usd": _cost_sql, "carbon_g": _carbon_sql}  # a new derived metric: its Field above, its SQL here


def sql(name: str, settings: Settings) -> str:
    """SQL expression of a derived metric. Settings are floats, rendered with repr (no user text);
    prices per hardware are read from the PRICES table."""
    return _SQL[name](settings)


def amount(raw) -> float | None:
    """``raw`` as a price or an intensity: a finite number of at least 0, else None."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None


def gpu_prices_text(prices: tuple[tuple[str, float], ...], sep: str = ",") -> str:
    """Settings.gpu_prices as parse_gpu_prices reads them: 'B200=5.5,H100=2.9'."""
    return sep.join(f"{hw}={p:g}" for hw, p in prices)


def parse_gpu_prices(specs: str | Iterable[str]) -> tuple[tuple[str, float], ...]:
    """'B200=5.5, H100=2.9' (entries separated by commas, semicolons or lines; or a list of such
    texts, one per --gpu-price) as Settings.gpu_prices; a bad entry raises ValueError with one
    sentence naming it. A hardware name cannot hold a comma here."""
    items = [e for text in ([specs] if isinstance(specs, str) else specs) for e in re.split(r"[\n;,]", text)]
    out: dict[str, float] = {}
    for raw in (s.strip() for s in items):
        if not raw:
            continue
        hw, sep, value = raw.rpartition("=")
        hw = hw.strip()
        if not sep or not hw:
            raise ValueError(f"GPU price '{raw}': write HARDWARE=PRICE, e.g. B200=5.5 ($ per GPU-hour).")
        price = amount(value)
        if price is None:
            raise ValueError(f"GPU price '{raw}': '{value.strip()}' is not a number of dollars of at least 0.")
        if hw in out:
            raise ValueError(f"GPU price for '{hw}' is given twice.")
        out[hw] = price
    return tuple(out.items())


# The settings in a link (only where they differ from the defaults): a view of cost_usd or carbon_g
# depends on them, so a shared link carries them.
PARAMS = {"price": "price_per_gpu_hour", "carbon": "carbon_g_per_kwh"}


def settings_params(settings: Settings) -> dict[str, str]:
    """Query params of the settings that differ from the defaults: price, carbon, gpu_prices."""
    base, out = Settings(), {}
    for key, attr in PARAMS.items():
        if getattr(settings, attr) != getattr(base, attr):
            out[key] = f"{getattr(settings, attr):g}"
    if settings.gpu_prices:
        out["gpu_prices"] = gpu_prices_text(settings.gpu_prices)
    return out


def settings_from_params(params: Mapping[str, str]) -> tuple[dict, list[str]]:
    """The settings a link gives ({Settings field: value}, only those it names) and a note for each
    value it gives that is not one (dropped)."""
    out, notes = {}, []
    for key, attr in PARAMS.items():
        raw = params.get(key)
        if raw is None:
            continue
        if (value := amount(raw)) is not None:
            out[attr] = value
        else:
            notes.append(f"The link's {key} '{raw}' is not a number of at least 0; ignored.")
    if params.get("gpu_prices"):
        try:
            out["gpu_prices"] = parse_gpu_prices(params["gpu_prices"])
        except ValueError as e:
            notes.append(f"The link's gpu_prices: {e} Ignored.")
    return out, notes

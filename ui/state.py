"""Session-wide UI state: the store in use, derived-metric settings, URL query-string helpers."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.derived import Settings, gpu_prices_text, parse_gpu_prices, settings_from_params
from engine.store import Store, default_db_path


def gpu_prices() -> tuple[tuple[str, float], ...]:
    """The sidebar's prices per hardware; raises ValueError (one sentence) on a bad entry."""
    return parse_gpu_prices(st.session_state.get("gpu_prices") or "")


def settings_from_link() -> list[str]:
    """First run of a session: put the link's settings (price, carbon, gpu_prices) into the
    sidebar's keys, and the defaults where it names none; returns a note per value dropped."""
    if "_settings_loaded" in st.session_state:
        return []
    st.session_state["_settings_loaded"] = True
    given, notes = settings_from_params(read_params())
    base = Settings()
    st.session_state["price_per_gpu_hour"] = given.get("price_per_gpu_hour", base.price_per_gpu_hour)
    st.session_state["carbon_g_per_kwh"] = given.get("carbon_g_per_kwh", base.carbon_g_per_kwh)
    st.session_state["gpu_prices"] = gpu_prices_text(given.get("gpu_prices", ()), ", ")
    return notes


def settings() -> Settings:
    """The derived-metric settings chosen in the sidebar (defaults until changed; prices per
    hardware left out while their text has a mistake, which the sidebar names)."""
    base = Settings()
    try:
        prices = gpu_prices()
    except ValueError:
        prices = ()
    return Settings(
        price_per_gpu_hour=float(st.session_state.get("price_per_gpu_hour", base.price_per_gpu_hour)),
        carbon_g_per_kwh=float(st.session_state.get("carbon_g_per_kwh", base.carbon_g_per_kwh)),
        gpu_prices=prices,
    )


def db_path() -> Path:
    return default_db_path()


WAIT_S = 30.0  # how long a page waits for a store another process is writing


def open_store(show_wait: bool = True, box=None) -> Store:
    """A Store on the session's file with the session's settings; use as a context manager.
    While another process holds the file, a line says who and for how long (after WAIT_S the
    store is reported busy in one sentence: StoreBusy, shown by app.py), in ``box`` (an
    ``st.empty()`` the caller drew) or in a placeholder drawn here."""
    box = box if box is not None else st.empty() if show_wait else None

    def waiting(seconds: float, holder: str) -> None:
        box.info(f"Waiting for the store: {holder} is using it ({seconds:.0f} s so far; giving up after "
                 f"{WAIT_S:.0f} s)…", icon="⏳")

    try:
        return Store(db_path(), settings=settings(), timeout_s=WAIT_S, on_wait=waiting if box else None)
    finally:
        if box:
            box.empty()


def store_stamp(path: Path | None = None) -> tuple:
    """Changes whenever the store file (or its write-ahead log) changes: a cache key."""
    path = Path(path or db_path())
    out = [str(path)]
    for p in (path, Path(str(path) + ".wal")):
        try:
            s = p.stat()
            out += [s.st_mtime_ns, s.st_size]
        except FileNotFoundError:
            out += [None, None]
    return tuple(out)


def read_params() -> dict[str, str]:
    """The URL query string as {name: last value}."""
    return {k: st.query_params.get(k) for k in st.query_params.keys()}


def write_params(params: dict[str, str]) -> None:
    """Replace the query string, only when it differs (each write is a browser round-trip)."""
    if read_params() != params:
        st.query_params.from_dict(params)

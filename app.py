"""Paretoscope: Streamlit entry point (navigation and shared sidebar state)."""
from __future__ import annotations

import duckdb
import streamlit as st

from engine.derived import Settings
from engine.store import StoreError, explain
from ui.state import db_path, open_store
from ui.text import literal

st.set_page_config(page_title="Paretoscope", page_icon="📈", layout="wide")

PAGES = [
    st.Page("app_pages/explore.py", title="Explore", icon=":material/scatter_plot:", default=True, url_path="explore"),
    st.Page("app_pages/import_runs.py", title="Import", icon=":material/upload_file:", url_path="import"),
    st.Page("app_pages/profile.py", title="Profile", icon=":material/speed:", url_path="profile"),
    st.Page("app_pages/recommend.py", title="Recommend", icon=":material/recommend:", url_path="recommend"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
]

page = st.navigation(PAGES)

problem = None
try:  # in the main area, so a wait for a busy store is shown where the person looks
    with open_store() as store:
        n_runs = store.count(include_failed=False)
except StoreError as e:  # damaged, not a store, newer, busy: one sentence, and the file is left alone
    problem = e
with st.sidebar:
    if not problem:
        st.caption(f"Store `{db_path()}` · {n_runs:,} runs")
    with st.expander("Derived-metric settings"):
        base = Settings()
        st.number_input("Price per GPU-hour ($)", min_value=0.0, value=base.price_per_gpu_hour, step=0.1,
                        key="price_per_gpu_hour", help="for cost_usd: $ per work unit")
        st.number_input("Grid carbon intensity (gCO2/kWh)", min_value=0.0, value=base.carbon_g_per_kwh, step=10.0,
                        key="carbon_g_per_kwh", help="for carbon_g: gCO2 per work unit")

if problem:
    st.error(literal(problem))
    st.stop()  # every page would only fail the same way
try:
    page.run()
except StoreError as e:
    st.error(literal(e))
except duckdb.Error as e:  # a damaged block met by a query after the store opened
    damage = explain(e, db_path())
    if damage is None:
        raise
    st.error(literal(damage))

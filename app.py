"""Paretoscope: Streamlit entry point (navigation and shared sidebar state)."""
from __future__ import annotations

import duckdb
import streamlit as st

from engine.store import StoreError, explain, init_command
from ui.state import db_path, gpu_prices, open_store, settings, settings_from_link, store_stamp
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
NEEDS_RUNS = ("Explore", "Recommend", "Compare")  # pages with nothing to show until the store holds runs

link_notes = settings_from_link()  # before anything reads the settings


def facts_key() -> tuple:
    """What the sidebar's facts depend on: the store file as it is now, and the prices."""
    return store_stamp(), settings().gpu_prices


def store_facts() -> tuple[int, list[str]]:
    """The sidebar's count of runs and the priced hardware no run is on, kept for every session
    while the store file and the prices stay the same: every click and every page load reruns
    this script, and opening the store took 30-40 ms of each (the page opens it again for its own work).
    Kept or not, the main area gets the same elements: when the page's moved by one between
    reruns, the browser showed a stale copy of each beside the new one for a moment (two Start
    buttons on Profile while a sweep stored its runs)."""
    box = st.empty()  # where a wait for a busy store is said, drawn whether or not the store is opened
    key = facts_key()
    known = facts_seen()
    facts = known.get(key)
    if facts is None:
        with open_store(box=box) as store:  # in the main area, so a wait for a busy store is shown where the person looks
            facts = store.count(include_failed=False), store.unpriced_hardware()  # a price no run uses, named below
        if len(known) >= 16:  # one entry per state of the file: a few are enough
            known.clear()
        known[key] = facts
    st.session_state["_store_facts"] = (key, facts)
    return facts


@st.cache_resource
def facts_seen() -> dict:
    """store_facts' answers by facts_key, shared by every session of this server: each page load
    is a new session, so answers kept in the session were opened afresh on every load."""
    return {}


def say_store(facts: tuple[int, list[str]]) -> None:
    """The sidebar's count of runs and its warning of priced hardware no run is on."""
    n_runs, absent = facts
    count_line.caption(f"Store `{db_path()}` · {n_runs:,} runs")
    if absent:
        absent_line.warning(literal(f"No runs on {', '.join(absent)}: check the name (as the hardware filter lists it)."))
    else:
        absent_line.empty()


def say_empty_store() -> None:
    """In place of a page that needs runs, on a store that holds none: where runs come from. The
    page itself would only say that no run matches filters nobody set."""
    st.title(page.title)
    st.info(literal(f"The store {db_path()} holds no measured runs yet. Bring in other tools' run logs on the Import "
                    "page, measure a model on this machine on the Profile page, or load the bundled measurements "
                    "(ML.ENERGY runs and published quality) with this command:"))
    st.code(init_command(db_path()), language="bash")  # Markdown's backticks, escaped by literal(), read as backticks
    st.page_link(PAGES[1], label="Import runs", icon=":material/upload_file:")
    st.page_link(PAGES[2], label="Profile a model", icon=":material/speed:")


problem = None
try:
    facts = store_facts()
except StoreError as e:  # damaged, not a store, newer, busy: one sentence, and the file is left alone
    problem = e
with st.sidebar:
    count_line = st.empty()
    with st.popover("Derived-metric settings", width="stretch"):  # drawn only when opened; values from the link
        st.number_input("Price per GPU-hour ($)", min_value=0.0, step=0.1,
                        key="price_per_gpu_hour", help="for cost_usd: $ per work unit")
        st.text_input("Prices per hardware ($ per GPU-hour)", key="gpu_prices", placeholder="B200=5.5, H100=2.9",
                      help="HARDWARE=PRICE, separated by commas: these GPUs at their own price, the others at the "
                           "price above")
        st.number_input("Grid carbon intensity (gCO2/kWh)", min_value=0.0, step=10.0,
                        key="carbon_g_per_kwh", help="for carbon_g: gCO2 per work unit")
    for note in link_notes:
        st.info(literal(note))
    try:
        gpu_prices()  # settings() leaves a mistaken text out; here it is named
    except ValueError as e:
        st.error(literal(f"{e} Prices per hardware are not applied until it is fixed."))
    now = settings()
    absent_line = st.empty()
    st.caption(literal(f"cost_usd at {now.describe_prices()} · carbon_g at {now.carbon_g_per_kwh:,.0f} gCO2/kWh"))
    if not problem:
        say_store(facts)

if problem:
    st.error(literal(problem))
    st.stop()  # every page would only fail the same way
if not facts[0] and page.title in NEEDS_RUNS:
    say_empty_store()
    st.stop()
try:
    page.run()
    if st.session_state["_store_facts"][0] != facts_key():  # the page wrote (an import, a delete): said anew
        say_store(store_facts())
except StoreError as e:
    st.error(literal(e))
except duckdb.Error as e:  # a damaged block met by a query after the store opened
    damage = explain(e, db_path())
    if damage is None:
        raise
    st.error(literal(damage))

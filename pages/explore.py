"""Explore: the Pareto front of the stored runs (landing page)."""
import streamlit as st

from engine.explore import pareto_view
from engine.store import Store

st.title("Explore")
with Store() as store:
    view = pareto_view(store, ["energy_j", "itl_p90_ms"], [False, False], {"task": ["gpqa"]})
st.dataframe(view.front)

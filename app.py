"""Paretoscope: Streamlit entry point (navigation and shared sidebar state)."""
from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Paretoscope", page_icon="📈", layout="wide")

PAGES = [
    st.Page("pages/explore.py", title="Explore", icon="📈", default=True, url_path="explore"),
    st.Page("pages/recommend.py", title="Recommend", icon="🎯", url_path="recommend"),
]

st.navigation(PAGES).run()

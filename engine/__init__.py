"""Paretoscope engine: store, Pareto math, importers, profiler, search and CLI (no Streamlit)."""

"""The yardstick for bench_browser: a Streamlit page holding one plotly scatter and nothing else."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

rng = np.random.default_rng(0)
x = rng.random(200)
st.title("Minimal")
st.plotly_chart(go.Figure(go.Scattergl(x=x, y=1 / (x + 0.05), mode="markers")), key="front_plot")

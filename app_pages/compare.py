"""Compare: two to eight runs side by side (ids in the URL: ?runs=ID,ID), differences against the
first run and the best run per metric. Reads widgets, calls engine.compare, draws."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine import timeseries
from engine.compare import MAX_RUNS, compare
from ui.state import open_store, read_params, write_params
from ui.text import plain

st.title("Compare")
st.caption(f"Runs side by side: pick 2 to {MAX_RUNS} runs on Explore (select points or table rows), or paste "
           "their ids (a unique start of an id is enough).")

if "c_ids" not in st.session_state:
    st.session_state["c_ids"] = read_params().get("runs", "")
text = st.text_input("Run ids, separated by commas", key="c_ids", placeholder="8f72f9de, 521931ee")
ids = [i.strip() for i in text.replace(" ", ",").split(",") if i.strip()]
write_params({"runs": ",".join(ids)} if ids else {})
if len(ids) < 2:
    st.info("Give at least two run ids.")
    st.stop()

try:
    with open_store() as store:
        cmp = compare(store, ids)
except ValueError as e:
    st.error(str(e))
    st.stop()

labels = cmp.labels
heads = cmp.runs[["label", *[c for c in ("model", "hardware", "precision", "batch_size", "num_gpus", "task", "run_id")
                             if c in cmp.runs.columns]]]
st.dataframe(heads, hide_index=True)

rows = cmp.rows
metrics = rows[rows["role"] == "metric"].reset_index(drop=True)
config = rows[rows["role"] != "metric"].reset_index(drop=True)


def highlight_best(row: pd.Series) -> list[str]:
    best = str(row.get("best") or "").split(", ")
    return ["background-color: rgba(44,160,44,0.18); font-weight: 600" if c in best else "" for c in row.index]


ratio_cols = [c for c in metrics.columns if c.endswith(" ratio")]
diff_cols = [c for c in metrics.columns if c.endswith(" diff")]
shown = ["field", "unit", "direction", *labels, *ratio_cols, *diff_cols] + (["best"] if "best" in metrics else [])
st.subheader("Metrics")
st.caption(f"Ratio and difference are against {labels[0]}; the best run of each metric with a direction is highlighted.")
if "best" in metrics:
    metrics["best"] = metrics["best"].fillna("")


def height(n: int) -> int:  # every row visible: a comparison is read whole
    return 35 * (n + 1) + 3


st.dataframe(metrics[shown].style.apply(highlight_best, axis=1).format(precision=4, na_rep="–"), hide_index=True,
             key="c_metrics", height=height(len(metrics)))
st.subheader("Configuration")
differs = config[labels].astype(str).nunique(axis=1) > 1
st.dataframe(config[["field", *labels]].assign(differs=differs.map({True: "differs", False: ""})), hide_index=True,
             key="c_config", height=height(len(config)))

st.subheader("Power and utilization over time")
with open_store() as store:
    series = timeseries.read(store, list(cmp.runs["run_id"]))
if series.empty:
    st.caption("None of these runs carries a timeline: profiled runs do (the sampler's power and utilization over "
               "the measurement window), and so do imported nvidia-smi or Zeus power logs.")
else:
    label_of = dict(zip(cmp.runs["run_id"].astype(str), labels))
    names = list(dict.fromkeys(series["name"]))
    for col, name in zip(st.columns(min(len(names), 2)) * len(names), names):
        part = series[series["name"] == name]
        fig = go.Figure([go.Scatter(x=g["t_s"], y=g["value"], mode="lines", name=plain(label_of.get(rid, rid)))
                         for rid, g in part.groupby("run_id", sort=False)])
        unit = timeseries.UNITS.get(name, "")
        fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title=dict(text=plain(name), x=0),
                          xaxis=dict(title=dict(text="seconds into the measurement window")),
                          yaxis=dict(title=dict(text=unit)), legend=dict(orientation="h", y=-0.25))
        col.plotly_chart(fig, key=f"c_ts_{name}", config={"displaylogo": False})
    missing = [label_of[r] for r in label_of if r not in set(series["run_id"].astype(str))]
    if missing:
        st.caption(f"No timeline for {', '.join(missing)}.")

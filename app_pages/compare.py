"""Compare: two to eight runs side by side (ids in the URL: ?runs=ID,ID), differences against the
first run and the best run per metric. Reads widgets, calls engine.compare, draws."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.compare import MAX_RUNS, compare
from ui.state import open_store, read_params, write_params

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

"""Profile: measure a grid of configurations on this machine, in a separate process."""
import pandas as pd
import streamlit as st

from engine.profiler import knobs, launch
from engine.profiler.hardware import detect
from engine.profiler.workloads import BUILTIN
from engine.store import default_db_path
from ui.state import open_store

st.title("Profile")
db = default_db_path()


@st.cache_resource
def hardware():
    return detect()


hw = hardware()
st.caption(f"This machine: **{hw.name}**" + (f" · CUDA {hw.cuda_version}" if hw.cuda_available else " · CPU only")
           + f" · {hw.cpu_cores_logical} CPU cores · torch {hw.torch_version}")
if hw.notes:
    with st.expander("What could not be read here"):
        for note in hw.notes:
            st.write("- " + note)

busy = launch.running(db)
mine = st.session_state.get("sweep_id")
if not mine and busy:
    mine = busy[0]  # a sweep started from another session: follow it too

name = st.selectbox("Workload", list(BUILTIN), key="workload", width=320,
                    help="Built-in workloads; your own model: python -m engine profile --model pkg.mod:factory")
w = BUILTIN[name]
precisions = [p for p in knobs.PRECISIONS if hw.cuda_available or p not in ("int4", "fp8")]
grid = {"precision": st.pills("Precision", precisions, selection_mode="multi", default=["float32"],
                              key=f"{name}-precision",
                              help="int8 = dynamic int8 quantization on the CPU, weight-only int8 on a GPU")}
grid["batch_size"] = st.pills("Batch size", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], selection_mode="multi",
                              default=w.defaults["batch_size"], key=f"{name}-batch")
if "seq_len" in w.knobs:
    grid["seq_len"] = st.pills("Prompt length (tokens)", [8, 16, 32, 64, 128, 256], selection_mode="multi",
                               default=w.defaults["seq_len"], key=f"{name}-seq")
    grid["gen_len"] = st.pills("Generated tokens", [4, 8, 16, 32, 64, 128], selection_mode="multi",
                               default=w.defaults["gen_len"], key=f"{name}-gen")
k1, k2 = st.columns(2)
grid["compile"] = [v == "on" for v in k1.pills("torch.compile", ["off", "on"], selection_mode="multi",
                                               default=["off"], key=f"{name}-compile",
                                               help="on: slow to start on a small CPU (tens of seconds per configuration)")]
grid["threads"] = k2.pills("CPU threads", list(range(1, (hw.cpu_cores_logical or 1) + 1)), selection_mode="multi",
                           default=[], key=f"{name}-threads", help="none picked: torch's default")
c1, c2, c3 = st.columns(3, gap="large", vertical_alignment="bottom")
repeats = c1.number_input("Minimum timed batches per configuration", 1, 1000, 5)
min_time = c2.number_input("Minimum seconds per configuration", 0.0, 60.0, 1.0, step=0.5)
with c3:
    grid = {k: sorted(v, key=lambda x: knobs.PRECISIONS.index(x) if k == "precision" else x)
            for k, v in grid.items() if v}
    configs = knobs.expand(grid, w.defaults)
    ready = bool(grid.get("precision")) and bool(grid.get("batch_size"))
    with open_store() as store:
        est = launch.estimate_s(store, w, configs) + len(configs) * max(min_time - 1.0, 0)
    st.markdown(f"**{len(configs)} configurations** · about **{est:.0f} s**" if ready
                else "Pick at least one precision and one batch size.")
    if st.button("Start", type="primary", disabled=bool(busy) or not ready):
        st.session_state["sweep_id"] = launch.start(db, name, grid, int(repeats), float(min_time), len(configs))
        st.rerun()

if busy:
    st.info("A sweep is running on this machine; start the next one when it is done (measurements would disturb each other).")
st.divider()
NUMBERS = {"latency_ms": st.column_config.NumberColumn("latency ms", format="%.4g"),
           "throughput": st.column_config.NumberColumn("throughput /s", format="%.4g"),
           "accuracy": st.column_config.NumberColumn(format="%.4f"),
           "peak_memory_mb": st.column_config.NumberColumn("peak MB", format="%.2f"),
           "energy_j": st.column_config.NumberColumn("J / unit", format="%.4g")}


def _knob(k, v):
    return f"{k}={'on' if v else 'off'}" if k == "compile" else f"{k}={v}"


if not mine:
    st.write("Choose a workload and a grid, then Start. The sweep runs in its own process: other pages and "
             "sessions stay responsive, and each result is stored as soon as it is measured.")
else:
    running = launch.status(db, mine)["state"] not in launch.TERMINAL

    @st.fragment(run_every=1.0 if running else None)
    def progress():
        info = launch.status(db, mine)
        state, n, i = info["state"], info.get("n") or 0, len(info.get("results", []))
        st.subheader(f"Sweep {mine} · {info.get('task', '')}")
        elapsed, remaining = info.get("elapsed_s") or 0, info.get("remaining_s")
        st.progress(min(i / n, 1.0) if n else 0.0, text=f"{i} of {n} configurations · {state}")
        if state not in launch.TERMINAL:
            cur = info.get("current")
            what = ", ".join(_knob(k, v) for k, v in (cur or {}).items() if v is not None) or "starting…"
            st.write(f"Now measuring: **{what}** · elapsed {elapsed:.0f} s"
                     + (f" · about {remaining:.0f} s left" if remaining is not None else ""))
            if info.get("cancel_requested"):
                st.warning("Cancelling after the current configuration…")
            elif st.button("Cancel", key="cancel", help="stops after the current configuration; its runs so far stay stored"):
                launch.cancel(db, mine)
                st.rerun(scope="fragment")
        else:
            msg = {"done": st.success, "cancelled": st.warning}.get(state, st.error)
            msg(f"Sweep {state} after {elapsed:.0f} s: {i} of {n} configurations measured and stored."
                + (f" {info['error']}" if info.get("error") else ""))
            if i:
                st.markdown(f'<a href="{launch.explore_url(info.get("task") or name, info.get("source", ""))}" '
                            f'target="_self">Open these runs in Explore: accuracy vs latency →</a>', unsafe_allow_html=True)
        if info.get("results"):
            df = pd.DataFrame(info["results"]).dropna(axis=1, how="all")
            st.dataframe(df, hide_index=True, column_config=NUMBERS)
        if state in launch.TERMINAL and st.session_state.get("shown_done") != mine:
            st.session_state["shown_done"] = mine
            st.rerun()  # refresh the whole page: Start is available again

    progress()

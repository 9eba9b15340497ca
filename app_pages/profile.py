"""Profile: measure a grid of configurations on this machine or on a Ray cluster, in a separate process."""
import pandas as pd
import streamlit as st

from engine.counts import counted
from engine.profiler import knobs, launch
from engine.profiler.hardware import detect
from engine.profiler.hf import HFWorkload as HFWorkloadClass
from engine.profiler.quant import QUANTS
from engine.profiler.sweep import PROGRESS_KEYS
from engine.profiler.workloads import BUILTIN, get_workload
from engine.store import default_db_path
from ui.state import open_store
from ui.text import literal

st.title("Profile")
db = default_db_path()


@st.cache_resource
def hardware():
    return detect()


hw = hardware()
st.caption(f"This machine: **{literal(hw.name)}**" + (f" · CUDA {hw.cuda_version}" if hw.cuda_available else " · CPU only")
           + f" · {hw.cpu_cores_logical} CPU cores · torch {hw.torch_version}")
if hw.notes:
    with st.expander("What could not be read here"):
        for note in hw.notes:
            st.write("- " + literal(note))

busy = launch.running(db)
mine = st.session_state.get("sweep_id")
if not mine and busy:  # a sweep started from another session: follow it too (a search: the Search tab does)
    mine = next(iter(launch.running(db, "sweep")), None)

HF = "hf: a Hugging Face model"
device = "cuda:0" if hw.cuda_available else "cpu"


@st.cache_resource(show_spinner="Reading the model's config…", max_entries=8)
def hf_workload(spec: str):
    """The hf workload from its config alone (no weights), or the sentence saying why not."""
    try:
        return get_workload("hf:" + spec, params={"fetch": False}), None
    except Exception as e:
        return None, str(e)


name = st.selectbox("Workload", [*BUILTIN, HF], key="workload", width=320,
                    help="Built-in workloads, or a Hugging Face causal LM; your own model: "
                         "python -m engine profile --model pkg.mod:factory")
spec, problem = "", None
if name == HF:
    spec = st.text_input("Model: a hub id (org/name) or a local folder", key="hf-model",
                         placeholder="Qwen/Qwen2.5-0.5B-Instruct or /path/to/saved/model",
                         help="safetensors weights only; trust_remote_code is never set").strip()
    w, problem = hf_workload(spec) if spec else (None, None)
    if problem:
        st.error(problem)
    if w is None:
        w = HFWorkloadClass
else:
    w = BUILTIN[name]
precisions = [p for p in (w.choices.get("precision") or knobs.PRECISIONS) if hw.cuda_available or p not in ("int4", "fp8")]
grid = {"precision": st.pills("Precision", precisions, selection_mode="multi", default=[w.defaults["precision"][0]]
                              if name == HF and w is not HFWorkloadClass else ["float32"], key=f"{name}-precision",
                              help="the dtype the weights load in" if name == HF else
                              "int8 = dynamic int8 quantization on the CPU, weight-only int8 on a GPU")}
if "quant" in w.knobs:
    grid["quant"] = st.pills("Quantization (torchao)", list(QUANTS), selection_mode="multi", default=["none"],
                             key=f"{name}-quant", help="int4-weight runs on the CPU through torchao's prototype "
                             "layout; fp8 needs an NVIDIA GPU with compute capability 8.9+ (else stored as skipped)")
grid["batch_size"] = st.pills("Batch size", [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], selection_mode="multi",
                              default=[1] if name == HF else w.defaults["batch_size"], key=f"{name}-batch")
if "prompt_len" in w.knobs:
    grid["prompt_len"] = st.pills("Prompt length (tokens)", [8, 16, 32, 64, 128, 256, 512, 1024, 2048],
                                  selection_mode="multi", default=[32], key=f"{name}-prompt")
    grid["gen_len"] = st.pills("Generated tokens", [4, 8, 16, 32, 64, 128, 256], selection_mode="multi",
                               default=[16], key=f"{name}-gen")
if "seq_len" in w.knobs:
    grid["seq_len"] = st.pills("Prompt length (tokens)", [8, 16, 32, 64, 128, 256], selection_mode="multi",
                               default=w.defaults["seq_len"], key=f"{name}-seq")
    grid["gen_len"] = st.pills("Generated tokens", [4, 8, 16, 32, 64, 128], selection_mode="multi",
                               default=w.defaults["gen_len"], key=f"{name}-gen")
k1, k2, k3 = st.columns(3)
if "compile" in w.knobs:
    grid["compile"] = [v == "on" for v in k1.pills("torch.compile", ["off", "on"], selection_mode="multi",
                                                   default=["off"], key=f"{name}-compile",
                                                   help="on: slow to start on a small CPU (tens of seconds per configuration)")]
grid["threads"] = k2.pills("CPU threads", list(range(1, (hw.cpu_cores_logical or 1) + 1)), selection_mode="multi",
                           default=[], key=f"{name}-threads", help="none picked: torch's default")
limit = hw.gpus[0].power_limit_w if hw.cuda_available and hw.gpus and hw.gpu_energy else None
if limit:  # a power-limit knob only where NVML reads the GPU
    grid["power_limit_w"] = k3.pills("GPU power limit (W)", sorted({round(limit * f) for f in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)}),
                                     selection_mode="multi", default=[], key=f"{name}-power",
                                     help="set through Zeus / NVML for each configuration and restored after (needs root)")
r1, r2 = st.columns([1, 2], vertical_alignment="bottom")
on_ray = r1.radio("Run on", ["this machine", "Ray cluster"], horizontal=True, key="run_on") == "Ray cluster"
ray_at = r2.text_input("Ray cluster at", "local", key="ray_at", disabled=not on_ray,
                       help="local: a private Ray instance on this machine, for this sweep; auto: the cluster "
                            "`ray start --head` started here; HOST:PORT: a cluster's head (its GCS port). Each "
                            "configuration runs as a Ray task on whichever node has a GPU (or its CPU threads) free; "
                            "this machine alone writes the store.").strip()
c1, c2, c3 = st.columns(3, gap="large", vertical_alignment="bottom")
repeats = c1.number_input("Minimum timed batches per configuration", 1, 1000, 5)
min_time = c2.number_input("Minimum seconds per configuration", 0.0, 60.0, 1.0, step=0.5)
with c3:
    order = {"precision": knobs.PRECISIONS, "quant": QUANTS}
    grid = {k: sorted(v, key=lambda x: order[k].index(x) if k in order else x) for k, v in grid.items() if v}
    configs = knobs.expand(grid, w.defaults)
    ready = bool(grid.get("precision")) and bool(grid.get("batch_size")) and (name != HF or w is not HFWorkloadClass)
    with open_store() as store:
        est = launch.estimate_s(store, w, configs) + len(configs) * max(min_time - 1.0, 0)
    st.markdown((f"**{counted(len(configs), 'configuration')}** · spread over the cluster's nodes" if on_ray else
                 f"**{counted(len(configs), 'configuration')}** · about **{est:.0f} s**") if ready
                else "Name a model above." if name == HF else "Pick at least one precision and one batch size.")
    if st.button("Start", type="primary", disabled=bool(busy) or not ready or (on_ray and not ray_at)):
        target = f"hf:{spec}" if name == HF else name
        st.session_state["sweep_id"] = launch.start(db, target, grid, int(repeats), float(min_time), len(configs),
                                                    ray=ray_at if on_ray else None)
        st.rerun()
if ready and name == HF:
    plan = launch.preview(w, configs, device)
    st.markdown(f"**Predicted peak memory, before running** (of about {plan.attrs['free_mb']:,.0f} MB free "
                f"{'on the GPU' if device != 'cpu' else 'on this machine'}): a configuration predicted not to fit "
                f"is skipped with the reason, not run into an out-of-memory error.")
    st.dataframe(plan, hide_index=True, column_config={
        "predicted_memory_mb": st.column_config.NumberColumn("predicted MB", format="%.1f")})

if busy:
    st.info("A sweep or search is measuring on this machine; start the next one when it is done "
            "(measurements would disturb each other).")
st.divider()
NUMBERS = {"latency_ms": st.column_config.NumberColumn("latency ms", format="%.4g"),
           "throughput": st.column_config.NumberColumn("throughput /s", format="%.4g"),
           "accuracy": st.column_config.NumberColumn(format="%.4f"),
           "agreement": st.column_config.NumberColumn(format="%.4f"),
           "kl_div": st.column_config.NumberColumn("KL div", format="%.3g"),
           "perplexity": st.column_config.NumberColumn(format="%.4g"),
           "ttft_ms": st.column_config.NumberColumn("TTFT ms", format="%.4g"),
           "itl_ms": st.column_config.NumberColumn("ITL ms", format="%.4g"),
           "predicted_memory_mb": st.column_config.NumberColumn("predicted MB", format="%.2f"),
           "peak_memory_mb": st.column_config.NumberColumn("peak MB", format="%.2f"),
           "energy_j": st.column_config.NumberColumn("J / unit", format="%.4g")}


def _node_row(n: dict) -> dict:
    """One node of a Ray sweep: what it measures now, and what it finished."""
    now = "; ".join(r["config"] + (f" (attempt {r['attempt']})" if r.get("attempt", 1) > 1 else "")
                    for r in n.get("running", []))
    return {"node": n.get("node"), "hardware": n.get("hardware"), "done": n.get("done", 0),
            "failed": n.get("failed", 0), "queued": n.get("queued"), "measuring now": now}


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
        st.subheader(literal(f"Sweep {mine} · {info.get('task', '')}"))
        elapsed, remaining = info.get("elapsed_s") or 0, info.get("remaining_s")
        st.progress(min(i / n, 1.0) if n else 0.0, text=f"{i} of {counted(n, 'configuration')} · {state}")
        if state not in launch.TERMINAL:
            cur = info.get("current")
            what = ", ".join(_knob(k, v) for k, v in (cur or {}).items() if v is not None) or "starting…"
            if info.get("ray"):
                what = "connecting to the Ray cluster…" if state == "starting" else f"on the Ray cluster at {info['ray']}"
            st.write(f"Now measuring: **{literal(what)}** · elapsed {elapsed:.0f} s"
                     + (f" · about {remaining:.0f} s left" if remaining is not None else ""))
            if info.get("cancel_requested"):
                st.warning("Cancelling the configurations in flight on the cluster…" if info.get("ray")
                           else "Cancelling after the current configuration…")
            elif st.button("Cancel", key="cancel", help="cancels the configurations in flight on the cluster; finished "
                           "runs stay stored" if info.get("ray") else
                           "stops after the current configuration; its runs so far stay stored"):
                launch.cancel(db, mine)
                st.rerun(scope="fragment")
        else:
            msg = {"done": st.success, "cancelled": st.warning}.get(state, st.error)
            msg(literal(f"Sweep {state} after {elapsed:.0f} s: {i} of {counted(n, 'configuration')} measured and stored."
                        + (f" {info['error']}" if info.get("error") else "")))
            if i:
                x, y = launch.explore_axes(info)
                url = launch.explore_url(info.get("task") or name, info.get("source", ""), x, y)
                st.markdown(f'<a href="{url}" target="_self">Open these runs in Explore: {x} vs {y} →</a>',
                            unsafe_allow_html=True)
        if info.get("nodes"):
            st.markdown("**Progress per node**")
            st.dataframe(pd.DataFrame([_node_row(n) for n in info["nodes"]]).dropna(axis=1, how="all"), hide_index=True)
        if info.get("results"):
            df = pd.DataFrame(info["results"]).dropna(axis=1, how="all")
            df = df[[c for c in PROGRESS_KEYS if c in df.columns]]
            st.dataframe(df, hide_index=True, column_config=NUMBERS)
        if state in launch.TERMINAL and st.session_state.get("shown_done") != mine:
            st.session_state["shown_done"] = mine
            st.rerun()  # refresh the whole page: Start is available again

    progress()

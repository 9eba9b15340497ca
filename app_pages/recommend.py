"""Recommend: a suggested configuration from measured runs, and a search over a configuration space."""
from dataclasses import astuple, replace

import pandas as pd
import streamlit as st

from engine import search as S
from engine.counts import counted
from engine.derived import settings_params
from engine.fields import CONFIG_COLUMNS
from engine.profiler import catalog, launch
from engine.quality import headline
from engine.recommend import Constraint, recommend
from engine.recommend_link import RecommendLink, from_params, split_constraint
from engine.store import default_db_path
from ui.figures import recommend_figure
from ui.state import open_store, read_params, settings, store_stamp, write_params
from ui.text import literal

OPS = ["<=", ">=", "<", ">"]
CONFIG_COLS = [c for c in CONFIG_COLUMNS if c != "task"]  # the task is chosen above

st.title("Recommend")
db = default_db_path()
tab_rec, tab_search = st.tabs(["Recommend", "Search"])


def _key(filters: dict | None) -> tuple:
    """Filters as a cache key: (column, values) pairs in column order."""
    return tuple((k, tuple(v)) for k, v in sorted((filters or {}).items()))


def _options(store, col, filters=None):
    """A filter's choices: the column's values among the runs ``filters`` keep."""
    return cached_options(store_stamp(), col, _key(filters), store)


def _filled(store, filters) -> set:
    """The fields some of the runs ``filters`` keep have a value in (derived ones by the sidebar's prices)."""
    return set(cached_filled(store_stamp(), astuple(settings()), _key(filters), store))


# The questions each rerun asks of the store before any answer: kept per store file as the
# recommendation is. At 1,000,000 runs they took 0.17-0.2 s of every rerun (in cProfile: the
# filled columns 24 ms a look, three looks; the choices of four filters on each tab, 6-7 ms each;
# a task's default objectives 40 ms), though only a write to the store changes them.
@st.cache_data(show_spinner=False, max_entries=64)
def cached_options(stamp: tuple, col: str, filters: tuple, _store) -> list:
    return _store.distinct(col, {k: list(v) for k, v in filters}) if _store.has_field(col) else []


@st.cache_data(show_spinner=False, max_entries=32)
def cached_filled(stamp: tuple, prices: tuple, filters: tuple, _store) -> list[str]:
    return _store.non_empty_columns({k: list(v) for k, v in filters})


@st.cache_data(show_spinner=False, max_entries=16)
def cached_default_objectives(stamp: tuple, prices: tuple, task: str, _store) -> tuple[list[str], list[bool]]:
    return S.default_objectives(_store, task)


# Kept per store file (``stamp``) and derived-metric settings (``prices``): a rerun that changes
# neither nor the question (the other tab's widgets, a return to the page) does not query again.
# At 1,000,000 runs a recommendation takes 0.9-1.1 s and a task's search space 0.6-0.7 s.
@st.cache_data(show_spinner=False, max_entries=16)
def cached_recommendation(stamp: tuple, prices: tuple, objectives: tuple, maximize: tuple, constraints: tuple,
                          filters: tuple, weights: tuple | None, _store):
    """The Recommendation, without its ``runs`` (every filtered run), and its figure (a dict for
    st.plotly_chart, and the figure's caption; None where there is nothing to plot): the page draws
    the runs only through the figure, and a cache hit copies what is kept. At 1,000,000 runs each
    page load spent 37 ms copying the runs and 90 ms redrawing the figure from them (py-spy)."""
    rec = recommend(_store, list(objectives), list(maximize), [Constraint.parse(c) for c in constraints],
                    {k: list(v) for k, v in filters}, list(weights) if weights else None)
    figure = None
    if rec.pick is not None and len(objectives) >= 2:
        fig, said = recommend_figure(rec, list(objectives), [c for c in CONFIG_COLS if c in rec.runs.columns])
        figure = (fig.to_dict(), said)
    return replace(rec, runs=None), figure


@st.cache_data(show_spinner=False, max_entries=16)
def cached_space_size(stamp: tuple, task: str, objectives: tuple, _store) -> int:
    return len(S.task_space(_store, task, list(objectives)))


def widgets_from_link(store) -> list[str]:
    """First visit of a session: put a shared link's state into the widgets' keys."""
    link, notes = from_params(store, read_params())
    if link is None:
        return notes
    ss = st.session_state
    task = link.task or ss.get("r_task")
    if link.task:
        ss["r_task"] = link.task
    for key, name in (("r_hw", "hardware"), ("r_model", "model"), ("r_prec", "precision")):
        ss[key] = link.filters.get(name, [])
    if link.objectives:
        ss[f"r_obj_{task}"] = link.objectives
        for o, m in zip(link.objectives, link.maximize):
            ss[f"r_dir_{o}"] = "max" if m else "min"
    ss["r_use_w"] = bool(link.weights)
    for o, w in zip(link.objectives, link.weights or []):
        ss[f"r_w_{o}"] = w
    quality = headline(store, {"task": [task]} if task else {})
    rest = [c for c in link.constraints if not (quality and c.replace(" ", "") == f"{quality}>=best-1%")]
    if quality:
        ss[f"r_q1_{task}"] = len(rest) < len(link.constraints)
    ss["r_ncons"] = len(rest)
    for i, c in enumerate(rest):
        ss[f"r_cm_{i}"], ss[f"r_co_{i}"], ss[f"r_cv_{i}"] = split_constraint(c)
    return notes


def _search_failure(info: dict) -> str:
    """One sentence for a search process that failed or died."""
    lines = [x.strip() for x in str(info.get("error") or "").splitlines() if x.strip()]
    why = lines[-1] if lines else "it left no message"
    if info["state"] == "stopped":
        return f"The search process stopped before it finished: {why}"
    return f"The search failed: {why}"


def _hv_chart(trace: list[float], height: int, label: str | None = None):
    st.line_chart(pd.DataFrame({"evaluations": range(1, len(trace) + 1), "hypervolume": trace}),
                  x="evaluations", y="hypervolume", y_label=label, height=height)


def _follow_search(sid: str) -> None:
    """A measure search in its own process (launch.start_search): its progress, read from its progress
    file every second while it runs, then its result (kept in the session like a lookup's)."""
    first = launch.status(db, sid)
    if first["state"] in launch.TERMINAL and first.get("result") and st.session_state.get("search_shown") != sid:
        r = first["result"]
        st.session_state["search_shown"] = sid
        st.session_state["search_result"] = (first.get("task"), r["summary"], r["trace_label"], r["trace"], r["notes"],
                                             pd.DataFrame(r["front"], columns=r["columns"]))

    @st.fragment(run_every=1.0 if first["state"] not in launch.TERMINAL else None)
    def progress():
        info = launch.status(db, sid)
        state, steps, n = info["state"], info.get("results") or [], info.get("n") or 0
        done = state in launch.TERMINAL
        if not done:
            st.progress(min(len(steps) / n, 1.0) if n else 0.0,
                        text=literal(f"Searching {info.get('task', '')}: {len(steps)} of {n} evaluations · {state} · "
                                     f"{info.get('elapsed_s') or 0:.0f} s"))
        elif state == "done":
            st.success(literal(f"Search done: {len(steps)} evaluations in {info.get('elapsed_s') or 0:.0f} s, "
                               "each run stored."))
        elif state == "cancelled":
            st.warning(literal(f"Search cancelled after {counted(len(steps), 'evaluation')}; the runs it measured stay stored."))
        else:
            st.error(literal(_search_failure(info)))
        if info.get("cluster"):
            st.markdown(literal(f"On {info['cluster']}: {counted(info['slots'], 'configuration')} measured at a time"))
        if steps:
            with st.expander(f"Evaluations ({len(steps)})", expanded=not done):
                for s_ in steps:
                    st.markdown(literal(s_.get("line") or f"[{s_.get('n')}]"))
            if not done:
                _hv_chart([s_["trace"] for s_ in steps], 200)
        if not done:
            if info.get("cancel_requested"):
                st.warning("Cancelling after the current evaluation…" if not info.get("ray")
                           else "Cancelling once the evaluations in flight on the cluster finish…")
            elif st.button("Cancel search", key="s_cancel",
                           help="stops before the next evaluation; the runs measured so far stay stored"):
                launch.cancel(db, sid)
                st.rerun(scope="fragment")
        elif st.session_state.get("search_refreshed") != sid:
            st.session_state["search_refreshed"] = sid
            st.rerun()  # the whole page: the result below, Start available again

    progress()


with open_store() as store:  # one connection for both tabs' questions: a second open took 25-35 ms of every rerun at 1e6 runs
    with tab_rec:  # price and carbon intensity come from the sidebar's settings
        metrics = [f.name for f in store.metrics()]
        tasks = _options(store, "task")
        if st.session_state.get("r_task") not in tasks and tasks:
            st.session_state["r_task"] = "gpqa" if "gpqa" in tasks else tasks[0]
        if "_rec_loaded" not in st.session_state:  # a shared link reproduces its recommendation
            st.session_state["_rec_notes"] = widgets_from_link(store)
            st.session_state["_rec_loaded"] = True
        for note in st.session_state.get("_rec_notes", []):
            st.info(literal(note))
        c1, c2, c3, c4 = st.columns(4)
        task = c1.selectbox("Task", tasks, key="r_task")
        base = {"task": [task]} if task else {}
        hw = c2.multiselect("Hardware", _options(store, "hardware", base), key="r_hw")
        models = c3.multiselect("Model", _options(store, "model", base), key="r_model")
        precs = c4.multiselect("Precision", _options(store, "precision", base), key="r_prec")
        filters = dict(base)
        for col, vals in (("hardware", hw), ("model", models), ("precision", precs)):
            if vals:
                filters[col] = vals
        filled = _filled(store, base)
        measured = [m for m in metrics if m in filled or m in ("cost_usd", "carbon_g")]
        quality = headline(store, base)  # the task's quality figure (accuracy, a benchmark score), if it has one

        st.markdown("**Objectives**")
        defaults = [m for m in (quality, "energy_j") if m in measured] or \
            [m for m in ("energy_j", "itl_p90_ms" if "itl_p90_ms" in measured else "latency_ms") if m in measured]
        st.session_state.setdefault(f"r_obj_{task}", defaults)
        st.session_state[f"r_obj_{task}"] = [o for o in st.session_state[f"r_obj_{task}"] if o in measured]
        objectives = st.multiselect("Objectives", measured, key=f"r_obj_{task}", label_visibility="collapsed")
        maximize = []
        if objectives:
            cols = st.columns(len(objectives))
            for col, o in zip(cols, objectives):
                st.session_state.setdefault(f"r_dir_{o}", store.field(o).direction or "min")
                maximize.append(col.radio(literal(o), ["min", "max"], horizontal=True, key=f"r_dir_{o}") == "max")
        use_w = st.checkbox("Weigh the objectives (pick nearest the weights instead of the knee)", key="r_use_w")
        weights = None
        if use_w and objectives:
            cols = st.columns(len(objectives))
            for o in objectives:
                st.session_state.setdefault(f"r_w_{o}", 0.5)
            weights = [col.slider(f"weight of {literal(o)}", 0.0, 1.0, step=0.05, key=f"r_w_{o}")
                       for col, o in zip(cols, objectives)]
            if sum(weights) == 0:
                weights = None

        st.markdown("**Constraints**")
        constraints = []
        if quality and st.toggle(literal(f"Keep {quality} within 1 % of the best ({quality} >= best-1%)"), key=f"r_q1_{task}"):
            constraints.append(f"{quality}>=best-1%")
        st.session_state.setdefault("r_ncons", 1)
        n_cons = st.number_input("More constraints", 0, 6, key="r_ncons")
        for i in range(int(n_cons)):
            a, b, c = st.columns([3, 1, 2])
            if st.session_state.get(f"r_cm_{i}") not in measured:
                st.session_state[f"r_cm_{i}"] = "itl_p90_ms" if "itl_p90_ms" in measured else measured[0]
            name = a.selectbox("metric", measured, key=f"r_cm_{i}", label_visibility="collapsed")
            op = b.selectbox("op", OPS, key=f"r_co_{i}", label_visibility="collapsed")
            st.session_state.setdefault(f"r_cv_{i}", "60" if name == "itl_p90_ms" else "")
            val = c.text_input("value", key=f"r_cv_{i}", label_visibility="collapsed", placeholder="a number, or best-1%")
            if val.strip():
                constraints.append(f"{name}{op}{val.strip()}")

        write_params(RecommendLink(task, {k: v for k, v in (("hardware", hw), ("model", models), ("precision", precs)) if v},
                                   objectives, maximize, weights, constraints).to_params()
                     | settings_params(settings()))  # a cost or carbon recommendation needs its prices
        rec, error = None, None
        if not objectives:
            st.info("Pick at least one objective.")
        else:
            try:
                rec, figure = cached_recommendation(store_stamp(), astuple(settings()), tuple(objectives),
                                                    tuple(maximize), tuple(constraints), _key(filters),
                                                    tuple(weights) if weights else None, store)
            except ValueError as e:
                error = str(e)
        if error:
            st.error(literal(error))
        if rec is not None:
            if rec.pick is None:
                st.error(literal(f"Nothing is feasible: {rec.reason}"))
            else:
                pick_cols = [c for c in CONFIG_COLS if c in rec.front.columns] + objectives
                st.success(literal(rec.reason))  # model names are data: never Markdown
                picks = [{"": "pick", **{k: rec.pick.get(k) for k in pick_cols}}]
                if rec.runner_up:
                    picks.append({"": "runner-up", **{k: rec.runner_up.get(k) for k in pick_cols}})
                # four significant digits, as on Explore: a cost per token reads 9.381e-08, not 0.00000009
                numbers = {c: st.column_config.NumberColumn(format="%.4g")
                           for c in [*objectives, *(c.name for c in map(Constraint.parse, constraints))]}
                st.dataframe(pd.DataFrame(picks), hide_index=True, column_config=numbers)
                if figure is not None:
                    fig, said = figure
                    st.plotly_chart(fig, width="stretch")
                    if said:
                        st.caption(said)
                st.markdown(f"**Feasible Pareto front** ({counted(len(rec.front), 'run')}, in order of preference)")
                show = [c for c in CONFIG_COLS if c in rec.front.columns] + objectives + \
                    [c.name for c in map(Constraint.parse, constraints) if c.name not in objectives]
                st.dataframe(rec.front[list(dict.fromkeys(show))], hide_index=True, column_config=numbers)
                if rec.costs:
                    st.markdown("**What each constraint costs**")
                    for c in rec.costs:
                        st.markdown(f"- {literal(c.text)}")
                for title, table, key in (("Best configuration per hardware", rec.per_hardware, "hardware"),
                                          ("Best configuration per model", rec.per_model, "model")):
                    if table is not None:
                        st.markdown(f"**{title}** (the knee of its own feasible front, under the same constraints)"
                                    if not weights and len(objectives) > 1 else f"**{title}** (under the same constraints)")
                        cols = [key] + [c for c in CONFIG_COLS if c != key and c in table.columns] + objectives + ["feasible_runs"]
                        st.dataframe(table[list(dict.fromkeys(cols))], hide_index=True, column_config=numbers)

    with tab_search:
        tasks = _options(store, "task")
        source = st.radio("Space", ["task (stored runs)", "workload (profile now)"], horizontal=True, key="s_kind")
        c1, c2, c3, c4 = st.columns([2, 3, 2, 1])
        if source.startswith("task"):
            name = c1.selectbox("Task", tasks, key="s_task")
            obj_default, max_default = cached_default_objectives(store_stamp(), astuple(settings()), name, store) if name else ([], [])
            filled = _filled(store, {"task": [name]})
            measured = [f.name for f in store.metrics() if f.name in filled]
            evaluator = "lookup"
            space_n = cached_space_size(store_stamp(), name, tuple(obj_default), store) if name else 0
        else:
            name = c1.selectbox("Workload", list(catalog.NAMES), key="s_wl")
            obj_default, max_default = S.WORKLOAD_OBJECTIVES
            measured = [f.name for f in store.metrics()] + [m for m in obj_default if not store.has_field(m)]
            evaluator = "measure"
            space_n = len(S.workload_space(name))
        objectives = c2.multiselect("Objectives", measured, default=[o for o in obj_default if o in measured], key=f"s_obj_{name}")
        budget = c3.number_input("Budget (evaluations)", 1, max(1, space_n), max(1, min(space_n, round(space_n * 0.25))), key=f"s_budget_{name}")
        seed = c4.number_input("Seed", 0, 10_000, 0, key="s_seed")
        dirs = {o: m for o, m in zip(obj_default, max_default)}
        maximize = [dirs.get(o, (store.field(o).direction == "max") if store.has_field(o) else False) for o in objectives]


with tab_search:
    on_ray, ray_at = False, ""
    if evaluator == "measure":
        r1, r2 = st.columns([1, 2], vertical_alignment="bottom")
        on_ray = r1.radio("Run on", ["this machine", "Ray cluster"], horizontal=True, key="s_run_on") == "Ray cluster"
        ray_at = r2.text_input("Ray cluster at", "local", key="s_ray_at", disabled=not on_ray,
                               help="local: a private Ray instance on this machine; auto: the cluster `ray start "
                                    "--head` started here; HOST:PORT: a cluster's head (its GCS port). The search "
                                    "proposes as many configurations at a time as the cluster has free workers.").strip()
    busy = launch.running(db) if evaluator == "measure" else []  # a sweep or search measuring here now
    st.caption(f"{evaluator} evaluator: {counted(space_n, 'configuration')} in the space"
               + ((" (each evaluation runs the profiler on the Ray cluster and this machine stores the run)" if on_ray
                   else " (each evaluation runs the profiler on this machine and stores the run)")
                  + "; the search runs in its own process" if evaluator == "measure" else ""))
    if busy:
        st.info("A sweep or search is measuring on this machine; start the next one when it is done "
                "(measurements would disturb each other).")
    if st.button("Start search", type="primary", key="s_start",
                 disabled=len(objectives) < 1 or bool(busy) or (on_ray and not ray_at)):
        if evaluator == "measure":  # the profiler runs in its own process; the page follows its progress file
            try:
                sid = launch.start_search(db, name, objectives, maximize, int(budget), int(seed),
                                          ray=ray_at if on_ray else None)
            except (ValueError, OSError) as e:
                st.error(literal(f"Could not start the search: {e}"))
            else:
                st.session_state["search_id"] = sid
                st.session_state.pop("search_result", None)
                st.rerun()
        else:  # a task's stored runs: pure computation, here
            status = st.status(literal(f"Searching {name} ..."), expanded=True)
            chart = st.empty()
            hv: list[float] = []
            with open_store() as store:
                space = S.task_space(store, name, objectives)

            def step(n, row, h):  # h: the engine's trace (share of the true front's hypervolume where known)
                hv.append(h)
                status.write(literal(f"[{n}/{budget}] " + ", ".join(f"{k}={row.get(k)}" for k in space.knobs)
                                     + (f" ({row['search_note']})" if row.get("search_note") else "")))
                chart.line_chart(pd.DataFrame({"evaluations": range(1, len(hv) + 1), "hypervolume": hv}),
                                 x="evaluations", y="hypervolume", height=200)

            res = S.search(space, S.LookupEvaluator(space), objectives, maximize, int(budget), seed=int(seed), on_step=step)
            chart.empty()
            status.update(label=f"Done: {len(res.evaluated)} of {counted(len(space), 'configuration')} evaluated", state="complete",
                          expanded=False)
            st.session_state.pop("search_id", None)
            st.session_state["search_result"] = (name, res.summary(), res.trace_label, res.trace, res.notes,
                                                 res.front[[c for c in space.knobs + objectives if c in res.front.columns]])
    mine = st.session_state.get("search_id")
    if not mine and evaluator == "measure":
        mine = next(iter(launch.running(db, "search")), None)  # one started from another session: follow it too
    if mine:
        _follow_search(mine)
    if "search_result" in st.session_state:
        name_, summary, label, hv, notes, front = st.session_state["search_result"]
        st.markdown(f"**Hypervolume over evaluations** ({literal(name_)}): {summary} after {len(hv)} evaluations")
        st.line_chart(pd.DataFrame({"evaluations": range(1, len(hv) + 1), "hypervolume": hv}),
                      x="evaluations", y="hypervolume", y_label=label, height=260)
        for note in notes:  # configurations measured again to settle a tie with the front
            st.caption(literal(note))
        st.markdown(f"**Front found** ({counted(len(front), 'configuration')})")
        st.dataframe(front, hide_index=True)

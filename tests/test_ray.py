"""Sweeps and searches on a real local Ray instance (2 CPUs, started once for this module):
runs stored with their node, a worker that dies mid-configuration, Ctrl-C, cancel, an unreachable
cluster, and the search proposing as many configurations as there are workers."""
import _thread
import json
import os
import signal
import socket
import threading
import time

import pytest

from engine import timeseries
from engine.cli import main
from engine.profiler import cluster, launch
from engine.profiler.sweep import Options, Sweep, new_sweep_id
from engine.profiler.workloads import get_workload
from engine.store import Store
from tests.conftest import ROOT, follow_search, searched, shown

ray = pytest.importorskip("ray")
FAST = ["--repeats", "3", "--min-time", "0.05", "--warmup", "1"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance for the module; `--ray local` in this process uses it, and it is
    shut down only if this fixture started it."""
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


def stored(db):
    with Store(db) as s:
        return s.query(None, None, include_failed=True, order_by="imported_at"), s.imports()


def watch(progress, until, then, timeout=900):
    """A thread that polls a sweep's progress file and calls ``then(info)`` once ``until(info)``;
    its ``fired`` event says whether it did. The time-out is only a backstop: on a busy 2-core
    machine a worker's first task has taken over a minute to start, and a watcher that gave up at
    60 s let the sweep finish uninterrupted."""
    def loop():
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                info = json.loads(progress.read_text())
            except (OSError, ValueError):
                info = None
            if info and until(info):
                then(info)
                t.fired.set()
                return
            time.sleep(0.05)
    t = threading.Thread(target=loop, daemon=True)
    t.fired = threading.Event()
    t.start()
    return t


def settle(db, seconds=1.0):
    """The stored run count, checked again after a while: nothing in flight may still land."""
    n = len(stored(db)[0])
    time.sleep(seconds)
    assert len(stored(db)[0]) == n
    return n


def test_engine_does_not_import_ray():
    """ray is imported only when a --ray sweep or search starts (the app starts fast): no module of
    engine/ or app_pages/ imports it at module level."""
    import ast

    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("app_pages/*.py"), ROOT / "app.py"]:
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "ray" or n.startswith("ray.") for n in names), f"{path} imports ray at module level"


def test_zeus_and_ray_installed_together():
    """requirements-nodeps.txt: zeus without amdsmi, whose presence breaks ray.init() on a machine
    without AMD's library; this module's Ray instance started beside zeus."""
    import importlib.util

    import zeus.monitor  # noqa: F401

    assert importlib.util.find_spec("amdsmi") is None
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2


def test_unreachable_cluster_is_one_sentence_and_nothing_written(empty_db, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    t = time.monotonic()
    assert main(["profile", "--workload", "digits-mlp", "--ray", address, "--db", str(empty_db)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"error: Cannot reach a Ray cluster at {address} (connection refused); "
                   "start one with `ray start --head` or check the address.")
    assert time.monotonic() - t < 10
    assert main(["search", "--workload", "digits-mlp", "--budget", "2", "--ray", f"127.0.0.1:{port}",
                 "--db", str(empty_db)]) == 1
    assert "Cannot reach a Ray cluster" in capsys.readouterr().err
    assert not empty_db.exists()
    assert main(["profile", "--workload", "digits-mlp", "--ray", "nonsense", "--db", str(empty_db)]) == 1
    assert "--ray takes local, auto or HOST:PORT" in capsys.readouterr().err
    assert main(["profile", "--workload", "digits-mlp", "--ray", f"ray://127.0.0.1:{port}", "--db", str(empty_db)]) == 1
    assert "Ray Client addresses (ray://) are not supported" in capsys.readouterr().err
    assert not empty_db.exists()


def test_sweep_on_ray_stores_runs_with_their_node(empty_db, capsys):
    rc = main(["profile", "--workload", "digits-mlp", "--grid", "batch_size=1,8,64,256", "--ray", "local",
               "--db", str(empty_db), *FAST])
    assert rc == 0
    df, imports = stored(empty_db)
    assert len(df) == 4 and (df.status == "ok").all() and (df.accuracy > 0.9).all()
    assert len(imports) == 1 and imports.rows_added[0] == 4  # one batch, appended run by run
    node_ids = {n["NodeID"] for n in ray.nodes()}
    for _, r in df.iterrows():
        env = json.loads(r.environment)
        assert env["ray"]["node_id"] in node_ids and env["ray"]["host"] == socket.gethostname() == r.node
        assert env["ray"]["pid"] != os.getpid()  # measured in a worker; this process only wrote
        assert env["ray"]["resources"] == {"num_cpus": 1, "num_gpus": 0} and env["ray"]["attempt"] == 1
        assert r.hardware == env["hardware"]["cpu_model"]  # no GPU on the node: its CPU
    with Store(empty_db) as s:  # the node's CPU / memory timeline came back with each run
        assert set(timeseries.read(s, list(df.run_id)).run_id) == set(df.run_id)
    out = capsys.readouterr().out
    assert "4 of 4 configurations stored" in out and f"on {socket.gethostname()}: ok" in out
    # stored in completion order: the log's order is the store's
    logged = [int(line.split("batch_size=")[1].split()[0]) for line in out.splitlines() if line.startswith("[")]
    assert logged == list(df.batch_size)


def test_search_on_ray_proposes_a_batch_per_free_worker(empty_db):
    from engine import search as S

    space = S.workload_space("digits-mlp", ["precision=float32,int8", "batch_size=1,8,64"])
    with cluster.connect("local") as c:
        pool = cluster.SearchPool(c, space, empty_db, options=Options(repeats=3, min_time_s=0.05, warmup=1))
        try:
            res = S.search(space, None, ["latency_ms", "throughput"], [False, True], 4, pool=pool)
        finally:
            pool.close()
    assert pool.slots == 2 and pool.most_in_flight == 2  # the cluster kept busy: two measured at once
    assert len(res.evaluated) == 4 and len(set(res.order)) == 4 and len(res.hypervolume) == 4  # 2 by the surrogate
    assert res.hypervolume[-1] > 0 and (res.evaluated.status == "ok").all() and res.evaluated.node.notna().all()
    df, imports = stored(empty_db)
    assert len(df) == 4 and len(imports) == 1  # the driver wrote each evaluation, one batch
    assert sorted(df.run_id.str[-3:].astype(int)) == sorted(res.order)


def test_search_cli_with_ray(empty_db, capsys):
    assert main(["search", "--workload", "digits-mlp", "--grid", "precision=float32,int8", "--grid", "batch_size=1,64",
                 "--budget", "2", "--ray", "local", "--format", "json", "--db", str(empty_db)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["evaluated"]) == 2 and len(out["hypervolume"]) == 2
    assert all(r["node"] == socket.gethostname() for r in out["evaluated"])
    assert main(["search", "--task", "gpqa", "--budget", "3", "--ray", "local", "--db", str(empty_db)]) == 1
    assert "use it with --workload" in capsys.readouterr().err
    assert main(["profile", "--workload", "digits-mlp", "--rounds", "3", "--ray", "local", "--db", str(empty_db)]) == 1
    assert "use --rounds 1 with --ray" in capsys.readouterr().err


def test_search_tab_runs_on_the_cluster(monkeypatch, seeded_db):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PARETOSCOPE_DB", str(seeded_db))
    at = AppTest.from_file(str(ROOT / "app_pages" / "recommend.py"), default_timeout=120).run()
    at.radio(key="s_kind").set_value("workload (profile now)").run()
    at.number_input(key="s_budget_digits-mlp").set_value(2).run()
    at.radio(key="s_run_on").set_value("Ray cluster").run()
    at.button(key="s_start").click().run()
    assert not at.exception, at.exception
    follow_search(at, searched, timeout=180)  # the search runs in its own process
    assert not at.error, [e.value for e in at.error]
    assert any("2 configurations measured at a time" in s.value for s in at.markdown), [m.value for m in at.markdown]
    assert any(f"on {socket.gethostname()}" in m.value for m in at.markdown)
    df = stored(seeded_db)[0]
    assert (df.task == "digits-mlp").sum() == 2 and df[df.task == "digits-mlp"].node.notna().all()


def test_cancel_file_cancels_the_cluster_sweep_and_the_page_shows_its_nodes(monkeypatch, empty_db):
    """The Profile page's Cancel (a cancel file) cancels what is in flight; the page shows the
    sweep's progress per node."""
    from streamlit.testing.v1 import AppTest

    w = get_workload(None, "tests.profile_factory:fragile")
    sid = new_sweep_id()
    folder = launch.sweeps_dir(empty_db) / sid
    folder.mkdir(parents=True)
    with cluster.connect("local") as c:
        sweep = Sweep(w, [{"precision": "float32", "batch_size": b, "compile": False, "threads": None} for b in (1, 3, 4, 5)],
                      db=empty_db, options=Options(repeats=20, min_time_s=0.05, warmup=1), cluster=c, sweep_id=sid,
                      spec={"model": "tests.profile_factory:fragile"}, progress_file=folder / "progress.json",
                      cancel_file=folder / "cancel", log=lambda _m: None)
        watch(folder / "progress.json", lambda info: len(info.get("results") or []) >= 1,
              lambda _: launch.cancel(empty_db, sid))
        rows = sweep.run()
    assert 1 <= len(rows) < 4 and launch.status(empty_db, sid)["state"] == "cancelled"
    assert settle(empty_db) == len(rows)

    monkeypatch.setenv("PARETOSCOPE_DB", str(empty_db))
    at = AppTest.from_file(str(ROOT / "app_pages" / "profile.py"), default_timeout=60)
    at.session_state["sweep_id"] = sid
    at.run()
    assert not at.exception, at.exception
    assert any(f"{len(rows)} of 4 configurations measured" in shown(m.value) for m in at.warning)
    assert any("Progress per node" in m.value for m in at.markdown)
    nodes = at.dataframe[0].value
    assert list(nodes.node) == [socket.gethostname()] and nodes.done[0] == len(rows)


def test_ctrl_c_cancels_what_is_in_flight(empty_db, capsys):
    progress = empty_db.parent / "progress.json"
    # Ctrl-C arrives as KeyboardInterrupt in the main thread, once the first run is stored; as in the
    # command's own process, SIGINT raises KeyboardInterrupt (interrupt_main does nothing
    # where a handler is missing or ignored; whatever an earlier test left is put back after)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        w = watch(progress, lambda info: len(info.get("results") or []) >= 1, lambda _: _thread.interrupt_main())
        rc = main(["profile", "--model", "tests.profile_factory:fragile", "--grid", "batch_size=1,3,4,5,6", "--ray",
                   "local", "--db", str(empty_db), "--progress-file", str(progress), "--repeats", "20", "--warmup", "1"])
    finally:
        signal.signal(signal.SIGINT, handler)
    assert w.fired.is_set(), f"the watcher saw no stored run within {time.monotonic() - started:.0f} s"
    assert rc == 130, f"the sweep ran to its end ({time.monotonic() - started:.0f} s; SIGINT handler before: {handler})"
    assert "Interrupted." in capsys.readouterr().err
    n = settle(empty_db)
    assert 1 <= n < 5
    assert json.loads(progress.read_text())["state"] == "cancelled"
    df, imports = stored(empty_db)
    assert (df.status == "ok").all() and imports.rows_added[0] == n  # whole runs only
    deadline = time.monotonic() + 10
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2  # nothing left running on the cluster


def test_dead_workers_are_failed_runs_and_the_rest_finish(empty_db):
    """batch 2's worker exits on every attempt (os._exit, as when OOM-killed): a failed run after
    the bounded retry; batch 3's worker is killed once from outside (SIGKILL): measured again."""
    progress = empty_db.parent / "progress.json"
    killed = []

    def running_batch3(info):
        return any("batch_size=3" in r["config"] for n in info.get("nodes") or [] for r in n.get("running", []))

    def kill(info):
        pid = next(r["pid"] for n in info["nodes"] for r in n["running"] if "batch_size=3" in r["config"])
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    watch(progress, running_batch3, kill)
    rc = main(["profile", "--model", "tests.profile_factory:fragile", "--grid", "batch_size=1,2,3", "--ray", "local",
               "--ray-retries", "1", "--db", str(empty_db), "--progress-file", str(progress), *FAST])
    assert rc == 0 and killed
    df = stored(empty_db)[0].set_index("batch_size")
    assert df.loc[1, "status"] == "ok" and df.loc[3, "status"] == "ok"
    failed = df.loc[2]
    assert failed.status == "failed" and "worker died mid-configuration" in failed.reason
    assert "WorkerCrashedError" in failed.reason and "2 attempts" in failed.reason
    notes = json.loads(failed.environment)["notes"]
    assert sum("ended when the worker died" in n for n in notes) == 2
    env3 = json.loads(df.loc[3, "environment"])
    assert env3["ray"]["attempt"] == 2 and f"pid {killed[0]}" in env3["notes"][-2]
    assert "measured on attempt 2 of 2" in env3["notes"][-1]
    assert json.loads(progress.read_text())["state"] == "done"

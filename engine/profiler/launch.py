"""Start a sweep as a separate OS process and follow it through its progress file.

The Profile page uses this so that a sweep never blocks the Streamlit server: the sweep process
(`python -m engine profile ... --progress-file F --cancel-file C`) is the only writer of its runs
(short-lived Store connections, one per result), and the page only reads the small JSON file.
Sweep folders live beside the store: <store dir>/sweeps/<sweep id>/{progress.json, cancel, log.txt}.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from engine.profiler.sweep import new_sweep_id, write_json
from engine.store import ROOT

TERMINAL = ("done", "cancelled", "failed", "stopped")
START_OVERHEAD_S = 8.0  # python + torch import and hardware detection in the new process
COMPILE_EXTRA_S = 40.0  # a first guess of torch.compile's cost per configuration on a small CPU


def sweeps_dir(db: Path) -> Path:
    return Path(db).resolve().parent / "sweeps"


def grid_args(grid: dict) -> list[str]:
    out = []
    for key, values in grid.items():
        if values:
            out += ["--grid", f"{key}=" + ",".join(("on" if v else "off") if isinstance(v, bool) else str(v) for v in values)]
    return out


def check_workload(name: str) -> None:
    """A workload a page asks for is a built-in one or ``hf:MODEL`` (weights read as data:
    safetensors only, no remote code): a name from the browser never picks Python code to import
    (the CLI's --model package.module:factory is for the person at the shell)."""
    from engine.profiler.catalog import BUILTIN

    if name not in BUILTIN and not (name.startswith("hf:") and name[3:].strip()):
        raise ValueError(f"Unknown workload '{name}'; the pages run the built-in workloads only "
                         f"({', '.join(BUILTIN)}) or hf:MODEL.")


def start(db: Path, workload: str, grid: dict, repeats: int = 5, min_time_s: float = 1.0, n_configs: int | None = None,
          ray: str | None = None) -> str:
    """Launch the sweep process; returns its sweep id at once. ``ray``: measure on the Ray cluster
    at that address (the process connects; it stays the only writer)."""
    check_workload(workload)
    sid = new_sweep_id()
    d = sweeps_dir(db) / sid
    d.mkdir(parents=True)
    cmd = [sys.executable, "-m", "engine", "profile", "--workload", workload, *grid_args(grid),
           "--repeats", str(repeats), "--min-time", str(min_time_s), "--db", str(Path(db).resolve()),
           "--sweep-id", sid, "--progress-file", str(d / "progress.json"), "--cancel-file", str(d / "cancel"),
           *(["--ray", ray] if ray else [])]
    with open(d / "log.txt", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    write_json(d / "progress.json", {"sweep_id": sid, "source": f"profile:{sid}", "task": workload,
                                     "state": "starting", "i": 0, "n": n_configs, "pid": proc.pid, "ray": ray,
                                     "elapsed_s": 0.0, "remaining_s": None, "results": [], "started": time.time()})
    return sid


def start_search(db: Path, workload: str, objectives: list[str], maximize: list[bool], budget: int, seed: int = 0,
                 ray: str | None = None) -> str:
    """Launch ``python -m engine search --workload ...`` (the measure evaluator) as its own process,
    in a sweeps folder like a sweep's; returns its id at once. ``status()`` follows it: its progress
    file holds one entry per evaluation under "results" and, at the end, the result under "result"."""
    check_workload(workload)
    if len(objectives) != len(maximize) or not objectives:
        raise ValueError("Pick at least one objective.")
    sid = new_sweep_id()
    d = sweeps_dir(db) / sid
    d.mkdir(parents=True)
    cmd = [sys.executable, "-m", "engine", "search", "--workload", workload,
           *[a for o, m in zip(objectives, maximize) for a in ("--objective", f"{o}:{'max' if m else 'min'}")],
           "--budget", str(int(budget)), "--seed", str(int(seed)), "--db", str(Path(db).resolve()),
           "--progress-file", str(d / "progress.json"), "--cancel-file", str(d / "cancel"),
           *(["--ray", ray] if ray else [])]
    with open(d / "log.txt", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    if not (d / "progress.json").exists():  # the process writes its own once its imports are done
        write_json(d / "progress.json", {"kind": "search", "task": workload, "state": "starting", "i": 0,
                                         "n": int(budget), "pid": proc.pid, "ray": ray, "elapsed_s": 0.0,
                                         "results": [], "started": time.time()})
    return sid


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a finished child of this process stays a zombie until reaped
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def status(db: Path, sid: str) -> dict:
    """The sweep's progress; a process that died without saying so is reported as 'stopped'."""
    d = sweeps_dir(db) / sid
    try:
        info = json.loads((d / "progress.json").read_text())
    except (OSError, ValueError):
        return {"sweep_id": sid, "state": "unknown", "results": []}
    if info.get("state") not in TERMINAL and not _alive(info.get("pid")):
        time.sleep(0.2)  # it may have just written its last state
        try:
            info = json.loads((d / "progress.json").read_text())
        except (OSError, ValueError):
            pass
        if info.get("state") not in TERMINAL:
            info["state"] = "stopped"
            info["error"] = info.get("error") or log_tail(db, sid)
    info["cancel_requested"] = (d / "cancel").exists()
    return info


def log_tail(db: Path, sid: str, lines: int = 5) -> str:
    try:
        return "\n".join((sweeps_dir(db) / sid / "log.txt").read_text().strip().splitlines()[-lines:])
    except OSError:
        return ""


def cancel(db: Path, sid: str) -> None:
    (sweeps_dir(db) / sid / "cancel").touch()


def running(db: Path, kind: str | None = None) -> list[str]:
    """Sweeps (and searches that measure) of this store still in progress, newest first; ``kind``:
    only "sweep" or only "search"."""
    d = sweeps_dir(db)
    if not d.exists():
        return []
    ids = sorted((p.name for p in d.iterdir() if (p / "progress.json").exists()), reverse=True)
    out = []
    for s in ids:
        info = status(db, s)
        if info["state"] not in TERMINAL and kind in (None, info.get("kind", "sweep")):
            out.append(s)
    return out


def estimate_s(store, workload, configs: list[dict]) -> float:
    """Seconds the sweep should take: the median time per configuration of this workload's
    earlier profiled runs here (else the workload's first guess), plus torch.compile's cost."""
    per = workload.seconds_per_config
    if store is not None and store.has_field("wall_s"):
        from engine.store import first_row

        row = first_row(store.execute(
            "SELECT median(wall_s) FROM runs WHERE task = ? AND status = 'ok' AND wall_s IS NOT NULL AND coalesce(\"compile\", 'off') = 'off'",
            [workload.name]))
        if row and row[0]:
            per = float(row[0])
    return START_OVERHEAD_S + sum(per + (COMPILE_EXTRA_S if c.get("compile") else 0) for c in configs)


def preview(workload, configs: list[dict], device: str):
    """What each configuration will do, said before Start: its predicted peak memory and whether it
    runs, or is skipped and why (this machine cannot run it, or it is predicted not to fit)."""
    import pandas as pd

    from engine.profiler import memory

    free = memory.free_mb(device)
    rows = []
    for cfg in configs:
        row = {k: v for k, v in cfg.items() if v is not None}
        why = workload.unsupported(cfg, device)
        pred = None if why else workload.predict_memory(cfg, device)
        row["predicted_memory_mb"] = pred["total_mb"] if pred else None
        if pred and pred["total_mb"] > free * memory.HEADROOM:
            why = f"predicted not to fit ({free * memory.HEADROOM:,.0f} MB usable)"
        row["plan"] = f"skipped: {why}" if why else "runs"
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["free_mb"] = free
    return out


def explore_axes(info: dict) -> tuple[str, str]:
    """The sweep's quality metric (accuracy where labels measured it, else fidelity / perplexity)
    against its latency: inter-token latency for token workloads, per-batch latency otherwise."""
    return info.get("quality_metric") or "accuracy", "itl_ms" if info.get("work_unit") == "token" else "latency_ms"


def explore_url(task: str, source: str, x: str = "accuracy", y: str = "latency_ms") -> str:
    """Relative link to the Explore page (the app's root, its default page) filtered to one sweep (filters and objectives in the query)."""
    return "./?" + urlencode({"task": task, "source": source, "x": x, "y": y})

"""Run a grid of configurations of one workload and write each result to the store as it lands.

Each configuration is measured in this process, then written with a short-lived Store
connection (DuckDB allows one writing process at a time; the page and other sessions only hold
theirs briefly too). All of a sweep's runs form one import batch (kind 'profile', source
'profile:<sweep id>'): the first write opens it and later writes append to it, so a cancelled or
crashed sweep keeps the runs it finished.

Progress goes to a small JSON file (written atomically) that the Profile page polls; a cancel
file, when it appears, stops the sweep after the current configuration.

With a Ray ``cluster`` (cluster.py) the configurations are measured as Ray tasks on the cluster's
nodes, all at once as far as its resources go; this process stays the only writer, storing each
row as it comes back (completion order), and a cancel cancels what is in flight.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

from engine import timeseries
from engine.counts import counted
from engine.profiler import energy, hardware, knobs, memory, results
from engine.profiler.energy import EnergyMonitor
from engine.profiler.measure import measure
from engine.store import Store, StoreBusy

QUALITY = ("accuracy", "agreement", "kl_div", "perplexity", "rel_error")  # label-based, then label-free
PROGRESS_KEYS = ("precision", "quant", "batch_size", "seq_len", "prompt_len", "gen_len", "compile", "threads",
                 "power_limit_w", "node", "status", "latency_ms", "ttft_ms", "itl_ms", "throughput", *QUALITY,
                 "peak_memory_mb", "predicted_memory_mb", "energy_j", "reason")

MEMORY_METHOD = {
    "cpu": "the bytes of the model's tensors plus the rise of the process's RSS from once the model was built to "
           "its peak from the warm-up on (the kernel's high-water mark, VmHWM; sampled + ru_maxrss where it cannot "
           "be reset), freed heap handed back to the OS (malloc_trim) first; a model that is not a torch module: "
           "the peak minus RSS before it was built (or, if lower, after it was freed)",
    "cuda": "torch.cuda.max_memory_allocated over the window (weights + activations, caching allocator)",
}


@dataclass
class Options:
    repeats: int = 5  # minimum number of timed batches
    min_time_s: float = 1.0  # minimum length of the measurement window
    warmup: int = 2
    device: str = "auto"
    sample: bool = True
    interval_s: float = 0.05
    memory_budget_mb: float | None = None  # skip configurations predicted to need more (default: what is free)
    until_ci: float | None = None  # keep measuring until 95 % intervals are within this % of the value ...
    max_time_s: float = 120.0  # ... or this long
    rounds: int = 1  # measure every configuration this many times, interleaved; store the median (results.combine_rounds)


def new_sweep_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA device here.")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda[:N], not '{device}'.")
    return "cuda:0" if device == "cuda" else device


def write_json(path: Path, data: dict) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, default=str))
    os.replace(tmp, path)


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:300]


_OOM = re.compile(r"out of memory|can't allocate memory|not enough memory", re.I)
_NO_KERNEL = re.compile(r"not implemented for '(Half|BFloat16|Float8\w*)'|no kernel|unsupported dtype", re.I)


def _release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's malloc_trim), so the
    process's RSS, the CPU's memory measurement, is the live data and not the allocator's cache."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: RSS may include freed pages the allocator kept


class Sweep:
    def __init__(self, workload, configs: list[dict], *, db=None, options: Options | None = None,
                 sweep_id: str | None = None, progress_file=None, cancel_file=None, log=print,
                 cluster=None, spec: dict | None = None, retries: int = 1):
        self.workload, self.configs = workload, configs
        self.db, self.opt = db, options or Options()
        self.sweep_id = sweep_id or new_sweep_id()
        self.source = f"profile:{self.sweep_id}"
        self.progress_file = Path(progress_file) if progress_file else None
        self.cancel_file = Path(cancel_file) if cancel_file else None
        self.log = log
        # on a cluster: ``spec`` is how a node rebuilds the workload (get_workload's name, model, params)
        self.cluster, self.spec, self.retries = cluster, spec or {"name": workload.name}, retries
        if cluster is not None and self.opt.rounds > 1:
            raise ValueError("Rounds measure one machine's drift; on a Ray cluster a configuration's rounds could "
                             "land on different nodes, so measure one round there.")
        self.device = resolve_device(self.opt.device) if cluster is None else cluster.device(self.opt.device)
        self.hw = hardware.detect()
        self.where = self.hw.name if cluster is None else cluster.describe()
        self.import_id: str | None = None
        self.rows: list[dict] = []
        self._quality: dict = {}
        self._flops: dict = {}
        self._nodes: list[dict] | None = None  # per-node progress on a cluster
        self.energy = EnergyMonitor(self.device) if cluster is None else None

    # -- progress --------------------------------------------------------------------------
    def _progress(self, state: str, i: int, current: dict | None, t0: float, error: str | None = None) -> None:
        if not self.progress_file:
            return
        elapsed = time.monotonic() - t0
        done = len(self.rows)
        remaining = elapsed / done * (len(self.configs) - done) if done else None
        write_json(self.progress_file, {
            "sweep_id": self.sweep_id, "source": self.source, "task": self.workload.name, "state": state,
            "i": i, "n": len(self.configs), "current": current, "elapsed_s": elapsed, "remaining_s": remaining,
            "pid": os.getpid(), "error": error, "import_id": self.import_id,
            "work_unit": self.workload.work_unit, "quality_metric": self.quality_metric(),
            "results": [{k: r.get(k) for k in PROGRESS_KEYS if k in r} for r in self.rows],
            "ray": self.cluster.address if self.cluster else None, "nodes": self._nodes,
        })

    def quality_metric(self) -> str:
        """The workload's headline quality, or the first quality metric its runs actually carry."""
        have = [m for m in (self.workload.quality_metric, *QUALITY) if any(r.get(m) is not None for r in self.rows)]
        return have[0] if have else self.workload.quality_metric

    def cancelled(self) -> bool:
        return bool(self.cancel_file and self.cancel_file.exists())

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> list[dict]:
        t0 = time.monotonic()
        try:
            state = self._run_here(t0) if self.cluster is None else self._run_on_cluster(t0)
        except BaseException as e:
            self._progress("cancelled" if isinstance(e, KeyboardInterrupt) else "failed", len(self.rows), None, t0, _short(e))
            raise
        self._progress(state, len(self.rows), None, t0)
        return self.rows

    def _run_here(self, t0: float) -> str:
        n, rounds = len(self.configs), max(self.opt.rounds, 1)
        earlier: list[list[dict]] = [[] for _ in self.configs]  # rounds before the last, per configuration
        for k, i in ((k, i) for k in range(rounds) for i in range(n)):
            cfg = self.configs[i]
            if self.cancelled():
                self.log(f"cancelled after {len(self.rows)} of {counted(n, 'configuration')}")
                return "cancelled"
            step = f"{i + 1}/{n}" + (f" round {k + 1}/{rounds}" if rounds > 1 else "")
            self._progress("running", i, cfg, t0)
            self.log(f"[{step}] {self.workload.name} {_label(cfg)} ...")
            r = self.profile(i, cfg)
            if k < rounds - 1:  # stored once, after its last round
                earlier[i].append(r)
                self.log(f"[{step}]   {_outcome(r)}")
                continue
            self.keep(results.combine_rounds(earlier[i] + [r]) if rounds > 1 else r, step)
        return "done"

    def _run_on_cluster(self, t0: float) -> str:
        """Every configuration submitted at once (Ray queues what does not fit yet); rows stored
        as they come back; a cancel (file or Ctrl-C) cancels what is still in flight."""
        from engine.profiler.cluster import Tasks

        tasks = Tasks(self.cluster, self, self.spec, self.retries)
        try:
            for i, cfg in enumerate(self.configs):
                tasks.submit(i, i, cfg)
            self._nodes = tasks.nodes()
            self._progress("running", 0, None, t0)
            while len(tasks):
                if self.cancelled():
                    for _, r in tasks.wait(0):  # what finished before the cancel stays
                        self.keep(r)
                    tasks.cancel()
                    self.log(f"cancelled after {len(self.rows)} of {counted(len(self.configs), 'configuration')}")
                    return "cancelled"
                done = tasks.wait(0.5)
                for _, r in done:
                    self.keep(r)
                nodes = tasks.nodes()
                if done or nodes != self._nodes:
                    self._nodes = nodes
                    self._progress("running", len(self.rows), None, t0)
        except BaseException:
            tasks.cancel()
            raise
        finally:
            self._nodes = tasks.nodes()
        return "done"

    def keep(self, r: dict, step: str | None = None) -> None:
        """Store one finished configuration (the driver is the only writer) and say how it went:
        after ``step``'s line (which said the configuration), or in full, with the node."""
        self._write(r)
        self.rows.append(r)
        if step:
            self.log(f"[{step}]   {_outcome(r)}")
        else:
            self.log(f"[{len(self.rows)}/{len(self.configs)}] {self.workload.name} {_label(_knobs(r))} on "
                     f"{r.get('node') or 'no node'}: {_outcome(r)}")

    write_wait_s = 30.0  # one attempt's wait for a busy store; the sweep then tries again

    def _write(self, r: dict) -> None:
        """Store one result. While another process holds the store, keep the measurement (it may
        have taken minutes) and try again, saying so in the log, instead of failing the sweep."""
        if self.db is False:
            return  # measuring only (bench)
        start = time.monotonic()
        while True:
            try:
                with Store(self.db, timeout_s=self.write_wait_s) as s, s.transaction():  # the run and its timeline
                    res = s.add_runs(results.frame([r]), source=self.source, kind="profile",
                                     extra_fields=results.fields_for([r]), append_to=self.import_id,
                                     note=f"{self.workload.name} sweep of {counted(len(self.configs), 'configuration')} on {self.where}")
                    timeseries.write(s, r["run_id"], r.get(results.SERIES))
                break
            except StoreBusy as e:
                if self.cancelled():  # the person stopped the sweep: say what is lost rather than wait on
                    self.log(f"  cancelled while the store was busy; this result was not stored: {e}")
                    return
                self.log(f"  store busy for {time.monotonic() - start:.0f} s, result kept, trying again: {e}")
        self.import_id = res.import_id or self.import_id

    def profile(self, i: int, cfg: dict) -> dict:
        """Measure one configuration; never raises for the configuration's own problems."""
        start = time.monotonic()
        w, device = self.workload, self.device
        old_threads = torch.get_num_threads()
        if cfg.get("threads"):
            torch.set_num_threads(cfg["threads"])
        cfg = dict(cfg, threads=torch.get_num_threads())
        base = dict(run_id=f"{self.sweep_id}-{i:03d}", workload=w, cfg=cfg, hw_name=self.hw.name, device=device)
        env = self._environment(cfg)
        predicted = None
        try:
            reason = w.unsupported(cfg, device)
            if reason:
                return results.row(**base, status="skipped", reason=reason, env=env)
            predicted = w.predict_memory(cfg, device)
            if predicted:
                env["memory_prediction"] = predicted
                reason = self._too_big(predicted["total_mb"], device)
                if reason:
                    return results.row(**base, status="skipped", reason=reason, env=env, predicted=predicted)
            power = contextlib.ExitStack()
            if cfg.get("power_limit_w"):
                power.enter_context(energy.power_limit(torch.device(device).index or 0, cfg["power_limit_w"]))
            with power:
                return self._measure(cfg, base, env, predicted, start)
        except knobs.Unsupported as e:
            return results.row(**base, status="skipped", reason=str(e), env=env, predicted=predicted)
        except Exception as e:  # the configuration failed: record it, and the sweep goes on
            if _NO_KERNEL.search(str(e)):
                return results.row(**base, status="skipped", reason=f"unsupported here: {_short(e)}", env=env,
                                   predicted=predicted)
            oom = isinstance(e, (MemoryError, getattr(torch.cuda, "OutOfMemoryError", MemoryError))) or _OOM.search(str(e))
            reason = f"out of memory: {_short(e)}" if oom else _short(e)
            return results.row(**base, status="failed", reason=reason, wall_s=time.monotonic() - start, env=env,
                               predicted=predicted)
        finally:
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            torch.set_num_threads(old_threads)

    def _too_big(self, need_mb: float, device: str) -> str | None:
        """Why a configuration predicted to need ``need_mb`` is skipped (None where it fits)."""
        if self.opt.memory_budget_mb is not None:
            budget, where = self.opt.memory_budget_mb, "the memory budget set for this sweep"
        else:
            budget = memory.free_mb(device) * memory.HEADROOM
            where = f"{memory.HEADROOM:.0%} of the memory free on {'the GPU' if device.startswith('cuda') else 'this machine'}"
        if need_mb <= budget:
            return None
        return f"predicted not to fit: about {need_mb:,.0f} MB needed, {budget:,.0f} MB available ({where})"

    def _measure(self, cfg, base, env, predicted, start) -> dict:
        w, device = self.workload, self.device
        model = None
        try:
            w.before_config(cfg, device)
            ref = w.reference()
            params_b = w.params_b()
            _release_memory()
            baseline = psutil.Process().memory_info().rss
            model, how = w.configure(cfg, device)
            _release_memory()  # weights a quantization replaced
            weights = memory.tensor_bytes(model) if device == "cpu" and isinstance(model, torch.nn.Module) else None
            if weights is not None:  # the weights counted exactly, not the heap their loading left (measure.py)
                baseline = psutil.Process().memory_info().rss - weights
            dtype = knobs.compute_dtype(cfg["precision"], device)
            sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
            fn = w.step(model, w.inputs(cfg, device, dtype), cfg, sync)
            m = measure(fn, units_per_call=w.units(cfg), device=device, warmup=self.opt.warmup,
                        min_time_s=self.opt.min_time_s, min_repeats=self.opt.repeats, sample=self.opt.sample,
                        interval_s=self.opt.interval_s, baseline_rss=baseline, energy=self.energy,
                        until_ci=self.opt.until_ci, max_time_s=self.opt.max_time_s)
            qkey = (cfg["precision"], cfg.get("quant"), cfg.get("compile"))
            if qkey not in self._quality:
                self._quality[qkey] = w.quality(model, ref, device, dtype)
            fkey = (cfg["batch_size"], cfg.get("seq_len"), cfg.get("prompt_len"), cfg.get("gen_len"))
            if fkey not in self._flops:
                try:
                    self._flops[fkey] = w.flops(cfg, device)
                except Exception as e:
                    self._flops[fkey] = None
                    env["notes"].append(f"FLOPs not counted: {_short(e)}")
            if device == "cpu" and weights is None:  # the floor the process returns to without this model
                del fn
                model = None
                _release_memory()
                floor = psutil.Process().memory_info().rss
                if floor < baseline:  # the model reused heap the allocator had kept from before
                    m.reading.peak_memory_mb = max(m.reading.process_peak_rss_mb * 2**20 - floor, 0) / 2**20
            env["settings"]["quantization"] = how
            env["energy_method"] = m.reading.energy_method
            env["notes"].extend(n for n in m.reading.notes + m.notes if n not in env["notes"])
            env["notes"].extend(n for n in w.notes if n not in env["notes"])
            return results.row(**base, status="ok", how=how, m=m, quality=self._quality[qkey], flops=self._flops[fkey],
                               wall_s=time.monotonic() - start, env=env, params_b=params_b, predicted=predicted)
        finally:
            del model

    def _environment(self, cfg: dict) -> dict:
        notes = list(self.hw.notes) + list(self.workload.notes)
        load = os.getloadavg()[0]
        cores = self.hw.cpu_cores_logical or 1
        if not self.device.startswith("cuda") and load > cores:
            notes.append(f"machine busy: load average {load:.1f} on {cores} cores; CPU timings with more than one "
                         f"thread can stall while a thread waits for a core")
        return {"load_avg_1m": load,
            "hardware": self.hw.as_dict(), "device": self.device, "sweep_id": self.sweep_id,
            "workload": {"name": self.workload.name, "model": self.workload.model_name,
                         "params": {k: getattr(self.workload, k) for k in ("layers", "width", "heads", "seed")
                                    if hasattr(self.workload, k)}},
            "settings": {**{k: v for k, v in cfg.items()}, "min_repeats": self.opt.repeats, "rounds": self.opt.rounds,
                         "min_time_s": self.opt.min_time_s, "warmup": self.opt.warmup,
                         "sampler": self.opt.sample, "sample_interval_s": self.opt.interval_s},
            "memory_method": MEMORY_METHOD["cuda" if self.device.startswith("cuda") else "cpu"],
            "notes": notes,
        }


def _knobs(r: dict) -> dict:
    """A stored row's configuration, in the grid's terms."""
    return {k: r.get(k) for k in ("precision", "quant", "batch_size", "seq_len", "prompt_len", "gen_len", "threads",
                                  "power_limit_w") if r.get(k) is not None}


def _label(cfg: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in cfg.items() if v is not None)


def _outcome(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['status']}: {r['reason']}"
    q = "".join(f", {m} {r[m]:.4g}" for m in QUALITY if r.get(m) is not None)
    return (f"ok: {r['latency_ms']:.3f} ms median (p90 {r['latency_p90_ms']:.3f}), "
            f"{r['throughput']:.1f} {r['work_unit']}/s{q}")

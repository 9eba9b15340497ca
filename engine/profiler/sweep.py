"""Run a grid of configurations of one workload and write each result to the store as it lands.

Each configuration is measured in this process, then written with a short-lived Store
connection (DuckDB allows one writing process at a time; the page and other sessions only hold
theirs briefly too). All of a sweep's runs form one import batch (kind 'profile', source
'profile:<sweep id>'): the first write opens it and later writes append to it, so a cancelled or
crashed sweep keeps the runs it finished.

Progress goes to a small JSON file (written atomically) that the Profile page polls; a cancel
file, when it appears, stops the sweep after the current configuration.
"""
from __future__ import annotations

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

from engine.profiler import hardware, knobs, results
from engine.profiler.energy import Nvml
from engine.profiler.measure import measure
from engine.store import Store, StoreBusy

MEMORY_METHOD = {
    "cpu": "process RSS peak in the window (sampled + ru_maxrss) minus RSS before the configured model was built",
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


def count_flops(workload, ref, cfg, device) -> float | None:
    """FLOPs of one call of the float32 reference (the logical work, whatever the precision)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = ref if device == "cpu" else __import__("copy").deepcopy(ref).to(device)
    fn = workload.step(model, workload.inputs(cfg, device, torch.float32), cfg)
    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops()) or None


class Sweep:
    def __init__(self, workload, configs: list[dict], *, db=None, options: Options | None = None,
                 sweep_id: str | None = None, progress_file=None, cancel_file=None, log=print):
        self.workload, self.configs = workload, configs
        self.db, self.opt = db, options or Options()
        self.sweep_id = sweep_id or new_sweep_id()
        self.source = f"profile:{self.sweep_id}"
        self.progress_file = Path(progress_file) if progress_file else None
        self.cancel_file = Path(cancel_file) if cancel_file else None
        self.log = log
        self.device = resolve_device(self.opt.device)
        self.hw = hardware.detect()
        self.import_id: str | None = None
        self.rows: list[dict] = []
        self._quality: dict = {}
        self._flops: dict = {}
        self.nvml = None
        if self.device.startswith("cuda"):
            try:
                self.nvml = Nvml(torch.device(self.device).index or 0)
            except Exception as e:
                self.hw.notes.append(f"GPU energy / power / utilization not measurable: NVML did not start ({e})")

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
            "results": [{k: r.get(k) for k in ("precision", "batch_size", "seq_len", "gen_len", "compile", "threads",
                                              "status", "latency_ms", "throughput", "accuracy", "peak_memory_mb",
                                              "energy_j", "reason")} for r in self.rows],
        })

    def cancelled(self) -> bool:
        return bool(self.cancel_file and self.cancel_file.exists())

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> list[dict]:
        t0 = time.monotonic()
        n = len(self.configs)
        state = "running"
        try:
            for i, cfg in enumerate(self.configs):
                if self.cancelled():
                    state = "cancelled"
                    self.log(f"cancelled after {i} of {n} configurations")
                    break
                self._progress("running", i, cfg, t0)
                self.log(f"[{i + 1}/{n}] {self.workload.name} {_label(cfg)} ...")
                r = self.profile(i, cfg)
                self._write(r)
                self.rows.append(r)
                self.log(f"[{i + 1}/{n}]   {_outcome(r)}")
            else:
                state = "done"
        except BaseException as e:
            self._progress("cancelled" if isinstance(e, KeyboardInterrupt) else "failed", len(self.rows), None, t0, _short(e))
            raise
        finally:
            if self.nvml:
                self.nvml.close()
        self._progress(state, len(self.rows), None, t0)
        return self.rows

    write_wait_s = 30.0  # one attempt's wait for a busy store; the sweep then tries again

    def _write(self, r: dict) -> None:
        """Store one result. While another process holds the store, keep the measurement (it may
        have taken minutes) and try again, saying so in the log, instead of failing the sweep."""
        if self.db is False:
            return  # measuring only (bench)
        start = time.monotonic()
        while True:
            try:
                with Store(self.db, timeout_s=self.write_wait_s) as s:
                    res = s.add_runs(results.frame([r]), source=self.source, kind="profile",
                                     extra_fields=results.fields_for([r]), append_to=self.import_id,
                                     note=f"{self.workload.name} sweep of {len(self.configs)} configurations on {self.hw.name}")
                break
            except StoreBusy as e:
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
        model = None
        try:
            reason = knobs.unsupported(cfg, device)
            if reason:
                return results.row(**base, status="skipped", reason=reason, env=env)
            ref = w.reference()
            params_b = sum(p.numel() for p in ref.parameters()) / 1e9
            gc.collect()
            baseline = psutil.Process().memory_info().rss
            model, how = knobs.prepare(ref, cfg, device)
            dtype = knobs.compute_dtype(cfg["precision"], device)
            sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
            fn = w.step(model, w.inputs(cfg, device, dtype), cfg, sync)
            m = measure(fn, units_per_call=w.units(cfg), device=device, warmup=self.opt.warmup,
                        min_time_s=self.opt.min_time_s, min_repeats=self.opt.repeats, sample=self.opt.sample,
                        interval_s=self.opt.interval_s, rapl_domains=self.hw.rapl_domains,
                        baseline_rss=baseline, nvml=self.nvml)
            qkey = (cfg["precision"], cfg.get("compile"))
            if qkey not in self._quality:
                self._quality[qkey] = w.quality(model, ref, device, dtype)
            fkey = (cfg["batch_size"], cfg.get("seq_len"), cfg.get("gen_len"))
            if fkey not in self._flops:
                try:
                    self._flops[fkey] = count_flops(w, ref, cfg, device)
                except Exception as e:
                    self._flops[fkey] = None
                    env["notes"].append(f"FLOPs not counted: {_short(e)}")
            env["settings"]["quantization"] = how
            env["energy_method"] = m.reading.energy_method or ("RAPL" if m.reading.cpu_energy_j is not None else None)
            env["notes"].extend(n for n in m.reading.notes if n not in env["notes"])
            return results.row(**base, status="ok", how=how, m=m, quality=self._quality[qkey],
                               flops=self._flops[fkey], wall_s=time.monotonic() - start, env=env, params_b=params_b)
        except knobs.Unsupported as e:
            return results.row(**base, status="skipped", reason=str(e), env=env)
        except Exception as e:  # the configuration failed: record it, and the sweep goes on
            if _NO_KERNEL.search(str(e)):
                return results.row(**base, status="skipped", reason=f"unsupported here: {_short(e)}", env=env)
            oom = isinstance(e, (MemoryError, getattr(torch.cuda, "OutOfMemoryError", MemoryError))) or _OOM.search(str(e))
            reason = f"out of memory: {_short(e)}" if oom else _short(e)
            return results.row(**base, status="failed", reason=reason, wall_s=time.monotonic() - start, env=env)
        finally:
            del model
            gc.collect()
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
            torch.set_num_threads(old_threads)

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
            "settings": {**{k: v for k, v in cfg.items()}, "min_repeats": self.opt.repeats,
                         "min_time_s": self.opt.min_time_s, "warmup": self.opt.warmup,
                         "sampler": self.opt.sample, "sample_interval_s": self.opt.interval_s},
            "memory_method": MEMORY_METHOD["cuda" if self.device.startswith("cuda") else "cpu"],
            "notes": notes,
        }


def _label(cfg: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in cfg.items() if v is not None)


def _outcome(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['status']}: {r['reason']}"
    acc = f", accuracy {r['accuracy']:.3f}" if r.get("accuracy") is not None else ""
    return (f"ok: {r['latency_ms']:.3f} ms median (p90 {r['latency_p90_ms']:.3f}), "
            f"{r['throughput']:.1f} {r['work_unit']}/s{acc}")

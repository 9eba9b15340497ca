"""The measurement window (in the style of Zeus's begin_window / end_window).

``measure(fn, ...)`` warms up, then calls ``fn`` until both a minimum time and a minimum count
are reached, synchronizing the device before every clock read, and reports the median, tails
and spread of the per-call latency together with what the window drew: energy, average power,
utilization (background sampler) and peak memory.

Energy comes from Zeus (energy.EnergyMonitor: NVML's energy counter for the GPU, RAPL for the CPU
package), whose window opens and closes with this one, after the device is synchronized.

Peak memory means: on a GPU, ``torch.cuda.max_memory_allocated`` over the window (live weights
plus the activations' high-water mark, as the caching allocator saw them); on the CPU, the
process's resident set size at its highest during the window (sampled, and ru_maxrss where it
rose) minus the RSS before the model was built: the configuration's own footprint, coarse
(allocator caching and page reuse blur it by a few MB).
"""
from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import psutil

from engine.profiler.energy import EnergyMonitor
from engine.profiler.sampler import Sampler

MB = 2**20


def stats(values_s) -> dict:
    """median / p90 / p95 / p99 / IQR / std in ms and the coefficient of variation of seconds values."""
    a = np.asarray(values_s, dtype=float) * 1000.0
    if a.size == 0:
        return {}
    q25, med, q75, p90, p95, p99 = np.percentile(a, [25, 50, 75, 90, 95, 99])
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    mean = float(a.mean())
    return {"median_ms": float(med), "p90_ms": float(p90), "p95_ms": float(p95), "p99_ms": float(p99), "iqr_ms": float(q75 - q25),
            "std_ms": std, "mean_ms": mean, "cv": std / mean if mean > 0 else None, "n": int(a.size)}


def _rss() -> int:
    return psutil.Process().memory_info().rss


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KB


@dataclass
class Reading:
    """What one window measured. Energies are totals over the window, in joules."""
    elapsed_s: float
    gpu_energy_j: float | None = None
    cpu_energy_j: float | None = None
    power_w: float | None = None
    gpu_util: float | None = None
    cpu_util: float | None = None
    peak_memory_mb: float | None = None
    process_peak_rss_mb: float | None = None
    energy_method: str | None = None
    notes: list[str] = field(default_factory=list)


class Window:
    """Open with begin(), close with end(); also usable as ``with Window(...) as w:`` (w.reading)."""

    def __init__(self, device: str = "cpu", sample: bool = True, interval_s: float = 0.05,
                 baseline_rss: int | None = None, energy: EnergyMonitor | None = None):
        self.device = device
        self.cuda = device.startswith("cuda")
        self.sample = sample
        self.interval_s = interval_s
        self.baseline_rss = baseline_rss
        self.energy = energy if energy is not None else EnergyMonitor(device)
        self.reading: Reading | None = None

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def begin(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        self.sync()
        self._maxrss0 = _maxrss_bytes()
        self._rss0 = _rss()
        gpu_index = self.energy.cuda_index if self.cuda else None
        self.sampler = Sampler(self.interval_s, gpu_index).start() if self.sample else None
        self.energy.begin()
        self._t0 = time.perf_counter()

    def end(self) -> Reading:
        self.sync()
        t1 = time.perf_counter()
        e = self.energy.end()
        s = self.sampler
        if s:
            s.stop()
        r = Reading(elapsed_s=t1 - self._t0, notes=e.notes + (s.errors if s else []))
        r.gpu_energy_j, r.cpu_energy_j, r.energy_method = e.gpu_j, e.cpu_j, e.method
        energy = r.gpu_energy_j if self.cuda else r.cpu_energy_j
        if energy is not None and r.elapsed_s > 0:
            r.power_w = energy / r.elapsed_s
        if s and s.gpu_util:
            r.gpu_util = float(np.mean(s.gpu_util))
        if self.cuda:
            import torch

            r.peak_memory_mb = torch.cuda.max_memory_allocated(self.device) / MB
        peak = max([self._rss0, _rss()] + (s.rss if s else []))
        if _maxrss_bytes() > self._maxrss0:  # the process reached a new lifetime peak inside the window
            peak = max(peak, _maxrss_bytes())
        r.process_peak_rss_mb = peak / MB
        if not self.cuda:
            base = self.baseline_rss if self.baseline_rss is not None else self._rss0
            r.peak_memory_mb = max(peak - base, 0) / MB
        if s and s.cpu:
            r.cpu_util = float(np.mean(s.cpu))
        self.reading = r
        return r

    def __enter__(self) -> "Window":
        self.begin()
        return self

    def __exit__(self, *exc) -> None:
        self.end()


@dataclass
class Measurement:
    latency: dict  # stats() of seconds per call
    calls: int
    units: float  # work units processed inside the window
    reading: Reading
    extra: dict = field(default_factory=dict)  # stats() of sub-timings fn reported (e.g. itl, prefill)

    @property
    def throughput(self) -> float:
        return self.units / self.reading.elapsed_s if self.reading.elapsed_s > 0 else float("nan")


def measure(fn: Callable[[], dict | None], *, units_per_call: float, device: str = "cpu", warmup: int = 2,
            min_time_s: float = 1.0, min_repeats: int = 5, max_repeats: int = 100_000, max_time_s: float = 120.0,
            sample: bool = True, interval_s: float = 0.05, baseline_rss: int | None = None,
            energy: EnergyMonitor | None = None) -> Measurement:
    """Time ``fn`` (one batch / one request) after ``warmup`` calls.

    Calls continue until at least ``min_time_s`` has passed AND ``min_repeats`` calls were made
    (or ``max_repeats`` / ``max_time_s`` is hit). ``fn`` may return a dict of lists of
    sub-timings in seconds (e.g. {"itl": [...], "prefill": [...]}); they are summarised too.
    """
    win = Window(device, sample=sample, interval_s=interval_s, baseline_rss=baseline_rss, energy=energy)
    for _ in range(warmup):
        fn()
    win.sync()
    lat: list[float] = []
    subs: dict[str, list[float]] = {}
    win.begin()
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        out = fn()
        win.sync()
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        for k, v in (out or {}).items():
            subs.setdefault(k, []).extend(v)
        n, spent = len(lat), t1 - start
        if n >= max_repeats or spent >= max_time_s or (n >= min_repeats and spent >= min_time_s):
            break
    reading = win.end()
    return Measurement(stats(lat), len(lat), units_per_call * len(lat), reading, {k: stats(v) for k, v in subs.items()})

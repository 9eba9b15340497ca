"""The measurement window (in the style of Zeus's begin_window / end_window).

``measure(fn, ...)`` warms up, then calls ``fn`` until both a minimum time and a minimum count
are reached, synchronizing the device before every clock read, and reports the median, tails
and spread of the per-call latency together with what the window drew: energy, average power,
utilization (background sampler) and peak memory.

Energy comes from Zeus (energy.EnergyMonitor: NVML's energy counter for the GPU, RAPL for the CPU
package), whose window opens and closes with this one, after the device is synchronized.

Every reported statistic carries its 95 % confidence interval: for a median or a tail of the
per-call times, the distribution-free interval between two order statistics (binomial, normal
approximation); for throughput and energy per unit, a t-interval over independent blocks of the
window (consecutive stretches of at least ``block_s`` seconds, each with its own energy reading).
``until_ci`` keeps measuring, up to ``max_time_s``, until the intervals of the median latency (and
of throughput and energy, once there are blocks enough) are within that percentage of the value.

Peak memory means: on a GPU, ``torch.cuda.max_memory_allocated`` over the window (live weights
plus the activations' high-water mark, as the caching allocator saw them); on the CPU, the
process's resident set size at its highest from the warm-up on (the kernel's high-water mark,
reset when measure() starts; where it cannot be reset, sampled during the window, and ru_maxrss
where it rose) minus ``baseline_rss``: the configuration's own footprint. The sweep's baseline
is the RSS once the model is built less the bytes of its tensors, so the peak counts the
weights exactly and not the heap their loading or quantization left behind (that blurred a
90 MB model's reading by up to 50 MB).
"""
from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import psutil

if TYPE_CHECKING:
    import pandas as pd

from engine.profiler.energy import EnergyMonitor
from engine.profiler.sampler import Sampler

MB = 2**20


QUANTILES = {"median": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


def stats(values_s) -> dict:
    """median / p90 / p95 / p99 (each with its 95 % interval: ``median_ci_ms``, ...) / IQR / std in
    ms and the coefficient of variation of seconds values."""
    a = np.asarray(values_s, dtype=float) * 1000.0
    if a.size == 0:
        return {}
    q25, q75 = np.percentile(a, [25, 75])
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    mean = float(a.mean())
    out = {"iqr_ms": float(q75 - q25), "std_ms": std, "mean_ms": mean, "cv": std / mean if mean > 0 else None,
           "n": int(a.size)}
    for name, q in QUANTILES.items():
        out[f"{name}_ms"] = float(np.percentile(a, 100 * q))
        out[f"{name}_ci_ms"] = quantile_ci(a, q)
    return out


Z95 = 1.959964
MIN_BLOCKS = 3  # sub-windows a measurement needs before its throughput / energy carry an interval


def quantile_ci(values, q: float) -> tuple[float, float]:
    """95 % interval of the q-quantile of ``values`` from order statistics (valid for any
    distribution: the count below the true quantile is binomial(n, q)), cut at the smallest and
    largest value where few values leave no order statistic further out."""
    a = np.sort(np.asarray(values, dtype=float))
    n = a.size
    if n == 0:
        return float("nan"), float("nan")
    half = Z95 * np.sqrt(n * q * (1 - q))
    lo, hi = int(np.floor(n * q - half)), int(np.ceil(n * q + half))
    return float(a[max(lo, 0)]), float(a[min(hi, n - 1)])


def mean_ci(values) -> tuple[float, float] | None:
    """95 % t-interval of the mean of a few independent values (None with fewer than 3)."""
    a = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if a.size < 3:
        return None
    from scipy.stats import t

    half = float(t.ppf(0.975, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size))
    return float(a.mean() - half), float(a.mean() + half)


def _rss() -> int:
    return psutil.Process().memory_info().rss


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KB


def reset_peak_rss() -> bool:
    """Set the kernel's high-water mark of this process's RSS (VmHWM) to its present RSS, so that
    peak_rss_since_reset() is the exact peak from now on, however short (the 50 ms sampler misses a
    forward pass's spike; ru_maxrss says nothing once the process has been larger before). Linux
    4.0 and later (/proc/self/clear_refs); False where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset() -> int | None:
    """VmHWM in bytes (the peak RSS since reset_peak_rss()), None where the kernel does not say."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


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
    series: "pd.DataFrame | None" = None  # power / utilization over the window (engine.timeseries.thin)


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
        self._since_reset = False  # track_peak() reset the kernel's high-water mark

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(self.device)

    def track_peak(self) -> None:
        """Count the CPU's peak RSS from now on (before the warm-up), not only from begin()."""
        self._since_reset = not self.cuda and reset_peak_rss()

    def begin(self) -> None:
        if not self._since_reset:
            self.track_peak()
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
        if s and s.gpu_util and not np.isnan(s.gpu_util).all():
            r.gpu_util = float(np.nanmean(s.gpu_util))
        if s and s.t:
            from engine.timeseries import thin

            r.series = thin(s.t, s.series())
        if self.cuda:
            import torch

            r.peak_memory_mb = torch.cuda.max_memory_allocated(self.device) / MB
        peak = max([self._rss0, _rss()] + (s.rss if s else []))
        hwm = peak_rss_since_reset() if self._since_reset else None
        if hwm is not None:  # exact, from track_peak() on
            peak = max(peak, hwm)
        elif _maxrss_bytes() > self._maxrss0:  # the process reached a new lifetime peak inside the window
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
class Block:
    """One independent stretch of the window: its time, work units and energy (None: not read)."""
    elapsed_s: float
    units: float
    energy_j: float | None = None


@dataclass
class Measurement:
    latency: dict  # stats() of seconds per call
    calls: int
    units: float  # work units processed inside the window
    reading: Reading
    extra: dict = field(default_factory=dict)  # stats() of sub-timings fn reported (e.g. itl, prefill)
    blocks: list[Block] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.units / self.reading.elapsed_s if self.reading.elapsed_s > 0 else float("nan")

    def throughput_ci(self) -> tuple[float, float] | None:
        """95 % interval of throughput from the blocks' throughputs, centred on the window's value."""
        ci = mean_ci([b.units / b.elapsed_s for b in self.blocks if b.elapsed_s > 0])
        return _centred(ci, [b.units / b.elapsed_s for b in self.blocks if b.elapsed_s > 0], self.throughput)

    def energy_ci(self, energy_j: float | None) -> tuple[float, float] | None:
        """95 % interval of energy per unit from the blocks' own energy readings."""
        per_unit = [b.energy_j / b.units for b in self.blocks if b.energy_j is not None and b.units > 0]
        return _centred(mean_ci(per_unit), per_unit, energy_j) if energy_j is not None else None


def _centred(ci, values, point) -> tuple[float, float] | None:
    """The blocks' interval moved onto the window's own value (the blocks' mean differs by rounding)."""
    if ci is None or point is None or not np.isfinite(point):
        return None
    shift = point - float(np.mean(values))
    return max(ci[0] + shift, 0.0), ci[1] + shift  # a rate or an energy is never negative


def _half_width_pct(ci, value) -> float:
    if ci is None or not value:
        return float("inf")
    return 50.0 * (ci[1] - ci[0]) / abs(value)


def measure(fn: Callable[[], dict | None], *, units_per_call: float, device: str = "cpu", warmup: int = 2,
            min_time_s: float = 1.0, min_repeats: int = 5, max_repeats: int = 100_000, max_time_s: float = 120.0,
            sample: bool = True, interval_s: float = 0.05, baseline_rss: int | None = None,
            energy: EnergyMonitor | None = None, block_s: float | None = None,
            until_ci: float | None = None) -> Measurement:
    """Time ``fn`` (one batch / one request) after ``warmup`` calls.

    Calls continue until at least ``min_time_s`` has passed AND ``min_repeats`` calls were made AND
    MIN_BLOCKS blocks closed, so throughput and energy have an interval (or ``max_repeats`` /
    ``max_time_s`` is hit), and, with ``until_ci`` (a percentage), until the
    95 % intervals are that narrow. ``fn`` may return a dict of lists of sub-timings in seconds
    (e.g. {"itl": [...], "prefill": [...]}); they are summarised too.
    """
    win = Window(device, sample=sample, interval_s=interval_s, baseline_rss=baseline_rss, energy=energy)
    block_s = block_s if block_s is not None else max(min_time_s / 5, 0.002)  # about 5 blocks in the minimum time
    win.track_peak()  # the warm-up's first calls allocate what later calls reuse: their peak counts
    for _ in range(warmup):
        fn()
    win.sync()
    lat: list[float] = []
    subs: dict[str, list[float]] = {}
    blocks: list[Block] = []
    win.begin()
    start = block_t0 = time.perf_counter()
    block_calls = 0
    win.energy.begin("block")
    while True:
        t0 = time.perf_counter()
        out = fn()
        win.sync()
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        block_calls += 1
        for k, v in (out or {}).items():
            subs.setdefault(k, []).extend(v)
        if t1 - block_t0 >= block_s:  # close this block with its own energy reading, open the next
            e = win.energy.end("block")
            blocks.append(Block(t1 - block_t0, units_per_call * block_calls, e.gpu_j if win.cuda else e.cpu_j))
            block_t0, block_calls = t1, 0
            win.energy.begin("block")
        n, spent = len(lat), t1 - start
        if n >= max_repeats or spent >= max_time_s:
            break
        if (n >= min_repeats and spent >= min_time_s and len(blocks) >= MIN_BLOCKS
                and (until_ci is None or _narrow(lat, subs, blocks, until_ci, n))):
            break
    win.energy.end("block")  # the partial last block is not used: blocks must be comparable
    reading = win.end()
    m = Measurement(stats(lat), len(lat), units_per_call * len(lat), reading,
                    {k: stats(v) for k, v in subs.items()}, blocks)
    if until_ci is not None and not _narrow(lat, subs, blocks, until_ci, len(lat)):
        m.notes.append(f"intervals still wider than +/-{until_ci:g} % after {time.perf_counter() - start:.1f} s "
                       f"(the time cap); {len(lat)} calls measured")
    return m


def _narrow(lat, subs, blocks, pct: float, n: int) -> bool:
    """Are the 95 % intervals within ``pct`` % of their values? Checked on the median latency, the
    median inter-token latency where there is one, and throughput / energy once 3 blocks exist.
    Cheap enough to call after every call while few, then every 10th."""
    if n > 50 and n % 10:
        return False
    checks = [(quantile_ci(lat, 0.5), float(np.median(lat)))]
    if subs.get("itl"):
        checks.append((quantile_ci(subs["itl"], 0.5), float(np.median(subs["itl"]))))
    if len(blocks) >= 3:
        rates = [b.units / b.elapsed_s for b in blocks]
        checks.append((mean_ci(rates), float(np.mean(rates))))
        per_unit = [b.energy_j / b.units for b in blocks if b.energy_j is not None and b.units > 0]
        if len(per_unit) >= 3:
            checks.append((mean_ci(per_unit), float(np.mean(per_unit))))
    else:
        return False  # throughput needs blocks to say anything about its spread
    return all(_half_width_pct(ci, v) <= pct for ci, v in checks)

"""A background thread that samples utilization, power and memory while a window is open.

On a GPU it reads NVML utilization and power; on the CPU it reads this process's CPU use
(psutil, as a share of all cores) and resident set size. Sampling costs a little CPU time of
its own; bench/bench_profile.py measures how much (sampler on vs off).
"""
from __future__ import annotations

import threading
import time

import psutil


class Sampler:
    def __init__(self, interval_s: float = 0.05, nvml=None):
        self.interval_s = interval_s
        self.nvml = nvml
        self.proc = psutil.Process()
        self.ncpu = psutil.cpu_count() or 1
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self.gpu_util: list[float] = []
        self.power: list[tuple[float, float]] = []  # (time, W)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="paretoscope-sampler", daemon=True)

    def start(self) -> "Sampler":
        self.proc.cpu_percent(None)  # the first call only sets the reference point
        self._thread.start()
        return self

    def stop(self) -> "Sampler":
        self._stop.set()
        self._thread.join()
        self._sample()  # one last reading at the very end
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        try:
            self.cpu.append(self.proc.cpu_percent(None) / self.ncpu)
            self.rss.append(self.proc.memory_info().rss)
        except Exception as e:  # pragma: no cover - psutil failing mid-run
            self._note(f"could not sample CPU use: {e}")
        if self.nvml is not None:
            try:
                self.gpu_util.append(self.nvml.utilization())
                self.power.append((time.perf_counter(), self.nvml.power_w()))
            except Exception as e:
                self._note(f"could not sample GPU utilization / power: {e}")

    def _note(self, msg: str) -> None:
        if msg not in self.errors:
            self.errors.append(msg)

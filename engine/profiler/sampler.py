"""A background thread that samples utilization, power and memory while a window is open.

It reads this process's CPU use (psutil, as a share of all cores) and resident set size, and on
a GPU its NVML utilization (energy is Zeus's job: see energy.py). Sampling costs a little CPU time of
its own; bench/bench_profile.py measures how much (sampler on vs off).
"""
from __future__ import annotations

import threading
import time

import psutil


class Sampler:
    def __init__(self, interval_s: float = 0.05, gpu_index: int | None = None):
        self.interval_s = interval_s
        self.proc = psutil.Process()
        self.ncpu = psutil.cpu_count() or 1
        self.cpu: list[float] = []
        self.rss: list[int] = []
        self.gpu_util: list[float] = []
        self.gpu_power_w: list[float] = []
        self.t: list[float] = []  # seconds since start, one per sample
        self.errors: list[str] = []
        self.gpu = _nvml_handle(gpu_index, self.errors) if gpu_index is not None else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="paretoscope-sampler", daemon=True)

    def start(self) -> "Sampler":
        self.proc.cpu_percent(None)  # the first call only sets the reference point
        self._t0 = time.perf_counter()
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
            # a share of all cores is at most 100; the kernel counts CPU time in 10 ms ticks, so over a
            # 50 ms interval on 2 cores one tick is 10 points, and a reading came out at 115
            cpu, rss = min(self.proc.cpu_percent(None) / self.ncpu, 100.0), self.proc.memory_info().rss
        except Exception as e:  # pragma: no cover - psutil failing mid-run
            self._note(f"could not sample CPU use: {e}")
            return
        util = power = float("nan")
        if self.gpu is not None:
            try:
                import pynvml

                util = float(pynvml.nvmlDeviceGetUtilizationRates(self.gpu).gpu)
                power = pynvml.nvmlDeviceGetPowerUsage(self.gpu) / 1000.0  # mW
            except Exception as e:
                self._note(f"could not sample GPU utilization or power: {e}")
        self.t.append(time.perf_counter() - self._t0)
        self.cpu.append(cpu)
        self.rss.append(rss)
        if self.gpu is not None:  # one value per sample (NaN where a reading failed), aligned with t
            self.gpu_util.append(util)
            self.gpu_power_w.append(power)

    def series(self) -> dict[str, list[float]]:
        """The samples as named series aligned with ``t`` (GPU series only where a GPU was sampled)."""
        out = {"cpu_util_pct": self.cpu, "rss_mb": [r / 2**20 for r in self.rss]}
        if self.gpu is not None:
            out |= {"gpu_util_pct": self.gpu_util, "gpu_power_w": self.gpu_power_w}
        return out

    def _note(self, msg: str) -> None:
        if msg not in self.errors:
            self.errors.append(msg)


def _nvml_handle(cuda_index: int, errors: list[str]):
    """NVML's handle of the GPU torch calls cuda:<index> (matched by UUID), or None with a note."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            import torch

            uuid = str(torch.cuda.get_device_properties(cuda_index).uuid).removeprefix("GPU-")
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                u = pynvml.nvmlDeviceGetUUID(h)
                if (u.decode() if isinstance(u, bytes) else u).removeprefix("GPU-") == uuid:
                    return h
        except Exception:
            pass  # fall back to NVML's own numbering
        return pynvml.nvmlDeviceGetHandleByIndex(cuda_index)
    except Exception as e:
        errors.append(f"GPU utilization not measurable here: NVML did not start ({e})")
        return None

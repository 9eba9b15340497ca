"""Energy and power counters: NVML for the GPU, RAPL for the CPU package.

NVML's ``nvmlDeviceGetTotalEnergyConsumption`` is a cumulative counter in millijoules (Volta and
newer); a window's energy is the difference of two reads. It updates every ~20-100 ms, so
windows should last well over that (the measurement window's minimum time sees to it). GPUs
without it fall back to integrating ``nvmlDeviceGetPowerUsage`` (milliwatts) samples.
RAPL's ``energy_uj`` counters are microjoules and wrap at ``max_energy_range_uj``.
"""
from __future__ import annotations

import os


class Nvml:
    """One GPU's NVML handle (the one torch calls cuda:<index>, matched by UUID)."""

    def __init__(self, cuda_index: int = 0):
        import pynvml

        self.nv = pynvml
        pynvml.nvmlInit()
        self.handle = self._match(cuda_index)
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.has_energy_counter = True
        except pynvml.NVMLError:
            self.has_energy_counter = False

    def _match(self, cuda_index: int):
        nv = self.nv
        try:
            import torch

            uuid = str(torch.cuda.get_device_properties(cuda_index).uuid)
            for i in range(nv.nvmlDeviceGetCount()):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                u = nv.nvmlDeviceGetUUID(h)
                u = u.decode() if isinstance(u, bytes) else u
                if u.removeprefix("GPU-") == uuid.removeprefix("GPU-"):
                    return h
        except Exception:
            pass  # fall back to NVML's own numbering
        return nv.nvmlDeviceGetHandleByIndex(cuda_index)

    def energy_mj(self) -> int:
        return self.nv.nvmlDeviceGetTotalEnergyConsumption(self.handle)

    def power_w(self) -> float:
        return self.nv.nvmlDeviceGetPowerUsage(self.handle) / 1000.0

    def utilization(self) -> float:
        return float(self.nv.nvmlDeviceGetUtilizationRates(self.handle).gpu)

    def close(self) -> None:
        try:
            self.nv.nvmlShutdown()
        except Exception:
            pass


class Rapl:
    """Sum of the readable CPU package counters (see hardware.rapl_domains)."""

    def __init__(self, domains: list[str]):
        if not domains:
            raise OSError("no readable RAPL package counter")
        self.domains = domains
        self.ranges = []
        for d in domains:
            try:
                with open(os.path.join(d, "max_energy_range_uj")) as f:
                    self.ranges.append(int(f.read()))
            except (OSError, ValueError):
                self.ranges.append(2**32)

    def read_uj(self) -> list[int]:
        out = []
        for d in self.domains:
            with open(os.path.join(d, "energy_uj")) as f:
                out.append(int(f.read()))
        return out

    def joules_between(self, start: list[int], end: list[int]) -> float:
        total = 0
        for a, b, r in zip(start, end, self.ranges):
            total += b - a if b >= a else b + r - a  # the counter wrapped
        return total / 1e6


def integrate_power(samples: list[tuple[float, float]]) -> float | None:
    """Trapezoid integral of (time_s, watts) samples, in joules."""
    if len(samples) < 2:
        return None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(samples, samples[1:]))

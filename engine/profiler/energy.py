"""Energy of a measurement window, read through Zeus (the ML.ENERGY project's library).

Zeus's ``ZeusMonitor.begin_window`` / ``end_window`` reads the GPU's NVML total-energy counter
(Volta and newer; older GPUs through Zeus's own power sampling) and the CPU package / DRAM RAPL
counters, the way the bundled ML.ENERGY data was measured. Whatever this machine does not let
Zeus read is said in ``notes`` ("... not measurable here: why"), never guessed and never raised.

A GPU power limit (the ``power_limit_w`` knob) is set through Zeus's GPU abstraction too, and put
back afterwards. Zeus is imported lazily: it takes a few seconds and only a sweep needs it.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

logging.getLogger("zeus").setLevel(logging.ERROR)  # its "not available" info lines: we say it in notes


@dataclass
class EnergyReading:
    """Joules over one window (None: not measurable here) and how they were read."""
    gpu_j: float | None = None
    cpu_j: float | None = None
    dram_j: float | None = None
    method: str | None = None
    notes: list[str] = field(default_factory=list)


def _gpus():
    """Zeus's GPU manager, or (None, why not)."""
    try:
        from zeus.device import get_gpus

        return get_gpus(), None
    except Exception as e:  # ZeusGPUInitError: no NVML / AMD SMI; anything else the driver throws
        return None, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _cpus():
    """Zeus's RAPL CPU manager, or (None, why not)."""
    try:
        from zeus.device import get_cpus

        cpus = get_cpus()
        return (cpus, None) if len(cpus.cpus) else (None, "no RAPL package found")
    except Exception as e:  # ZeusCPUInitError (no /sys/class/powercap/intel-rapl), ZeusCPUNoPermissionError
        return None, str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def capabilities(cuda_index: int | None = None) -> tuple[bool, bool, list[str]]:
    """(GPU energy readable, CPU energy readable, notes) for this machine, as Zeus sees it."""
    notes = []
    gpu_ok = False
    if cuda_index is not None:
        gpus, why = _gpus()
        if gpus is None:
            notes.append(f"GPU energy not measurable here: Zeus could not reach the GPU ({why})")
        elif cuda_index >= len(gpus):
            notes.append(f"GPU energy not measurable here: Zeus sees {len(gpus)} GPU(s), not cuda:{cuda_index}")
        else:
            gpu_ok = True
    cpus, why = _cpus()
    if cpus is None:
        notes.append(f"CPU energy not measurable here: Zeus found no readable RAPL counter ({why})")
    return gpu_ok, cpus is not None, notes


class EnergyMonitor:
    """One ZeusMonitor for a device's windows: ``begin()``, then ``end() -> EnergyReading``."""

    _count = 0

    def __init__(self, device: str = "cpu"):
        self.cuda_index = (int(device.split(":")[1]) if ":" in device else 0) if device.startswith("cuda") else None
        gpu_ok, cpu_ok, self.notes = capabilities(self.cuda_index)
        self.monitor = None
        self.gpu_ok, self.cpu_ok = gpu_ok, cpu_ok
        if not (gpu_ok or cpu_ok):
            return
        try:
            from zeus.monitor import ZeusMonitor

            # approx_instant_energy: a window shorter than NVML's ~100 ms counter update reads as
            # instant power x time instead of zero (our windows are longer; this is the safety net)
            self.monitor = ZeusMonitor(gpu_indices=[self.cuda_index] if gpu_ok else [],
                                       cpu_indices=None if cpu_ok else [], approx_instant_energy=True)
        except Exception as e:
            self.notes.append(f"energy not measurable here: Zeus's monitor did not start ({e})")
            self.gpu_ok = self.cpu_ok = False
            return
        if gpu_ok and self.monitor.power_monitor is not None:
            self.method = "zeus: integrated NVML power samples (this GPU has no energy counter)"
        elif gpu_ok:
            self.method = "zeus: NVML total energy counter"
        else:
            self.method = "zeus: RAPL"
        EnergyMonitor._count += 1
        self.key = f"paretoscope-{EnergyMonitor._count}"

    def begin(self, name: str = "") -> None:
        """Open a window; ``name`` opens another one beside it (Zeus keeps overlapping windows
        apart by name: the measurement's blocks inside its whole window)."""
        if self.monitor is not None:
            # the caller synchronizes the device itself (and torch may have no CUDA at all)
            self.monitor.begin_window(self.key + name, sync_execution=False, restart=True)

    def end(self, name: str = "") -> EnergyReading:
        r = EnergyReading(notes=list(self.notes))
        if self.monitor is None:
            return r
        try:
            m = self.monitor.end_window(self.key + name, sync_execution=False)
        except Exception as e:
            r.notes.append(f"energy not measured: Zeus could not close the window ({e})")
            return r
        if self.gpu_ok and m.gpu_energy:
            r.gpu_j = float(sum(m.gpu_energy.values()))
        if self.cpu_ok and m.cpu_energy is not None:
            r.cpu_j = float(sum(m.cpu_energy.values()))
            if m.dram_energy:
                r.dram_j = float(sum(m.dram_energy.values()))
        r.method = self.method
        return r


def power_limit_range(cuda_index: int) -> tuple[float, float] | None:
    """(min, max) settable power limit in watts, or None where NVML cannot tell."""
    gpus, _ = _gpus()
    try:
        lo, hi = gpus.get_power_management_limit_constraints(cuda_index)
        return lo / 1000.0, hi / 1000.0
    except Exception:
        return None


@contextlib.contextmanager
def power_limit(cuda_index: int, watts: float):
    """Set the GPU's power limit for the block and restore the one before it. Raises
    ``PermissionError`` / ``ValueError`` with the reason where it cannot be set."""
    gpus, why = _gpus()
    if gpus is None:
        raise ValueError(f"cannot set a power limit: Zeus could not reach the GPU ({why})")
    try:
        lo, hi = gpus.get_power_management_limit_constraints(cuda_index)
        before = gpus.get_power_management_limit(cuda_index)
    except Exception as e:
        raise ValueError(f"cannot read the GPU's power limits through NVML ({e})") from e
    mw = int(round(watts * 1000))
    if not lo <= mw <= hi:
        raise ValueError(f"power_limit_w {watts:g} W is outside this GPU's range {lo / 1000:g}-{hi / 1000:g} W")
    try:
        gpus.set_power_management_limit(cuda_index, mw)
    except Exception as e:
        raise PermissionError(f"cannot set the GPU power limit to {watts:g} W ({e}); it needs root or the Zeus daemon") from e
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            gpus.set_power_management_limit(cuda_index, before)

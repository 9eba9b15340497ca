"""What this machine is: GPUs through NVML, CPU model and cores, torch / CUDA versions, and
which energy counters Zeus can read here (energy.capabilities).

Every probe is allowed to fail: what could not be read is said in ``notes`` ("could not read
X: why"), never raised, so detection works with no GPU and no NVML.
"""
from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata


@dataclass
class GpuInfo:
    index: int
    name: str
    memory_mb: float | None = None
    power_limit_w: float | None = None
    compute_capability: str | None = None
    energy_counter: bool = False  # nvmlDeviceGetTotalEnergyConsumption works (Volta and newer)


@dataclass
class Hardware:
    cpu_model: str
    cpu_cores_physical: int | None
    cpu_cores_logical: int | None
    memory_mb: float | None
    gpus: list[GpuInfo] = field(default_factory=list)
    driver: str | None = None
    cuda_available: bool = False
    cuda_version: str | None = None
    torch_version: str | None = None
    versions: dict = field(default_factory=dict)
    gpu_energy: bool = False  # Zeus reads the first GPU's energy (NVML)
    cpu_energy: bool = False  # Zeus reads the CPU package energy (RAPL)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The hardware column: the first GPU's name, else the CPU model."""
        return self.gpus[0].name if self.gpus and self.cuda_available else self.cpu_model

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_model() -> tuple[str, str | None]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip(), None
    except OSError as e:
        return platform.processor() or platform.machine(), f"could not read /proc/cpuinfo: {e}"
    return platform.processor() or platform.machine(), "could not read the CPU model: no 'model name' in /proc/cpuinfo"


def _versions() -> dict:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("torch", "torchao", "transformers", "zeus", "numpy", "scikit-learn", "nvidia-ml-py", "psutil"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _nvml_gpus(notes: list[str]) -> tuple[list[GpuInfo], str | None]:
    try:
        import pynvml
    except ImportError as e:
        notes.append(f"could not read GPUs: nvidia-ml-py is not installed ({e})")
        return [], None
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        notes.append(f"could not read GPUs: NVML did not start ({e})")
        return [], None
    gpus, driver = [], None
    try:
        try:
            driver = _text(pynvml.nvmlSystemGetDriverVersion())
        except Exception as e:
            notes.append(f"could not read the NVIDIA driver version: {e}")
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            g = GpuInfo(index=i, name=_text(pynvml.nvmlDeviceGetName(h)))
            for what, probe in (
                ("memory", lambda: setattr(g, "memory_mb", pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**20)),
                ("power limit", lambda: setattr(g, "power_limit_w", pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000)),
                ("compute capability", lambda: setattr(
                    g, "compute_capability", "%d.%d" % tuple(pynvml.nvmlDeviceGetCudaComputeCapability(h)))),
                ("total energy counter", lambda: (pynvml.nvmlDeviceGetTotalEnergyConsumption(h),
                                                  setattr(g, "energy_counter", True))),
            ):
                try:
                    probe()
                except Exception as e:
                    notes.append(f"could not read GPU {i} {what}: {e}")
            gpus.append(g)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return gpus, driver


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def detect() -> Hardware:
    notes: list[str] = []
    model, note = cpu_model()
    if note:
        notes.append(note)
    physical = logical = mem = None
    try:
        import psutil

        physical, logical = psutil.cpu_count(logical=False), psutil.cpu_count(logical=True)
        mem = psutil.virtual_memory().total / 2**20
    except Exception as e:
        logical = os.cpu_count()
        notes.append(f"could not read CPU cores / memory through psutil: {e}")
    gpus, driver = _nvml_gpus(notes)
    hw = Hardware(model, physical, logical, mem, gpus=gpus, driver=driver, versions=_versions())
    try:
        import torch

        hw.torch_version = torch.__version__
        hw.cuda_version = torch.version.cuda
        hw.cuda_available = torch.cuda.is_available()
        if not hw.cuda_available:
            notes.append("no CUDA device visible to torch"
                         + ("" if hw.cuda_version else " (this torch build has no CUDA)") + ": profiling runs on the CPU")
    except Exception as e:
        notes.append(f"could not read torch / CUDA versions: {e}")
    from engine.profiler.energy import capabilities

    hw.gpu_energy, hw.cpu_energy, energy_notes = capabilities(0 if hw.cuda_available else None)
    notes.extend(energy_notes)
    hw.notes = notes
    return hw

"""What this machine is: GPUs through NVML, CPU model and cores, torch / CUDA versions, and
whether the energy counters (NVML total energy, RAPL) can be read.

Every probe is allowed to fail: what could not be read is said in ``notes`` ("could not read
X: why"), never raised, so detection works with no GPU and no NVML.
"""
from __future__ import annotations

import glob
import os
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata

RAPL_GLOB = "/sys/class/powercap/intel-rapl:*"


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
    rapl_domains: list[str] = field(default_factory=list)  # readable package energy_uj files
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


def rapl_domains() -> tuple[list[str], list[str]]:
    """Readable top-level RAPL package counters (subdomains are parts of a package: not summed)."""
    found, notes = [], []
    paths = sorted(p for p in glob.glob(RAPL_GLOB) if p.count(":") == 1)
    if not paths:
        return [], ["could not read CPU energy (RAPL): no /sys/class/powercap/intel-rapl:* on this machine"]
    for p in paths:
        try:
            with open(os.path.join(p, "energy_uj")) as f:
                int(f.read().strip())
            found.append(p)
        except (OSError, ValueError) as e:
            notes.append(f"could not read CPU energy (RAPL) {p}/energy_uj: {e.strerror if isinstance(e, OSError) else e}")
    return found, notes


def _versions() -> dict:
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("torch", "torchao", "numpy", "scikit-learn", "nvidia-ml-py", "psutil"):
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
    hw.rapl_domains, rapl_notes = rapl_domains()
    notes.extend(rapl_notes)
    hw.notes = notes
    return hw

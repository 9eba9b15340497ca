"""The measurement window and hardware detection, on the CPU."""
import time

import pytest
import torch

from engine.profiler.energy import EnergyMonitor, capabilities
from engine.profiler.hardware import detect
from engine.profiler.measure import measure, stats


def test_stats_of_known_values():
    s = stats([0.001, 0.002, 0.003, 0.004])
    assert s["median_ms"] == pytest.approx(2.5)
    assert s["iqr_ms"] == pytest.approx(1.5)
    assert s["p90_ms"] == pytest.approx(3.7)
    assert s["cv"] == pytest.approx(s["std_ms"] / 2.5)
    assert s["n"] == 4


def test_window_on_a_sleep_workload():
    m = measure(lambda: time.sleep(0.01), units_per_call=4, min_time_s=0.25, min_repeats=5, interval_s=0.02)
    lat = m.latency
    assert 9.5 <= lat["median_ms"] < 40  # a 10 ms sleep, with a loaded machine's slack
    assert lat["median_ms"] <= lat["p90_ms"] <= lat["p99_ms"]
    assert m.calls >= 5 and m.reading.elapsed_s >= 0.25
    assert m.throughput == pytest.approx(4 * m.calls / m.reading.elapsed_s)
    assert 0 <= m.reading.cpu_util < 50  # sleeping uses next to no CPU
    assert m.reading.gpu_energy_j is None
    if m.reading.cpu_energy_j is None:  # no RAPL here: said, not guessed
        assert any("CPU energy not measurable" in n for n in m.reading.notes)
    else:  # RAPL read through Zeus: a sleeping process's package still draws something
        assert m.reading.cpu_energy_j > 0 and m.reading.energy_method == "zeus: RAPL"


def test_minimum_count_wins_over_minimum_time():
    m = measure(lambda: time.sleep(0.02), units_per_call=1, min_time_s=0.0, min_repeats=4, warmup=0, sample=False)
    assert m.calls == 4
    assert m.reading.cpu_util is None  # no sampler, no utilization


def test_peak_memory_sees_an_allocation_inside_the_window():
    held = []

    def fn():
        held.append(torch.ones(64 * 2**20 // 4))  # 64 MB, touched
        time.sleep(0.03)
        held.clear()

    m = measure(fn, units_per_call=1, min_time_s=0.1, min_repeats=2, warmup=0, interval_s=0.01)
    assert m.reading.peak_memory_mb >= 50


def test_cpu_peak_memory_catches_a_short_spike_in_a_process_that_was_larger_before():
    """A spike shorter than the sampler's interval, in a process whose lifetime peak is higher
    (ru_maxrss does not rise), still counts: the kernel's high-water mark, reset when the
    measurement starts (warm-up included), is read at its end."""
    from engine.profiler.measure import peak_rss_since_reset, reset_peak_rss
    from engine.profiler.sweep import _release_memory

    if not reset_peak_rss() or peak_rss_since_reset() is None:
        pytest.skip("this kernel cannot reset the peak RSS (/proc/self/clear_refs)")
    past = torch.ones(160 * 2**20 // 4)  # 160 MB, touched: the process's peak before the measurement
    del past
    _release_memory()

    def spike():
        t = torch.ones(80 * 2**20 // 4)  # 80 MB for a few ms
        t.sum()

    m = measure(spike, units_per_call=1, min_time_s=0.0, min_repeats=1, warmup=0, interval_s=5.0)
    assert m.reading.peak_memory_mb >= 70
    _release_memory()  # the spike's pages handed back, whatever the allocator's thresholds did with them
    m = measure(spike, units_per_call=1, min_time_s=0.0, min_repeats=1, warmup=1, max_repeats=1, interval_s=5.0,
                sample=False)
    assert m.reading.peak_memory_mb >= 70  # the warm-up's spike, seen without a sampler


def test_hardware_detection_without_gpu_says_what_it_could_not_read():
    hw = detect()
    assert hw.cpu_model and hw.cpu_cores_logical >= 1
    assert hw.torch_version == torch.__version__
    if not torch.cuda.is_available():
        assert hw.name == hw.cpu_model
        assert any("GPU" in n or "CUDA" in n for n in hw.notes)
    if not hw.cpu_energy:
        assert any("RAPL" in n for n in hw.notes)


def test_zeus_energy_on_this_machine_says_what_it_cannot_read():
    """The real path: Zeus on this machine (here: no GPU, no RAPL). Nothing is guessed."""
    mon = EnergyMonitor("cpu")
    mon.begin()
    time.sleep(0.05)
    r = mon.end()
    assert r.gpu_j is None  # a CPU run never reports GPU energy
    if mon.cpu_ok:
        assert r.cpu_j is not None and r.cpu_j >= 0 and r.method == "zeus: RAPL"
    else:
        assert r.cpu_j is None and r.method is None
        assert any(n.startswith("CPU energy not measurable here: Zeus found no readable RAPL") for n in r.notes)


def test_zeus_without_nvml_gpu_energy_is_not_measurable(monkeypatch):
    """A GPU run where NVML cannot start (faked absent, as Zeus's own tests fake pynvml): the
    window still closes, GPU energy is None and the note says why."""
    import pynvml
    import zeus.device.gpu as zgpu

    def no_library():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", no_library)
    monkeypatch.setattr(zgpu, "_gpus", None)  # Zeus keeps its GPU manager as a singleton
    zgpu.nvml_is_available.cache_clear() if hasattr(zgpu.nvml_is_available, "cache_clear") else None
    mon = EnergyMonitor("cuda:0")
    assert not mon.gpu_ok
    mon.begin()
    r = mon.end()
    assert r.gpu_j is None
    assert any(n.startswith("GPU energy not measurable here: Zeus could not reach the GPU") for n in r.notes)
    ok, _, notes = capabilities(0)
    assert not ok and any("GPU energy not measurable" in n for n in notes)


def test_quantile_intervals_from_order_statistics():
    from engine.profiler.measure import quantile_ci

    values = list(range(1, 101))  # 1..100
    lo, hi = quantile_ci(values, 0.5)
    assert (lo, hi) == (41.0, 61.0)  # n q -/+ 1.96 sqrt(n q (1 - q)) = 50 -/+ 9.8 -> order statistics 40 and 60 (0-based)
    assert quantile_ci([5.0], 0.5) == (5.0, 5.0)
    assert quantile_ci([1.0, 2.0, 3.0], 0.9) == (2.0, 3.0)  # cut at the largest value
    s = stats([t / 1000 for t in values])
    assert s["median_ci_ms"] == (41.0, 61.0) and s["p90_ci_ms"][0] < s["p90_ms"] < s["p90_ci_ms"][1]


class CountingEnergy:
    """A stand-in for a machine with a readable energy counter (absent here): 50 W while open."""
    cuda_index = None

    def __init__(self):
        self.opened = {}

    def begin(self, name=""):
        self.opened[name] = time.perf_counter()

    def end(self, name=""):
        from engine.profiler.energy import EnergyReading

        return EnergyReading(cpu_j=50.0 * (time.perf_counter() - self.opened.pop(name)), method="test: 50 W")


def test_blocks_give_throughput_and_energy_intervals():
    m = measure(lambda: time.sleep(0.005), units_per_call=2, min_time_s=0.6, block_s=0.1, sample=False,
                energy=CountingEnergy())
    assert len(m.blocks) >= 3 and all(b.energy_j is not None for b in m.blocks)
    lo, hi = m.throughput_ci()
    assert lo <= m.throughput <= hi
    per_unit = m.reading.cpu_energy_j / m.units
    elo, ehi = m.energy_ci(per_unit)
    assert elo <= per_unit <= ehi and per_unit == pytest.approx(50.0 * m.reading.elapsed_s / m.units, rel=1e-3)
    assert m.energy_ci(None) is None


def test_until_ci_stops_once_narrow_and_says_when_the_cap_came_first():
    steady = measure(lambda: time.sleep(0.004), units_per_call=1, min_time_s=0.2, min_repeats=5, block_s=0.05,
                     sample=False, until_ci=25.0, max_time_s=20.0)
    assert steady.notes == [] and steady.reading.elapsed_s < 20  # a steady sleep is narrow soon
    rng = iter(range(10**9))

    def jumpy():  # alternates 1 ms and 30 ms: the median cannot settle within 1 %
        time.sleep(0.001 if next(rng) % 2 else 0.03)

    capped = measure(jumpy, units_per_call=1, min_time_s=0.1, min_repeats=3, block_s=0.05, sample=False,
                     until_ci=1.0, max_time_s=0.8)
    assert 0.8 <= capped.reading.elapsed_s < 5
    assert capped.notes and "intervals still wider than +/-1 %" in capped.notes[0]

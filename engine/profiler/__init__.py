"""The profiler: measure a grid of configurations of a workload on this machine.

hardware.py (what the machine is), sampler.py + energy.py (what it draws while working: Zeus),
measure.py (the measurement window), workloads.py (the built-in and user workloads), hf.py
(Hugging Face causal LMs, hf:MODEL) with quant.py (torchao quantization) and memory.py (peak
memory predicted before running), knobs.py (the grid and how each knob is applied), sweep.py
(run a grid into the store), launch.py (a sweep as its own process, for the page).
"""

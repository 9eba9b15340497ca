"""The profiler: measure a grid of configurations of a workload on this machine.

hardware.py (what the machine is), sampler.py + energy.py (what it draws while working),
measure.py (the measurement window), workloads.py (the built-in and user workloads),
knobs.py (the grid and how each knob is applied), sweep.py (run a grid into the store).
"""

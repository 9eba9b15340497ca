"""`make bench`: run every bench/bench_*.py module's main() in turn, or those named on the command
line (`python -m bench pareto search`); other words go to each module's main(argv) as options
(`python -m bench search --quick`, or `make bench search quick`).

Where more than one is run, each runs in a process of its own, as a person runs one: a section
measured after another in the same process inherited its heap and its imports (memory's
RSS-based peaks read 41.6 % off where alone they read 21.9 %; search's worker processes
printed Streamlit's warnings, imported by explore's section before it)."""
from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    chosen = [n for n in names if n.removeprefix("bench_") in argv or n in argv] or names
    options = [a for a in argv if a not in names and "bench_" + a not in names]
    failed = []
    for name in chosen:
        if len(chosen) > 1:  # the child prints the section's heading and time
            if subprocess.run([sys.executable, "-m", "bench", name, *options]).returncode:
                failed.append(name)
            continue
        print(f"\n=== {name} ===", flush=True)
        t = time.perf_counter()
        mod = importlib.import_module(f"bench.{name}")
        mod.main(options) if inspect.signature(mod.main).parameters else mod.main()
        print(f"({name} took {time.perf_counter() - t:.1f} s)", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

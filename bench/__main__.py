"""`make bench`: run every bench/bench_*.py module's main() in turn, or those named on the command
line (`python -m bench pareto search`); other words go to each module's main(argv) as options
(`python -m bench search --quick`, or `make bench search quick`)."""
from __future__ import annotations

import importlib
import inspect
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    chosen = [n for n in names if n.removeprefix("bench_") in argv or n in argv]
    options = [a for a in argv if a not in names and "bench_" + a not in names]
    for name in chosen or names:
        print(f"\n=== {name} ===", flush=True)
        t = time.perf_counter()
        mod = importlib.import_module(f"bench.{name}")
        mod.main(options) if inspect.signature(mod.main).parameters else mod.main()
        print(f"({name} took {time.perf_counter() - t:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

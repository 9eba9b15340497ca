"""Arrow's compute kernels, called through the module that holds them (pyarrow._compute) rather
than pyarrow.compute, which writes a docstring for each of its 280-odd functions as it loads:
0.04-0.05 s of the 0.25 s an import command takes to start (``make bench import``), for nothing
the engine reads. Same kernels, same results; pyarrow.compute's where a pyarrow keeps them there."""
from __future__ import annotations

import pyarrow as pa

try:
    from pyarrow._compute import CastOptions, call_function
except ImportError:  # pragma: no cover - a pyarrow that moved them
    from pyarrow.compute import CastOptions, call_function


def call(name: str, *args):
    """Arrow's kernel ``name`` on ``args`` (arrays, chunked arrays, scalars) with its default options."""
    return call_function(name, list(args))


def cast(values, target: pa.DataType, safe: bool = True):
    """``values`` as ``target``; unsafe: an integer past the target's range wraps, as pyarrow's
    cast(safe=False) does."""
    return call_function("cast", [values], CastOptions.safe(target) if safe else CastOptions.unsafe(target))

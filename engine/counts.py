"""How a count reads in a sentence: "1 run", "2,017 runs". One place, so no message says
"1 configurations"."""
from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """``n`` with thousands separators and ``noun``, with an s for any count but one."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"

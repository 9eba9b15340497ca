"""Importers: each turns another tool's run log into canonical runs (a DataFrame) plus the
definitions of the extra fields it brings. They never write to the store themselves."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from engine.fields import Field


@dataclass
class Parsed:
    """What an importer read from one file: runs in canonical names, and extra field specs."""

    runs: pd.DataFrame
    extra_fields: list[Field] = field(default_factory=list)
    source: str = ""
    notes: list[str] = field(default_factory=list)
    row_label: str = "row"  # how a person counts this file's runs in a message: line, record, configuration
    row_numbers: Sequence[int] | None = None  # each run's position in the file (default 1, 2, ...)
    series: pd.DataFrame | None = None  # time series of the runs (run_id, t_s, name, value): engine.timeseries

    def where(self, i: int) -> str:
        """Where the i-th run came from, for a message: 'line 3'."""
        n = self.row_numbers[i] if self.row_numbers is not None else i + 1
        return f"{self.row_label} {n}"

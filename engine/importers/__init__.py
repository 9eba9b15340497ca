"""Importers: each turns another tool's run log into canonical runs (a DataFrame) plus the
definitions of the extra fields it brings. They never write to the store themselves."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from engine.fields import Field

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Parsed:
    """What an importer read from one file: runs in canonical names, and extra field specs.

    ``data`` holds the runs as a pandas DataFrame, or as a pyarrow Table where an importer built
    them in DuckDB (tabular files: a million rows stay out of pandas on their way to the store);
    ``runs`` is always a DataFrame, converted once on first use."""

    data: Any  # pd.DataFrame | pyarrow.Table
    extra_fields: list[Field] = field(default_factory=list)
    source: str = ""
    notes: list[str] = field(default_factory=list)
    row_label: str = "row"  # how a person counts this file's runs in a message: line, record, configuration
    row_numbers: Sequence[int] | None = None  # each run's position in the file (default 1, 2, ...)
    series: pd.DataFrame | None = None  # time series of the runs (run_id, t_s, name, value): engine.timeseries
    # column -> the field whose range (engine.fields.limits) the importer already held every value to
    checked: dict[str, Field] = field(default_factory=dict)
    file_hash: str | None = None  # sha256 of the file's bytes, where the reader saw them all

    @property
    def runs(self) -> pd.DataFrame:
        if isinstance(self.data, pa.Table):
            self.data = frame(self.data)
        return self.data

    @runs.setter
    def runs(self, df: pd.DataFrame) -> None:
        self.data = df

    @property
    def columns(self) -> list[str]:
        return list(self.data.column_names) if isinstance(self.data, pa.Table) else list(self.data.columns)

    @property
    def n_runs(self) -> int:
        return len(self.data)

    def where(self, i: int) -> str:
        """Where the i-th run came from, for a message: 'line 3'."""
        n = self.row_numbers[i] if self.row_numbers is not None else i + 1
        return f"{self.row_label} {n}"


def frame(table) -> pd.DataFrame:
    """An Arrow table as the DataFrame DuckDB's ``.df()`` gives for the same result (nullable
    integers stay integers, text is pandas' string type)."""
    from engine import duck

    con = duck.connect()
    try:
        return con.from_arrow(table).df()
    finally:
        con.close()


@dataclass(frozen=True)
class Importer:
    """One native format, declared by its module as ``IMPORTER`` and listed once in
    engine.importers.registry, which detection, the Import page and the CLI help all read:
    adding a format is a new module plus one entry there."""

    name: str  # the --format value and the detected format a person sees
    kind: str  # what a person calls it in a list: "ML.ENERGY", "a Zeus power timeline"
    description: str  # one line for people: the Import page's caption, the CLI help
    # what sniff is shown, one kind or several: "json" (the parsed object), "jsonl" (a JSON Lines
    # file's first record), "csv" (the header's names), "parquet" (the path)
    reads: str | tuple[str, ...]
    sniff: Callable[[Any], bool]  # is this file of this kind? cheap, never raises on a foreign file
    parse: Callable[[Path, str], Parsed]  # (path, name for messages) -> runs; ValueError names the file
    listed: bool = True  # False: recognised only to tell a person what to import instead

    def takes(self, kind: str) -> bool:
        return kind == self.reads if isinstance(self.reads, str) else kind in self.reads

"""Importers: each turns another tool's run log into canonical runs (a DataFrame) plus the
definitions of the extra fields it brings. They never write to the store themselves."""
from __future__ import annotations

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

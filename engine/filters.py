"""One filter language for the command line, Explore's links and the store.

A filter is a column, a kind and a value. Each kind reads itself from the text people type, writes
itself back to that text, gives its SQL with the value as parameters, and says itself in words.
A link's ``?name=text`` is the command line's ``--filter name=text``, so both read the same way:

    kind      command line           link                   in words
    one of    hardware=H100,A100     hardware=H100,A100     hardware is H100 or A100
    range     batch_size=8..64       batch_size=8..64       batch_size between 8 and 64
              batch_size>=8          batch_size=8..         batch_size at least 8
              batch_size<=64         batch_size=..64        batch_size at most 64
    bound     energy_j<0.4           (none)                 energy_j less than 0.4
              throughput>100         (none)                 throughput more than 100

``LO..HI`` is a range only for a numeric column; a text value may hold two dots. The column reaches
SQL only as the store's SQL for a registered field (``Store.column_sql``); what was typed is only
ever a parameter.

Code passes a set of filters around as a mapping, column -> condition: a list of allowed values,
or a dict of bounds ``{"min": lo, "max": hi, "gt": x, "lt": x}`` (each optional). ``from_mapping``
and ``to_mapping`` convert between the two.
"""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NUMERIC = ("integer", "double")
SYNTAX = "COL=VALUE (V1,V2 for any of several), COL=LO..HI, COL>=X, COL<=X, COL>X or COL<X"


class FilterError(ValueError):
    """A filter that cannot be read, as one sentence that names it."""


def text_of(value) -> str:
    """A value as a filter writes it: 8 not 8.0, 0.25, H100."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def cast(dtype: str, text: str, spec: str, exact: bool = False):
    """A typed value in the column's type: a finite number for a numeric column (a whole one where an
    integer column must equal it; a bound of an integer range may fall between two)."""
    if dtype not in NUMERIC:
        return text
    try:
        number = float(text)
    except ValueError:
        raise FilterError(f"Filter '{spec}': '{text}' is not a number.") from None
    if not math.isfinite(number):
        raise FilterError(f"Filter '{spec}': '{text}' is not a finite number.")
    if dtype == "integer" and number.is_integer() and abs(number) < 2**63:
        return int(number)
    if dtype == "integer" and exact:
        raise FilterError(f"Filter '{spec}': the column holds whole numbers, and '{text}' is not one.")
    return number


def _either(values: Sequence) -> str:
    words = [text_of(v) for v in values]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


class OneOf:
    """The column equals one of the values (an empty list matches no run)."""
    op = "="

    def parse(self, op: str, text: str, dtype: str, spec: str) -> tuple:
        return tuple(cast(dtype, v.strip(), spec, exact=True) for v in text.split(","))

    def format(self, value: tuple) -> str:
        return ",".join(text_of(v) for v in value)

    def sql(self, col: str, value: tuple) -> tuple[str, list]:
        if not value:
            return "FALSE", []
        return f"{col} IN ({', '.join('?' for _ in value)})", list(value)

    def sentence(self, column: str, value: tuple) -> str:
        return f"{column} is {_either(value)}" if value else f"{column} in an empty list (no run)"


class Range:
    """LO <= column <= HI, either end open; written LO..HI, or COL>=LO / COL<=HI with one end."""

    def parse(self, op: str, text: str, dtype: str, spec: str) -> tuple:
        if op != "=":
            bound = cast(dtype, text.strip(), spec)
            return (bound, None) if op == ">=" else (None, bound)
        lo, _, hi = text.partition("..")
        bounds = tuple(cast(dtype, t.strip(), spec) if t.strip() else None for t in (lo, hi))
        if bounds == (None, None):
            raise FilterError(f"Filter '{spec}' gives neither bound; write LO..HI, LO.. or ..HI.")
        return bounds

    def format(self, value: tuple) -> str:
        lo, hi = value
        return f"{'' if lo is None else text_of(lo)}..{'' if hi is None else text_of(hi)}"

    def text(self, column: str, value: tuple) -> str:
        lo, hi = value
        if hi is None:
            return f"{column}>={text_of(lo)}"
        if lo is None:
            return f"{column}<={text_of(hi)}"
        return f"{column}={self.format(value)}"

    def sql(self, col: str, value: tuple) -> tuple[str, list]:
        parts = [(f"{col} {op} ?", v) for op, v in zip((">=", "<="), value) if v is not None]
        return " AND ".join(p for p, _ in parts), [v for _, v in parts]

    def sentence(self, column: str, value: tuple) -> str:
        lo, hi = value
        if hi is None:
            return f"{column} at least {text_of(lo)}"
        if lo is None:
            return f"{column} at most {text_of(hi)}"
        return f"{column} is {text_of(lo)}" if lo == hi else f"{column} between {text_of(lo)} and {text_of(hi)}"


class Bound:
    """A strict bound, column > X or column < X (links have no way to say it)."""

    def __init__(self, op: str, key: str, words: str):
        self.op, self.key, self.words = op, key, words

    def parse(self, op: str, text: str, dtype: str, spec: str):
        return cast(dtype, text.strip(), spec)

    def format(self, value) -> str:
        return text_of(value)

    def sql(self, col: str, value) -> tuple[str, list]:
        return f"{col} {self.op} ?", [value]

    def sentence(self, column: str, value) -> str:
        return f"{column} {self.words} {text_of(value)}"


ONE_OF, RANGE = OneOf(), Range()
ABOVE, BELOW = Bound(">", "gt", "more than"), Bound("<", "lt", "less than")
KINDS = {"=": ONE_OF, ">=": RANGE, "<=": RANGE, ">": ABOVE, "<": BELOW}  # by operator; "=" with LO..HI is a range
_SPEC = re.compile(r"\s*([^<>=]*?)\s*(" + "|".join(sorted(KINDS, key=len, reverse=True)) + r")(.*)", re.S)
_BOUNDS = {"gt": ABOVE, "lt": BELOW}  # a mapping's strict bounds; "min" / "max" make a range


@dataclass(frozen=True)
class Filter:
    column: str
    kind: OneOf | Range | Bound  # a value of KINDS
    value: Any  # a tuple of values (one of), (lo, hi) (range), a number (bound)

    def text(self) -> str:
        """As the command line writes it: 'hardware=H100,A100', 'batch_size>=8'."""
        if self.kind is RANGE:
            return RANGE.text(self.column, self.value)
        return f"{self.column}{self.kind.op}{self.kind.format(self.value)}"

    def param(self) -> str | None:
        """As a link writes it after ``column=``; None for a kind links cannot say."""
        return self.kind.format(self.value) if self.kind in (ONE_OF, RANGE) else None

    def sql(self, col: str) -> tuple[str, list]:
        """SQL and parameters, given the store's SQL ``col`` for the column (never typed text)."""
        return self.kind.sql(col, self.value)

    def sentence(self) -> str:
        return self.kind.sentence(self.column, self.value)


def parse(spec: str, store) -> Filter:
    """A filter as the command line writes it, e.g. 'batch_size>=8', for a column of ``store``."""
    m = _SPEC.fullmatch(spec)
    if not m or not m.group(1):
        raise FilterError(f"Filter '{spec}' must look like {SYNTAX}.")
    return _parse(m.group(1), m.group(2), m.group(3), store, spec)


def parse_param(name: str, text: str, store) -> Filter:
    """A filter as a link writes it, ``?name=text``: read exactly as the command line's name=text."""
    return _parse(name, "=", text, store, f"{name}={text}")


def _parse(column: str, op: str, text: str, store, spec: str) -> Filter:
    if not store.has_field(column):
        raise FilterError(f"Filter '{spec}' names an unknown column '{column}'.")
    dtype = store.field(column).dtype
    kind = RANGE if op == "=" and dtype in NUMERIC and ".." in text else KINDS[op]
    return Filter(column, kind, kind.parse(op, text, dtype, spec))


def from_mapping(filters: Mapping | None) -> list[Filter]:
    """The filters of a mapping (see the module's docstring); a bare value means a list of one."""
    out = []
    for column, cond in (filters or {}).items():
        if isinstance(cond, Mapping):
            unknown = set(cond) - {"min", "max", *_BOUNDS}
            if unknown:
                raise FilterError(f"The filter on '{column}' has a bound {sorted(unknown)[0]!r}; "
                                  f"known: min, max, gt, lt.")
            lo, hi = cond.get("min"), cond.get("max")
            if lo is not None or hi is not None:
                out.append(Filter(column, RANGE, (lo, hi)))
            out += [Filter(column, kind, cond[key]) for key, kind in _BOUNDS.items() if cond.get(key) is not None]
        else:
            values = tuple(cond) if isinstance(cond, Iterable) and not isinstance(cond, str) else (cond,)
            out.append(Filter(column, ONE_OF, values))
    return out


def to_mapping(filters: Iterable[Filter]) -> dict:
    """The mapping of several filters: value lists on one column add up (any of them), a later
    bound replaces an earlier one; a value list and bounds on one column are refused."""
    out: dict = {}
    for f in filters:
        have = out.get(f.column)
        if have is not None and isinstance(have, list) != (f.kind is ONE_OF):
            raise FilterError(f"Filter '{f.text()}' mixes a range with a value list for '{f.column}'.")
        if f.kind is ONE_OF:
            out[f.column] = (have or []) + list(f.value)
        elif f.kind is RANGE:
            bounds = out.setdefault(f.column, {})
            bounds.update({k: v for k, v in zip(("min", "max"), f.value) if v is not None})
        else:
            out.setdefault(f.column, {})[f.kind.key] = f.value
    return out


def params(filters: Mapping | None) -> dict[str, str]:
    """A link's query params for a mapping: one per column a link can say (see the table above)."""
    out = {}
    for f in from_mapping(filters):
        if f.param() and f.column not in out:
            out[f.column] = f.param()
    return out


def describe(filters: Mapping | None) -> str:
    """The filters in words: 'task is gpqa, hardware is H100 or B200 and batch_size at least 16'."""
    said = [f.sentence() for f in from_mapping(filters)]
    return f"{', '.join(said[:-1])} and {said[-1]}" if len(said) > 1 else "".join(said)

"""Pick the importer for a file from its content (``fmt`` overrides) and run it."""
from __future__ import annotations

import json
from pathlib import Path

from engine.importers import Parsed, tabular
from engine.importers.registry import BY_NAME, FORMATS, NATIVE, kinds, sniff

__all__ = ["FORMATS", "NATIVE", "detect", "parse"]
TABULAR = set(tabular.FORMATS)


def _json_head(path: Path, name: str):
    """The parsed document if the file is one JSON object (small native results), else None."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if not head.startswith(b"{") or path.stat().st_size > 64 * 2**20:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None  # JSONL, or broken: the tabular reader reports it
    except RecursionError:
        raise ValueError(f"{name}: JSON nested too deeply to read (a run log is a few levels deep).") from None


def _first_record(path: Path):
    """The first line of a JSON Lines file, parsed, if it is one JSON object; else None."""
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    data = json.loads(line)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    return None
                return data if isinstance(data, dict) else None
    return None


def detect(path: str | Path, name: str | None = None) -> str:
    """One of FORMATS, judged from the content (the extension only breaks ties)."""
    path = Path(path)
    name = name or path.name
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        return sniff("parquet", path) or "parquet"
    ext = tabular.format_of(path, name)
    if ext in ("json", "jsonl") or magic.lstrip()[:1] in (b"{", b"["):
        data = _json_head(path, name)
        if data is not None:
            found = sniff("json", data)
            if found:
                return found
            if ext != "jsonl":
                raise ValueError(f"{name} is a JSON object of no known kind ({kinds('json')}); "
                                 "a table must be a JSON array of records or JSONL.")
        record = _first_record(path)
        if record is not None:
            found = sniff("jsonl", record)
            if found:
                return found
        with open(path, "rb") as fh:
            first = fh.read(4096).lstrip()[:1]
        return "json" if first == b"[" else "jsonl"
    if ext == "parquet":
        return "parquet"  # not PAR1: the reader says it is broken
    if ext in ("csv", "tsv", None):
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as fh:
                header = [h.strip() for h in fh.readline(1 << 20).strip().split(",")]
        except OSError:
            header = []
        found = sniff("csv", header)
        if found:
            return found
    return ext or "csv"


def check_readable(path: str | Path, name: str) -> None:
    """One sentence naming a file to read that is missing or a folder, before anything opens it."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{name}: no such file.")
    if path.is_dir():
        raise ValueError(f"{name} is a folder; name the files in it (e.g. {Path(name) / '*.json'}).")


def parse(path: str | Path, name: str | None = None, fmt: str | None = None,
          mapping: list[tabular.ColumnMap] | None = None, max_bytes: int = tabular.MAX_BYTES,
          table: tabular.Table | None = None) -> Parsed:
    """Read one file with the adapter its content calls for; ValueError names the file on failure.
    ``table``: a tabular file already read (tabular.read_table, for its preview), not read again."""
    path = Path(path)
    name = name or path.name
    check_readable(path, name)
    tabular.check_size(path, name, max_bytes)
    fmt = fmt or detect(path, name)
    if fmt not in TABULAR and fmt not in BY_NAME:
        raise ValueError(f"{name}: unknown format '{fmt}'; use one of {', '.join(FORMATS)}.")
    try:
        if fmt in TABULAR:
            return tabular.parse_file(path, name, fmt, mapping, max_bytes, table)
        return BY_NAME[fmt].parse(path, name)
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text; save it as UTF-8 and upload it again.") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{name}: malformed JSON at line {e.lineno}, column {e.colno} ({e.msg}).") from None
    except RecursionError:
        raise ValueError(f"{name}: JSON nested too deeply to read (a run log is a few levels deep).") from None
    except (KeyError, TypeError, AttributeError, OverflowError, ValueError) as e:
        if isinstance(e, ValueError) and str(e).startswith(name):
            raise  # already one sentence naming the file
        detail = (str(e).splitlines() or [""])[0][:200]
        raise ValueError(f"{name} does not have the shape of a {fmt} file ({e.__class__.__name__}: {detail}).") from None

"""Import files into the store: every file is read and checked first, then each becomes its own
import batch, all of them in one transaction. A bad file, or a store that refuses one batch,
leaves the store exactly as it was: a set of files goes in whole or not at all."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from engine.importers import Parsed
from engine.importers.detect import detect, parse
from engine.importers.tabular import MAX_BYTES, ColumnMap
from engine.store import ImportResult, Store, StoreBusy, StoreError


@dataclass
class FileImport:
    name: str
    format: str
    result: ImportResult

    def message(self) -> str:
        r = self.result
        if r.already_imported:
            return f"{self.name}: already imported (batch {r.import_id}); nothing added."
        if r.import_id is None:
            return f"{self.name}: nothing added; its {r.duplicates} runs are already in the store."
        dup = f", {r.duplicates} already in the store" if r.duplicates else ""
        return f"{self.name} ({self.format}): {r.added} runs added as batch {r.import_id}{dup}."


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def companions(paths: list[Path]) -> set[Path]:
    """optimum-benchmark configs that a report in the same folder consumes (not runs themselves)."""
    reports = {p.parent for p in paths if p.name == "benchmark_report.json"}
    return {p for p in paths if p.name == "benchmark_config.json" and p.parent in reports}


def read_files(paths, fmt: str | None = None, mappings: dict[str, list[ColumnMap]] | None = None,
               names: dict[str, str] | None = None, max_bytes: int = MAX_BYTES) -> list[tuple[Path, str, str, Parsed]]:
    """Parse every file (raising on the first bad one): (path, shown name, format, Parsed)."""
    paths = [Path(p) for p in paths]
    skip = companions(paths)
    out = []
    for p in paths:
        if p in skip:
            continue
        name = (names or {}).get(str(p), p.name)
        f = fmt or detect(p, name) if p.exists() else fmt
        parsed = parse(p, name, f, (mappings or {}).get(str(p)), max_bytes)
        if parsed.runs.empty:
            raise ValueError(f"{name} holds no runs.")
        out.append((p, name, f, parsed))
    return out


def check_fields(store: Store, name: str, parsed: Parsed) -> None:
    """Refuse, before writing, a field whose type clashes with the same name in the store."""
    numeric = {"integer", "double"}
    for f in parsed.extra_fields:
        if store.has_field(f.name):
            known = store.field(f.name)
            if known.dtype != f.dtype and not {known.dtype, f.dtype} <= numeric:
                raise ValueError(f"{name}: column '{f.name}' holds {f.dtype} values but the store's '{f.name}' is "
                                 f"{known.dtype}; map it to another name.")


def import_files(store: Store, paths, fmt: str | None = None, mappings: dict[str, list[ColumnMap]] | None = None,
                 names: dict[str, str] | None = None, max_bytes: int = MAX_BYTES) -> list[FileImport]:
    return add_files(store, read_files(paths, fmt, mappings, names, max_bytes))


def add_files(store: Store, files: list[tuple[Path, str, str, Parsed]]) -> list[FileImport]:
    """Store files already read (read_files: parse first, so the store is held only to write)."""
    for _, name, _, parsed in files:
        check_fields(store, name, parsed)
    done = []
    with store.transaction():
        for p, name, f, parsed in files:
            try:
                res = store.add_runs(parsed.runs, source=name, kind=f, extra_fields=parsed.extra_fields,
                                     file_name=name, file_hash=file_hash(p), note="; ".join(parsed.notes) or None)
            except StoreBusy:
                raise
            except StoreError as e:
                also = f"; none of the {len(files)} files was imported" if len(files) > 1 else ""
                raise ValueError(f"{name}: {str(e).rstrip('.')}{also}.") from None
            done.append(FileImport(name, f, res))
    return done

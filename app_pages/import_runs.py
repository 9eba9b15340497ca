"""Import: upload run logs (tables or the native outputs of benchmarking tools), check the
preview and column mapping, commit; manage import batches; attach quality scores."""
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from engine import quality
from engine.counts import counted
from engine.fields import CANONICAL_NAMES
from engine.importers.detect import detect
from engine.importers.registry import LISTED
from engine.importers.tabular import FORMATS as TABLES
from engine.importers.tabular import KINDS, MAX_UPLOAD_MB, Table, mapping_from_records, propose_mapping, read_table
from engine.ingest import add_files, companions, read_files
from engine.store import StoreError
from ui.state import open_store
from ui.text import literal

st.title("Import runs")
st.caption(f"CSV, TSV, Parquet, JSON (array of records) or JSONL tables; {'; '.join(i.description for i in LISTED)}. "
           f"Up to {MAX_UPLOAD_MB} MB per file.")

uploads = st.file_uploader(f"Run logs (up to {MAX_UPLOAD_MB} MB each)", accept_multiple_files=True, key="uploads")


def _save(files) -> tuple[Path, list[Path]]:
    """Write the uploads to one temp folder (companion files must sit side by side)."""
    key = tuple((f.name, f.size, f.file_id) for f in files)
    if st.session_state.get("_upload_key") != key:
        _forget_tables()
        folder = Path(tempfile.mkdtemp(prefix="paretoscope-upload-"))
        for f in files:
            (folder / Path(f.name).name).write_bytes(f.getbuffer())
        st.session_state["_upload_key"] = key
        st.session_state["_upload_dir"] = str(folder)
    folder = Path(st.session_state["_upload_dir"])
    return folder, [folder / Path(f.name).name for f in files]


def _read(path: Path, fmt: str) -> Table:
    """A table file read once per upload: kept in the session for the page's reruns (each edit of
    the mapping) and for the commit, which maps it without reading the file again."""
    tables = st.session_state.setdefault("_tables", {})
    if str(path) not in tables:
        try:
            tables[str(path)] = read_table(path, fmt=fmt)
        except ValueError as e:
            tables[str(path)] = e
    got = tables[str(path)]
    if isinstance(got, ValueError):
        raise got
    return got


def _forget_tables() -> None:
    for table in st.session_state.pop("_tables", {}).values():
        if isinstance(table, Table):
            table.close()


if not uploads:
    _forget_tables()
else:
    folder, paths = _save(uploads)
    skip = companions(paths)
    mappings, ok = {}, True
    for path in paths:
        if path in skip:
            st.caption(literal(f"{path.name}: optimum-benchmark config, read with its benchmark_report.json."))
            continue
        with st.container(border=True):
            try:
                fmt = detect(path)
            except ValueError as e:
                st.error(literal(e))
                ok = False
                continue
            st.markdown(f"**{literal(path.name)}** · detected format: `{fmt}`")
            if fmt in TABLES:
                try:
                    table = _read(path, fmt)
                    preview = table.preview(10)
                    proposed = propose_mapping(table)
                    types, rows = table.types, table.rows
                except ValueError as e:
                    st.error(literal(e))
                    ok = False
                    continue
                st.caption(literal(f"{rows:,} rows · detected types: " + ", ".join(f"{c} ({t})" for c, t in types.items())))
                st.dataframe(preview, hide_index=True, width="stretch")
                st.markdown("Column mapping: where each column goes (edit before committing). "
                            "Kind *canonical* maps onto the shared vocabulary; *metric* and *config* add a new field.")
                edited = st.data_editor(
                    pd.DataFrame([m.as_row() for m in proposed]), hide_index=True, width="stretch",
                    key=f"map-{path.name}", disabled=["source", "dtype"], height=36 * (len(proposed) + 1) + 4,
                    column_config={
                        "source": st.column_config.TextColumn("column in file"),
                        "target": st.column_config.TextColumn("becomes", help="canonical name or new field name: "
                                                              + ", ".join(CANONICAL_NAMES)),
                        "kind": st.column_config.SelectboxColumn("kind", options=list(KINDS), required=True),
                        "dtype": st.column_config.TextColumn("detected type"),
                        "unit": st.column_config.TextColumn("unit"),
                        "factor": st.column_config.NumberColumn("× factor", help="multiplies every value (unit conversion)", format="%g"),
                        "direction": st.column_config.SelectboxColumn("better", options=["min", "max"],
                                                                      help="for extra metrics: is lower or higher better?"),
                    },
                )
                mappings[str(path)] = mapping_from_records(edited)
            else:
                from engine.importers.detect import parse

                try:
                    parsed = parse(path, fmt=fmt)
                except ValueError as e:
                    st.error(literal(e))
                    ok = False
                    continue
                st.caption(literal(f"{counted(len(parsed.runs), 'run')}; extra fields: "
                                   + (", ".join(f.name for f in parsed.extra_fields) or "none")))
                st.dataframe(parsed.runs.drop(columns=["environment"], errors="ignore").head(10), hide_index=True,
                             width="stretch")
    if st.button("Commit import", type="primary", disabled=not ok):
        try:
            tables = {p: t for p, t in st.session_state.get("_tables", {}).items() if isinstance(t, Table)}
            files = read_files(paths, mappings=mappings, tables=tables)  # read first: the store is held only to write
            with open_store() as store:
                done = add_files(store, files)  # all files or none
            for d in done:
                (st.success if d.result.added else st.info)(literal(d.message()))
        except Exception as e:  # one sentence (a bad file, a busy store); nothing was written
            st.error(literal(f"Nothing imported: {e}"))

st.subheader("Attach quality scores")
st.caption("A table with a model column (optionally precision) and an accuracy column, or an "
           "lm-evaluation-harness results file: its scores are set on the matching runs.")
qfile = st.file_uploader("Quality table", key="quality_file")
c1, c2 = st.columns(2)
metric = c1.text_input("Metric column", value="accuracy")
task = c2.text_input("Task (for files that score several)", value="")
if qfile is not None and st.button("Attach quality"):
    folder = Path(tempfile.mkdtemp(prefix="paretoscope-quality-"))
    path = folder / Path(qfile.name).name
    path.write_bytes(qfile.getbuffer())
    try:
        table = quality.read_table(path, task=task or None)
        with open_store() as store:
            res = quality.attach(store, table, metric.strip(), name=qfile.name)
        st.success(literal(res.message() + (f" Recorded as batch {res.batch}: delete it below to undo." if res.batch else "")))
        if len(res.unmatched):
            st.warning("These rows matched no run:")
            st.dataframe(res.unmatched, hide_index=True)
    except Exception as e:  # one sentence; nothing was changed
        st.error(literal(e))

st.subheader("Import batches")


def _ask(import_id):
    """The batch id the person saw when they clicked travels with the click (never the list's first)."""
    st.session_state["_ask_delete"] = import_id


def _confirm(import_id):
    st.session_state.pop("_ask_delete", None)
    st.session_state["_delete_now"] = import_id


def _cancel():
    st.session_state.pop("_ask_delete", None)


doomed = st.session_state.pop("_delete_now", None)
if doomed:
    try:
        with open_store() as store:
            kind = store.batch_kind(doomed)
            n = store.delete_import(doomed)
        st.success(f"Undid quality batch {doomed}: the earlier values are back on {counted(n, 'run')}." if kind == "quality"
                   else f"Deleted batch {doomed} and its {counted(n, 'run')}.")
    except StoreError as e:
        st.error(literal(e))
with open_store() as store:
    batches = store.imports()
if batches.empty:
    st.caption("No imports yet.")
else:
    st.dataframe(batches[["import_id", "source", "kind", "imported_at", "rows_added"]], hide_index=True,
                 width="stretch")
    by_id = batches.set_index("import_id")
    col1, col2 = st.columns([3, 1], vertical_alignment="bottom")
    victim = col1.selectbox("Batch to delete", by_id.index.tolist(), index=None, placeholder="Choose a batch",
                            format_func=lambda i: f"{i} · {by_id.loc[i, 'kind']} · {by_id.loc[i, 'source']}",
                            key="victim")
    col2.button("Delete batch…", width="stretch", disabled=victim is None, on_click=_ask, args=(victim,),
                key="ask_delete")
    asked = st.session_state.get("_ask_delete")
    if asked and asked not in by_id.index:
        st.session_state.pop("_ask_delete")
        st.error(f"Batch {asked} is no longer in the store (deleted in another tab?); nothing was deleted.")
    elif asked:
        b = by_id.loc[asked]
        what = ("undo the quality scores it attached" if b["kind"] == "quality"
                else f"remove its {counted(int(b['rows_added']), 'run')}")
        with st.container(border=True):
            st.warning(literal(f"Delete batch {asked} ({b['kind']}, {b['source']}) and {what}? This cannot be undone."))
            c1, c2 = st.columns(2)
            c1.button(f"Yes, delete batch {asked}", type="primary", on_click=_confirm, args=(asked,), key="confirm_delete")
            c2.button("Cancel", on_click=_cancel, key="cancel_delete")

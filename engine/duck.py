"""Open DuckDB the one way the engine does: quietly.

DuckDB prints a progress bar to stdout when a query runs longer than two seconds (a busy machine
is enough). On stdout it corrupts `runs --format csv > file` and any output another program
reads line by line, so every engine connection turns it off.
"""
from __future__ import annotations

import duckdb


def connect(path: str = ":memory:", read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(path, read_only=read_only)
    try:
        quiet(con)
    except BaseException:
        con.close()
        raise
    return con


def quiet(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET enable_progress_bar = false")
    con.execute("SET enable_progress_bar_print = false")  # stays off even if a caller sets progress_bar_time

"""`python -m engine COMMAND ...`: the headless face of Paretoscope (see DESIGN.md).

Each command lives in engine/commands/<name>.py with ``add_parser(subparsers)`` and ``run(args)``.
Errors reach the person as one sentence on stderr and exit status 1.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

COMMANDS = ("init", "import_", "runs", "pareto", "profile", "recommend", "search", "compare")
# What a command's process is given before its modules load (a person's own setting is kept). An
# import calls no BLAS routine, yet numpy's OpenBLAS starts a thread per core as it loads, and each
# spins for 0.07-0.13 s of CPU waiting for work, on the cores DuckDB's CSV read wants.
COMMAND_ENV = {"import": {"OPENBLAS_NUM_THREADS": "1"}}
# Commands whose process ends as soon as they have: their store is closed and their output said, and
# what Python's own teardown would do next (collect and free every module's objects) takes an import
# of 1,000,000 runs 0.06-0.09 s (`make bench import`) and changes nothing on disk. Not a command that
# may start processes of its own (profile, search: Ray's workers are stopped by its atexit hook).
LEAVE_AT_ONCE = frozenset({"import"})


class CliError(Exception):
    """A mistake in what was asked, reported as one sentence."""


def _command(module: str) -> str:
    return module.rstrip("_")  # import_ (a keyword) is the import command


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` (the command line's first word) only that command's module is
    imported, the others named only, so `import` does not load what `profile` or `search` need."""
    parser = argparse.ArgumentParser(prog="python -m engine", description="Paretoscope: Pareto exploration of ML efficiency trade-offs.")
    sub = parser.add_subparsers(dest="command", required=True)
    known = command in {_command(m) for m in COMMANDS}
    for key, value in COMMAND_ENV.get(command or "", {}).items():
        os.environ.setdefault(key, value)
    for name in COMMANDS:
        if known and _command(name) != command:
            sub.add_parser(_command(name))  # listed in a usage line, never run
            continue
        try:
            module = importlib.import_module(f"engine.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"engine.commands.{name}":
                continue  # command not built yet
            raise
        p = module.add_parser(sub)
        p.set_defaults(handler=module.run)
    return parser


def leave(status: int, command: str | None) -> None:
    """End the process with ``status`` after ``command`` ran (``python -m engine``): its output
    flushed, then at once, past Python's teardown, where the command is in LEAVE_AT_ONCE."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away before the last lines: as main() says for it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        status = status or 141
    if command in LEAVE_AT_ONCE:
        os._exit(status)
    raise SystemExit(status)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except Exception as e:  # one clear sentence, no traceback, for every known error kind
        from engine.store import StoreError, default_db_path, explain

        damage = explain(e, Path(getattr(args, "db", None) or default_db_path()))
        if damage:  # the file broke under a query after it opened (a block cut off or garbled)
            print(f"error: {damage}", file=sys.stderr)
            return 1
        if isinstance(e, (CliError, StoreError, ValueError, OSError)):
            msg = (str(e).strip() or e.__class__.__name__).splitlines()[0]
            print(f"error: {msg}", file=sys.stderr)
            return 1
        if os.environ.get("PARETOSCOPE_DEBUG"):
            raise
        # a fault of Paretoscope, not of the input: still one line (PARETOSCOPE_DEBUG=1 shows the traceback)
        detail = (str(e).strip().splitlines() or [""])[0][:300]
        print(f"error: internal error ({e.__class__.__name__}: {detail}); "
              "run again with PARETOSCOPE_DEBUG=1 for the traceback.", file=sys.stderr)
        return 1

"""The workloads a sweep can be named by, listed once and without importing torch: the command
line's help, the pages' choices and the launcher's check read the names here, and
``workloads.get_workload`` imports the class. A new workload is its class plus one entry here."""
from __future__ import annotations

import importlib

BUILTIN = {
    "digits-mlp": "engine.profiler.workloads:DigitsMLP",
    "digits-cnn": "engine.profiler.workloads:DigitsCNN",
    "tiny-gpt": "engine.profiler.workloads:TinyGPTWorkload",
}
# Named with a prefix and an argument: hf:MODEL (a Hugging Face hub id or local folder).
PREFIXED = {"hf": "engine.profiler.hf:HFWorkload"}
NAMES = tuple(BUILTIN)


def load(path: str):
    """The class at 'package.module:Name' (only paths listed above reach here)."""
    mod, _, attr = path.partition(":")
    return getattr(importlib.import_module(mod), attr)


def described() -> str:
    """'digits-mlp, digits-cnn, tiny-gpt' for help texts and messages."""
    return ", ".join(NAMES)

"""A module no page may ever import: importing it leaves a marker file (tests/test_web_surface.py
names it wherever a browser can send a name, and checks the marker never appears)."""
import os
from pathlib import Path

Path(os.environ.get("PARETOSCOPE_PROBE") or Path(__file__).with_name("evil_probe.marker")).touch()


def factory():
    raise RuntimeError("never to be called")

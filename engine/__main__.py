import sys

from engine.cli import leave, main

leave(main(), sys.argv[1] if len(sys.argv) > 1 else None)

"""`python -m sandflow build ...` (see `sandflow.build`)."""

import sys

from .build import main

if len(sys.argv) < 2 or sys.argv[1] != "build":
    raise SystemExit("usage: python -m sandflow build MODULE.py -o OUT.wasm [-p DIR]...")
main(sys.argv[2:])

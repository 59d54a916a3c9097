"""`python -m sandflow build MODULE.py -o OUT.wasm`: a component from a
module of tasks, built with componentize-py (the version the SDK's
`requirements.txt` pins) against the WIT world shipped in the SDK.

The component's app module is written into a temporary directory: it
imports the task module (whose class statements register the task types)
and re-exports the SDK's `task` export. The search path is the task
module's directory, then each `--path`, then the SDK itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["main", "build"]

_APP = "sandflow_component_app"


def build(module: Path, output: Path, paths: list[Path], wit: Path, tool: str) -> None:
    """Builds `module` (a `.py` file) into the component `output`."""
    if module.suffix != ".py" or not module.is_file():
        raise SystemExit(f"sandflow build: {module} is not a Python file")
    sdk = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="sandflow-build-") as scratch:
        app = Path(scratch) / f"{_APP}.py"
        app.write_text(f"import {module.stem}  # noqa: F401 (registers its tasks)\n"
                       "from sandflow._component import Task  # noqa: F401 (the export)\n")
        search = [Path(scratch), *(p.resolve() for p in paths), module.resolve().parent, sdk]
        command = [tool, "-d", str(wit.resolve()), "-w", "task-component", "componentize"]
        for p in search:
            command += ["-p", str(p)]
        command += [_APP, "-o", str(output.resolve())]
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(command, env=env, cwd=scratch)
        if done.returncode != 0:
            raise SystemExit(f"sandflow build: componentize-py failed ({done.returncode})")


def _tool() -> str:
    beside = Path(sys.executable).parent / "componentize-py"
    found = str(beside) if beside.exists() else shutil.which("componentize-py")
    if found is None:
        raise SystemExit("sandflow build: componentize-py is not installed "
                         "(pip install -r guest-sdk-python/requirements.txt)")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandflow build", description=__doc__.split("\n\n")[0])
    parser.add_argument("module", type=Path, help="the Python file that defines the tasks")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the component to write")
    parser.add_argument("-p", "--path", type=Path, action="append", default=[],
                        help="a directory searched for imports before the module's own (repeatable)")
    parser.add_argument("--wit", type=Path, default=Path(__file__).resolve().parent / "wit",
                        help="the WIT directory (the one shipped with the SDK by default)")
    args = parser.parse_args(argv)
    build(args.module, args.output, args.path, args.wit, _tool())

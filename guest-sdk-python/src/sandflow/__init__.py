"""Write Sandflow tasks in Python.

A task type is a class with typed fields (its JSON input) and an
`execute(self, ctx)` method; what `execute` returns is its output::

    from sandflow import Context, Task

    class MoviesStats(Task, version="v1.0"):
        titles: list[str]

        def execute(self, ctx: Context) -> None:
            for title in self.titles:
                ctx.submit_subtask(PrintMovieStats(title))

Build a component from a module of tasks with `python -m sandflow build
tasks.py -o tasks.wasm` (componentize-py, pinned in the SDK's
`requirements.txt`), upload it with `sandflow module upload tasks.wasm`.
Unit-test tasks natively with `sandflow.testing.run`.
"""

from .cache import Cache
from .context import Backoff, Context, OutputOf
from .errors import InputError, PermanentError, SandflowError, TaskError
from .task import Handle, Task

__all__ = ["Backoff", "Cache", "Context", "Handle", "InputError", "OutputOf", "PermanentError", "SandflowError",
           "Task", "TaskError"]

"""Errors: what the host refused, what a task raises on purpose, and how an
uncaught exception becomes the attempt's error message."""

from __future__ import annotations

import traceback

__all__ = ["InputError", "PermanentError", "SandflowError", "TaskError", "describe", "is_permanent"]

#: How many of the innermost traceback frames an error message names.
FRAMES = 3


class SandflowError(Exception):
    """The host refused a call (an unknown task type, a limit, a secret not
    granted, ...); the message is the host's."""


class InputError(ValueError):
    """A task's JSON input does not fit its fields (the message names the
    field). Permanent: no retry makes the same input fit."""


class TaskError(Exception):
    """Raise it to fail the attempt with exactly this message (no type, no
    traceback)."""


class PermanentError(TaskError):
    """Raise it to fail the attempt with exactly this message and no retry,
    whatever retries the task has left: for failures no retry can fix."""


def is_permanent(error: BaseException) -> bool:
    """Whether `error` fails the task without a retry."""
    return isinstance(error, (PermanentError, InputError))


def describe(error: BaseException) -> str:
    """The attempt's error for an exception that left `execute`: the
    message alone for `TaskError`, `SandflowError` and `InputError`; otherwise its type
    and message (`KeyError('Title')`), then the innermost frames of its
    traceback, one line each."""
    if isinstance(error, (TaskError, SandflowError, InputError)):
        return str(error)
    frames = traceback.extract_tb(error.__traceback__)[-FRAMES:]
    lines = [repr(error)]
    lines += [f"  at {f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in reversed(frames)]
    return "\n".join(lines)

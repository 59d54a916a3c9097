"""One execution, the same inside a component and in a unit test: find the
task type, read its input, run it, and turn what it returns or raises into
an outcome."""

from __future__ import annotations

import dataclasses
from typing import Any

from .context import Context, HostCalls, OutputOf
from .errors import describe, is_permanent
from .task import decode, encode, lookup

__all__ = ["Outcome", "execute"]


@dataclasses.dataclass
class Outcome:
    """How an execution ended: `error` is set when it failed; otherwise
    `output` is None (no output), bytes, or `OutputOf`."""

    output: bytes | OutputOf | None = None
    error: str | None = None
    #: The failure is not retried (`PermanentError`, `InputError`).
    permanent: bool = False


def execute(name: str, version: str, input: str, host: HostCalls, cache_calls: Any) -> Outcome:
    """Runs task `name@version` on `input`."""
    try:
        task = decode(lookup(name, version), input)
        result = task.execute(Context(host, cache_calls))
        return Outcome(output=_output(result))
    except Exception as error:  # every failure of the task is its error
        return Outcome(error=describe(error), permanent=is_permanent(error))


def _output(result: Any) -> bytes | OutputOf | None:
    if result is None or isinstance(result, OutputOf):
        return result
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result)
    return encode(result).encode()

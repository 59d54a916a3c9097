"""Unit-test tasks natively, without a host: `run(task)` executes it with a
host that records what it does.

    result = run(MoviesStats(["The Matrix"]))
    assert result.error is None
    assert result.subtasks[0].task == PrintMovieStats("The Matrix")

Give `outputs` (by dependency handle), `secrets` and a `cache` dict to
stand for what the real host would hold; the cache dict is updated in
place.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from . import runtime
from .context import Backoff, OutputOf
from .errors import SandflowError
from .task import Task, decode, encode, lookup

__all__ = ["Recorded", "Submitted", "run"]


@dataclasses.dataclass
class Submitted:
    """A subtask the task submitted."""

    task: Task
    depends_on: list[int]
    max_retries: int
    cluster: str | None
    optional: bool = False
    backoff: Backoff | None = None


@dataclasses.dataclass
class Recorded:
    """What one execution did."""

    output: Any = None
    output_of_subtask: int | None = None
    error: str | None = None
    #: The failure would not be retried (`PermanentError`, `InputError`).
    permanent: bool = False
    subtasks: list[Submitted] = dataclasses.field(default_factory=list)
    display: str | None = None
    logs: list[tuple[str, str, dict[str, str]]] = dataclasses.field(default_factory=list)
    spans: list[tuple[str, dict[str, str]]] = dataclasses.field(default_factory=list)
    progress: dict[str, list[int]] = dataclasses.field(default_factory=dict)


class _Recorder:
    """`HostCalls` that record into a `Recorded`."""

    def __init__(self, record: Recorded, outputs: dict[int, Any], secrets: dict[str, str], attempt: int):
        self.record, self.outputs, self.secrets, self.attempt = record, outputs, secrets, attempt

    def submit(self, name, version, input, depends_on, max_retries, cluster, optional, backoff):
        handle = len(self.record.subtasks)
        if any(d >= handle for d in depends_on):
            raise SandflowError(f"subtask {handle} depends on a handle not issued yet: {depends_on}")
        task = decode(lookup(name, version), input)
        self.record.subtasks.append(Submitted(task, list(depends_on), max_retries, cluster, optional, backoff))
        return handle

    def set_display(self, name):
        self.record.display = name

    def log(self, level, message, fields):
        self.record.logs.append((level, message, dict(fields)))

    def span_enter(self, name, attributes):
        self.record.spans.append((name, dict(attributes)))
        return len(self.record.spans)

    def span_exit(self, span):
        pass

    def span_set(self, span, attributes):
        self.record.spans[span - 1][1].update(dict(attributes))

    def progress(self, label, add_total, add_done):
        counts = self.record.progress.setdefault(label, [0, 0])
        counts[0] += add_total
        counts[1] += add_done

    def current(self):
        return "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000001", self.attempt

    def dependencies(self):
        return sorted(self.outputs)

    def output_of(self, handle):
        if handle not in self.outputs:
            raise SandflowError(f"handle {handle} is not one of this task's dependencies")
        value = self.outputs[handle]
        return None if value is None else (value if isinstance(value, bytes) else encode(value).encode())

    def secret(self, name):
        if name not in self.secrets:
            raise SandflowError(f"secret {name!r} is not granted to this task")
        return self.secrets[name]


class _MemoryCache:
    """The cache calls over a dict."""

    def __init__(self, values: dict[str, bytes]):
        self.values = values

    def put(self, key):
        return _MemoryWriter(self.values, key)

    def get(self, key):
        return None if key not in self.values else _MemoryReader(self.values[key])

    def contains(self, key):
        return key in self.values

    def delete(self, key):
        return self.values.pop(key, None) is not None

    def list(self, prefix, start_after):
        keys = sorted(k for k in self.values if k.startswith(prefix) and (start_after is None or k > start_after))
        return keys[:1000]


class _MemoryWriter:
    def __init__(self, values, key):
        self.values, self.key, self.parts = values, key, []

    def write(self, chunk):
        self.parts.append(chunk)

    def finish(self):
        self.values[self.key] = b"".join(self.parts)


class _MemoryReader:
    def __init__(self, value):
        self.value, self.at = value, 0

    def size(self):
        return len(self.value)

    def read(self, n):
        chunk = self.value[self.at:self.at + n]
        self.at += len(chunk)
        return chunk


def run(task: Task, *, outputs: dict[int, Any] | None = None, secrets: dict[str, str] | None = None,
        cache: dict[str, bytes] | None = None, attempt: int = 1) -> Recorded:
    """Executes `task` as the host would (its input through JSON) and
    answers what it did."""
    record = Recorded()
    host = _Recorder(record, outputs or {}, secrets or {}, attempt)
    cls = type(task)
    outcome = runtime.execute(cls.__sandflow_name__, cls.__sandflow_version__, encode(task), host,
                              _MemoryCache(cache if cache is not None else {}))
    record.error, record.permanent = outcome.error, outcome.permanent
    if isinstance(outcome.output, OutputOf):
        record.output_of_subtask = int(outcome.output.handle)
    elif outcome.output is not None:
        try:
            record.output = json.loads(outcome.output)
        except ValueError:
            record.output = outcome.output
    return record

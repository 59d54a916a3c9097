"""What a running task can do: `Context`, handed to `Task.execute`.

Every call goes to a *host*: inside a component, the Sandflow host through
the WIT imports (`sandflow._component`); in a unit test, the recorder of
`sandflow.testing`. Both have the methods `HostCalls` lists.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterable, Protocol

from .cache import Cache
from .errors import SandflowError
from .task import Handle, Task, encode

__all__ = ["Context", "HostCalls", "OutputOf"]

_LEVELS = ("trace", "debug", "info", "warn", "error")


class HostCalls(Protocol):
    """The host functions of the WIT world, in plain Python types. A call
    the host refuses raises `SandflowError` with its message."""

    def submit(self, name: str, version: str, input: str, depends_on: list[int], max_retries: int,
               cluster: str | None, optional: bool, backoff: Backoff | None) -> int: ...
    def set_display(self, name: str) -> None: ...
    def log(self, level: str, message: str, fields: list[tuple[str, str]]) -> None: ...
    def span_enter(self, name: str, attributes: list[tuple[str, str]]) -> int: ...
    def span_exit(self, span: int) -> None: ...
    def span_set(self, span: int, attributes: list[tuple[str, str]]) -> None: ...
    def progress(self, label: str, add_total: int, add_done: int) -> None: ...
    def current(self) -> tuple[str, str, int]: ...
    def dependencies(self) -> list[int]: ...
    def output_of(self, handle: int) -> bytes | None: ...
    def secret(self, name: str) -> str: ...


@dataclasses.dataclass(frozen=True)
class Backoff:
    """The wait before each retry of a failed attempt: `initial` seconds
    before the first, each next one `factor` times the last, none over
    `max` seconds (one day); with `jitter`, each is drawn between half and
    all of it. The host refuses waits over a day and factors outside 1 to
    100."""

    initial: float
    factor: float = 2.0
    max: float = 86_400.0
    jitter: bool = False

    def millis(self) -> tuple[int, float, int, bool]:
        """As the host takes it: (initial ms, factor, max ms, jitter)."""
        return round(self.initial * 1000), float(self.factor), round(self.max * 1000), bool(self.jitter)


class OutputOf:
    """Returned from `execute`: the task's output is that of one of its
    subtasks (see `Context.output_from`)."""

    def __init__(self, handle: Handle):
        self.handle = handle


class Context:
    """The running task's view of the host."""

    def __init__(self, host: HostCalls, cache_calls: Any):
        self._host = host
        self.logger = Logger(host)
        self.tracer = Tracer(host)
        self.current_task = CurrentTask(host)
        self.cache = Cache(cache_calls)

    def submit_subtask(self, task: Task, *, depends_on: Iterable[Handle] = (), max_retries: int = 0,
                       cluster: str | None = None, optional: bool = False,
                       backoff: Backoff | None = None) -> Handle:
        """Submits `task` to run once this task has succeeded, after every
        subtask in `depends_on` (handles this execution got) is complete.
        An `optional` subtask that fails for good (it or any task of its
        subtree) does not fail the job: what is still queued in its subtree
        is skipped, and the tasks that depend on it run. A `backoff` waits
        before each of the `max_retries`."""
        if not isinstance(task, Task):
            raise TypeError(f"submit_subtask takes a Task, not {type(task).__name__}")
        handles = [int(h) for h in depends_on]
        cls = type(task)
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"backoff takes a Backoff, not {type(backoff).__name__}")
        handle = self._host.submit(cls.__sandflow_name__, cls.__sandflow_version__, encode(task), handles,
                                   max_retries, cluster, bool(optional), backoff)
        return Handle(handle)

    def set_display(self, name: str) -> None:
        """Sets this task's display name (shown in task lists and diagrams)."""
        self.current_task.display = name

    def progress(self, label: str) -> Progress:
        """The job's progress counter `label`."""
        return Progress(self._host, label)

    @property
    def job_id(self) -> str:
        return self._host.current()[0]

    @property
    def task_id(self) -> str:
        return self._host.current()[1]

    @property
    def attempt(self) -> int:
        return self._host.current()[2]

    def dependencies(self) -> list[Handle]:
        """The handles of the tasks this one depends on, as its parent
        submitted them, in the order of its `depends_on`."""
        return [Handle(h) for h in self._host.dependencies()]

    def output_bytes_of(self, handle: Handle) -> bytes | None:
        """The raw output of the dependency `handle`; None if it left none."""
        return self._host.output_of(int(handle))

    def output_of(self, handle: Handle) -> Any:
        """The output of the dependency `handle`, read from JSON; None if
        it left none."""
        raw = self.output_bytes_of(handle)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise SandflowError(f"the output of dependency {int(handle)} is not JSON: {e}") from None

    def dependency_outputs(self) -> list[Any]:
        """The outputs of all of this task's dependencies, in order."""
        return [self.output_of(h) for h in self.dependencies()]

    def output_from(self, handle: Handle) -> OutputOf:
        """Return this from `execute` to make this task's output that of
        its subtask `handle`."""
        return OutputOf(Handle(handle))

    def secret(self, name: str) -> str:
        """The host's secret `name`, if this task's module was granted it."""
        return self._host.secret(name)


class CurrentTask:
    """The running task; `display` sets its display name."""

    def __init__(self, host: HostCalls):
        self._host = host
        self._display: str | None = None

    @property
    def display(self) -> str | None:
        return self._display

    @display.setter
    def display(self, name: str) -> None:
        self._display = str(name)
        self._host.set_display(self._display)


class Logger:
    """Log records with fields: `ctx.logger.info("fetched", title=t)`.
    Field values are written with `str`."""

    def __init__(self, host: HostCalls):
        self._host = host

    def log(self, level: str, message: str, **fields: Any) -> None:
        if level not in _LEVELS:
            raise ValueError(f"log level {level!r} is not one of {', '.join(_LEVELS)}")
        self._host.log(level, str(message), _pairs(fields))

    def trace(self, message: str, **fields: Any) -> None:
        self.log("trace", message, **fields)

    def debug(self, message: str, **fields: Any) -> None:
        self.log("debug", message, **fields)

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def warning(self, message: str, **fields: Any) -> None:
        self.log("warn", message, **fields)

    warn = warning

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)


class Tracer:
    """Trace spans: `with ctx.tracer.span("fetch", attributes={"movie.title":
    t}) as span:`. Spans nest; attributes are given when the span opens
    (keyword arguments are attributes too), or later while it is open with
    `span.set_attribute(key, value)`."""

    def __init__(self, host: HostCalls):
        self._host = host

    def span(self, name: str, attributes: dict[str, Any] | None = None, **more: Any) -> Span:
        return Span(self._host, name, _pairs({**(attributes or {}), **more}))


class Span:
    """An open span: closes when its `with` block ends."""

    def __init__(self, host: HostCalls, name: str, attributes: list[tuple[str, str]]):
        self._host, self._name, self._attributes = host, name, attributes
        self._id: int | None = None

    def __enter__(self) -> Span:
        self._id = self._host.span_enter(self._name, self._attributes)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._id is not None:
            self._host.span_exit(self._id)
            self._id = None

    def set_attribute(self, key: str, value: Any) -> Span:
        """Gives the open span an attribute learned after it opened; a key
        it has gets the new value. Ignored once the span closed."""
        return self.set_attributes({key: value})

    def set_attributes(self, attributes: dict[str, Any]) -> Span:
        """`set_attribute` for several at once."""
        if self._id is not None:
            self._host.span_set(self._id, _pairs(attributes))
        return self


class Progress:
    """A job's progress counter: `add(n)` more items expected, `done(n)`
    items finished. Counts once this attempt is computed."""

    def __init__(self, host: HostCalls, label: str):
        self._host, self.label = host, label

    def add(self, n: int = 1) -> Progress:
        self._host.progress(self.label, n, 0)
        return self

    def done(self, n: int = 1) -> Progress:
        self._host.progress(self.label, 0, n)
        return self


def _pairs(fields: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), str(v)) for k, v in fields.items()]

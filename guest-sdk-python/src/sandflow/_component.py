"""The component's side of the WIT world: the `task` export, and the host
calls through the bindings componentize-py generates (`wit_world`). Only
imported inside a component (the build's app module re-exports `Task`)."""

from __future__ import annotations

from typing import Any

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import cache, host, types

from . import runtime, task
from .context import OutputOf
from .errors import SandflowError

__all__ = ["Task"]

_LEVELS = {
    "trace": host.Level.TRACE,
    "debug": host.Level.DEBUG,
    "info": host.Level.INFO,
    "warn": host.Level.WARN,
    "error": host.Level.ERROR,
}


def _call(function: Any, *args: Any) -> Any:
    """Calls a host function, its refusal raised as `SandflowError`."""
    try:
        return function(*args)
    except Err as refused:
        raise SandflowError(str(refused.value)) from None


def _fields(pairs: list[tuple[str, str]]) -> list[types.Field]:
    return [types.Field(k, v) for k, v in pairs]


class ComponentHost:
    """`HostCalls` through the WIT imports."""

    def submit(self, name, version, input, depends_on, max_retries, cluster, optional, backoff):
        wait = None if backoff is None else types.Backoff(*backoff.millis())
        spec = host.Subtask(types.TaskType(name, version), input, depends_on, max_retries, cluster, optional, wait)
        return _call(host.submit_subtask, spec)

    def set_display(self, name):
        host.set_display(name)

    def log(self, level, message, fields):
        host.log(_LEVELS[level], message, _fields(fields))

    def span_enter(self, name, attributes):
        return host.span_enter(name, _fields(attributes))

    def span_exit(self, span):
        host.span_exit(span)

    def span_set(self, span, attributes):
        host.span_set(span, _fields(attributes))

    def progress(self, label, add_total, add_done):
        host.progress(label, add_total, add_done)

    def current(self):
        now = host.current()
        return now.job_id, now.task_id, now.attempt

    def dependencies(self):
        return host.dependencies()

    def output_of(self, handle):
        return _call(host.output_of, handle)

    def secret(self, name):
        return _call(host.secret, name)


class _Writer:
    def __init__(self, inner):
        self._inner = inner

    def write(self, chunk):
        _call(self._inner.write, chunk)

    def finish(self):
        _call(cache.Writer.finish, self._inner)


class _Reader:
    def __init__(self, inner):
        self._inner = inner

    def size(self):
        return self._inner.size()

    def read(self, n):
        return _call(self._inner.read, n)


class ComponentCache:
    """The cache calls through the WIT imports."""

    def put(self, key):
        return _Writer(_call(cache.put, key))

    def get(self, key):
        inner = _call(cache.get, key)
        return None if inner is None else _Reader(inner)

    def contains(self, key):
        return _call(cache.contains, key)

    def delete(self, key):
        return _call(cache.delete, key)

    def list(self, prefix, start_after):
        return _call(cache.list, prefix, start_after)


class Task(exports.Task):
    """The `task` export: the registered task types, and execution."""

    def task_types(self) -> list[types.TaskType]:
        return [types.TaskType(name, version) for name, version in task.registered()]

    def execute(self, task_type: types.TaskType, input: str) -> types.Output:
        outcome = runtime.execute(task_type.name, task_type.version, input, ComponentHost(), ComponentCache())
        if outcome.error is not None:
            if outcome.permanent:
                host.mark_permanent()
            raise Err(outcome.error)
        if outcome.output is None:
            return types.Output_None_()
        if isinstance(outcome.output, OutputOf):
            return types.Output_OfSubtask(int(outcome.output.handle))
        return types.Output_Bytes(outcome.output)

"""Task types: classes whose typed fields are the task's JSON input.

A subclass of `Task` is a dataclass and is registered under its name (the
class name unless `name=` says otherwise) and version (`version="v1.0"`,
`v0.0` unless given) when its class statement runs::

    class PrintMovieStats(Task, version="v1.1"):
        title: str

        def execute(self, ctx: Context) -> None:
            ...

Its input is read from JSON by the field annotations (`str`, `int`,
`float`, `bool`, `list[T]`, `dict[str, T]`, `T | None`, nested dataclasses,
`Handle`), with a readable error naming the field that does not fit; fields
with defaults may be left out, unknown keys are ignored.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from typing import Any

from .errors import InputError

__all__ = ["Task", "Handle", "InputError", "registered", "lookup", "encode", "decode"]

_VERSION = re.compile(r"^v(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$")

# Every task type of the component, by (name, version), in definition order.
_REGISTRY: dict[tuple[str, str], type[Task]] = {}


class Handle(int):
    """A subtask submitted by this execution, as `Context.submit_subtask`
    answers it. Handles are numbers in JSON, so a parent can pass them in a
    dependent's input (for `Context.output_of`)."""

    def __repr__(self) -> str:
        return f"Handle({int(self)})"


class Task:
    """The base of every task type. Subclasses implement `execute(self,
    ctx)`; what it returns is the task's output (JSON; `None` for none)."""

    __sandflow_name__: typing.ClassVar[str]
    __sandflow_version__: typing.ClassVar[str]

    def __init_subclass__(cls, *, name: str | None = None, version: str = "v0.0", **kwargs: Any):
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(cls)
        cls.__sandflow_name__ = _check_name(name if name is not None else cls.__name__)
        cls.__sandflow_version__ = _check_version(cls.__sandflow_name__, version)
        key = (cls.__sandflow_name__, cls.__sandflow_version__)
        if key in _REGISTRY:
            raise TypeError(f"task type {key[0]}@{key[1]} is defined twice")
        _REGISTRY[key] = cls

    def execute(self, ctx: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement execute")


def _check_name(name: str) -> str:
    if not 1 <= len(name.encode()) <= 256:
        raise TypeError(f"a task type's name has 1 to 256 bytes, not {len(name.encode())}")
    return name


def _check_version(name: str, version: str) -> str:
    if not _VERSION.match(version):
        raise TypeError(f"task type {name}: version {version!r} is not vMAJOR.MINOR (for example v1.0)")
    return version


def registered() -> list[tuple[str, str]]:
    """The (name, version) of every task type defined so far."""
    return list(_REGISTRY)


def lookup(name: str, version: str) -> type[Task]:
    """The task type registered as `name@version`."""
    try:
        return _REGISTRY[(name, version)]
    except KeyError:
        raise LookupError(f"this component implements no task type {name}@{version}") from None


def encode(value: Any) -> str:
    """`value` as JSON: dataclasses (tasks included) as objects."""
    return json.dumps(value, default=_plain, separators=(",", ":"), allow_nan=False)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def decode(cls: type[Task], text: str) -> Task:
    """A task of type `cls` from its JSON input."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(f"{cls.__name__}: the input is not JSON: {e}") from None
    return _convert(data, cls, cls.__name__)


def _from_object(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected an object, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        if field.name in data:
            values[field.name] = _convert(data[field.name], hints[field.name], f"{where}.{field.name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise InputError(f"{where}: missing field {field.name!r}")
    return cls(**values)


def _convert(data: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return data
    if origin in (typing.Union, types.UnionType):
        return _union(data, args, where)
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple, set, frozenset):
        return _sequence(data, origin or hint, args, where)
    if origin is dict or hint is dict:
        if not isinstance(data, dict):
            raise InputError(f"{where}: expected an object, got {_kind(data)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(v, item, f"{where}[{k!r}]") for k, v in data.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _from_object(hint, data, where)
    return _scalar(data, hint, where)


def _union(data: Any, args: tuple, where: str) -> Any:
    if data is None and type(None) in args:
        return None
    errors = []
    for arm in (a for a in args if a is not type(None)):
        try:
            return _convert(data, arm, where)
        except InputError as e:
            errors.append(str(e))
    raise InputError(errors[0] if len(errors) == 1 else f"{where}: {_kind(data)} fits none of {args}")


def _sequence(data: Any, kind: type, args: tuple, where: str) -> Any:
    if not isinstance(data, list):
        raise InputError(f"{where}: expected a list, got {_kind(data)}")
    if kind is tuple and args and args[-1] is not Ellipsis:
        if len(args) != len(data):
            raise InputError(f"{where}: expected {len(args)} items, got {len(data)}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(data, args, strict=True)))
    item = args[0] if args else Any
    return kind(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(data))


def _scalar(data: Any, hint: Any, where: str) -> Any:
    if hint is type(None):
        if data is None:
            return None
    elif hint is float:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return float(data)
    elif hint in (int, Handle):
        if isinstance(data, int) and not isinstance(data, bool):
            return hint(data)
    elif hint in (str, bool):
        if isinstance(data, hint):
            return data
    else:
        raise InputError(f"{where}: fields of type {hint!r} cannot be read from JSON")
    raise InputError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {_kind(data)}")


def _kind(data: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(data), "a number"
    )

"""The job's cache: byte values under string keys, shared by the tasks of
one job (`ctx.cache`). Values move in chunks of at most 1 MiB, so a large
one is never copied whole; `writer`/`reader` stream, `put`/`get` take and
give whole values. A value is stored when its writer finishes, and stays
stored even if the attempt that wrote it then fails."""

from __future__ import annotations

import json
from typing import Any, Iterator

__all__ = ["Cache", "CHUNK_BYTES"]

#: The most bytes one host call moves.
CHUNK_BYTES = 1 << 20


class Cache:
    """`ctx.cache`. Keys are 1 to 1024 bytes of text in `/`-separated
    segments; a group is a key prefix such as `pages/`."""

    def __init__(self, calls: Any):
        self._calls = calls

    def put(self, key: str, value: bytes | str) -> None:
        """Stores `value` (text is written as UTF-8) under `key`."""
        data = value.encode() if isinstance(value, str) else bytes(value)
        with self.writer(key) as w:
            w.write(data)

    def get(self, key: str) -> bytes | None:
        """The value of `key`; None when there is none."""
        reader = self.reader(key)
        return None if reader is None else reader.read()

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value, separators=(",", ":")))

    def get_json(self, key: str) -> Any:
        raw = self.get(key)
        return None if raw is None else json.loads(raw)

    def contains(self, key: str) -> bool:
        return self._calls.contains(key)

    def delete(self, key: str) -> bool:
        """Deletes `key`'s value; whether it had one."""
        return self._calls.delete(key)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key that starts with `prefix`, in byte order (fetched a
        page of 1000 at a time)."""
        after = None
        while True:
            page = self._calls.list(prefix, after)
            yield from page
            if len(page) < 1000:
                return
            after = page[-1]

    def writer(self, key: str) -> Writer:
        """A writer for `key`: `with ctx.cache.writer(k) as w: w.write(b)`.
        The value is stored when the block ends without an exception."""
        return Writer(self._calls.put(key))

    def reader(self, key: str) -> Reader | None:
        """A reader of `key`'s value; None when there is none."""
        inner = self._calls.get(key)
        return None if inner is None else Reader(inner)


class Writer:
    """A value being written; nothing is visible until `finish`."""

    def __init__(self, inner: Any):
        self._inner = inner

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), CHUNK_BYTES):
            self._inner.write(bytes(view[start:start + CHUNK_BYTES]))

    def finish(self) -> None:
        self._inner.finish()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.finish()


class Reader:
    """A value being read from its start."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.size: int = inner.size()

    def read(self, n: int = -1) -> bytes:
        """At most `n` bytes (all that is left when negative); empty at the end."""
        parts, want = [], self.size if n < 0 else n
        while want > 0:
            chunk = self._inner.read(min(want, CHUNK_BYTES))
            if not chunk:
                break
            parts.append(chunk)
            want -= len(chunk)
        return b"".join(parts)

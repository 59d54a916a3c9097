"""Unit tests of the SDK, run natively (`python3 -m unittest discover -s
guest-sdk-python/tests` with `guest-sdk-python/src` on `PYTHONPATH`)."""

import unittest
from typing import Optional

from sandflow import Backoff, Context, Handle, PermanentError, Task, TaskError
from sandflow.task import InputError, decode, lookup, registered
from sandflow.testing import run


class Point(Task, name="SdkPoint", version="v2.3"):
    x: int
    y: float = 0.0
    tags: list[str] = ()
    label: Optional[str] = None

    def execute(self, ctx: Context):
        return {"sum": self.x + self.y, "tags": list(self.tags)}


class Square(Task):
    n: int

    def execute(self, ctx: Context):
        ctx.progress("squares").add(1).done(1)
        with ctx.tracer.span("square", n=self.n) as span:
            span.set_attribute("square", self.n * self.n).set_attributes({"n": "again"})
        return self.n * self.n


class Sum(Task):
    parts: list[Handle]

    def execute(self, ctx: Context):
        return sum(ctx.output_of(h) for h in self.parts)


class Fan(Task):
    n: int

    def execute(self, ctx: Context):
        parts = [ctx.submit_subtask(Square(i), max_retries=2) for i in range(self.n)]
        total = ctx.submit_subtask(Sum(parts), depends_on=parts)
        return ctx.output_from(total)


class Broken(Task):
    def execute(self, ctx: Context):
        return {}["Title"]


class Refused(Task):
    def execute(self, ctx: Context):
        raise TaskError("the data source refused the request")


class Careful(Task):
    def execute(self, ctx: Context):
        ctx.submit_subtask(Square(1), optional=True, max_retries=3, backoff=Backoff(0.25, max=4, jitter=True))
        raise PermanentError("the account is closed")


class Cached(Task):
    def execute(self, ctx: Context):
        ctx.cache.put("pages/a", b"x" * (3 << 20))
        ctx.cache.put_json("pages/b", {"ok": True})
        big = ctx.cache.get("pages/a")
        return {"size": len(big), "keys": list(ctx.cache.keys("pages/")), "b": ctx.cache.get_json("pages/b"),
                "secret": ctx.secret("token")}


class SdkTest(unittest.TestCase):
    def test_names_versions_and_registration(self):
        self.assertIn(("SdkPoint", "v2.3"), registered())
        self.assertIn(("Square", "v0.0"), registered())
        self.assertIs(lookup("SdkPoint", "v2.3"), Point)
        with self.assertRaisesRegex(TypeError, "not vMAJOR.MINOR"):
            type("Bad", (Task,), {}, version="1.0")
        with self.assertRaisesRegex(TypeError, "defined twice"):
            type("Square", (Task,), {"__annotations__": {}})

    def test_input_is_read_by_the_fields(self):
        self.assertEqual(decode(Point, '{"x": 1, "tags": ["a"], "extra": 5}'), Point(1, 0.0, ["a"]))
        for text, message in [
            ('{"y": 1}', "missing field 'x'"),
            ('{"x": "1"}', r"Point.x: expected int, got a string"),
            ('{"x": true}', "expected int, got a boolean"),
            ('{"x": 1, "tags": [1]}', r"Point.tags\[0\]: expected str"),
            ("[1]", "expected an object, got a list"),
            ("{", "not JSON"),
        ]:
            with self.assertRaisesRegex(InputError, message):
                decode(Point, text)

    def test_outputs_dependencies_and_output_from(self):
        fan = run(Fan(3))
        self.assertIsNone(fan.error)
        self.assertEqual([s.task for s in fan.subtasks[:3]], [Square(0), Square(1), Square(2)])
        self.assertEqual(fan.subtasks[3].depends_on, [0, 1, 2])
        self.assertEqual(fan.subtasks[0].max_retries, 2)
        self.assertEqual(fan.output_of_subtask, 3)
        self.assertEqual(run(Sum([Handle(0), Handle(1)]), outputs={0: 4, 1: 9}).output, 13)
        self.assertEqual(run(Square(5)).progress, {"squares": [1, 1]})
        self.assertEqual(run(Square(5)).spans, [("square", {"n": "again", "square": "25"})])
        self.assertEqual(run(Point(2, 0.5, ["t"])).output, {"sum": 2.5, "tags": ["t"]})

    def test_an_uncaught_exception_names_its_type_message_and_frames(self):
        error = run(Broken()).error
        lines = error.splitlines()
        self.assertEqual(lines[0], "KeyError('Title')")
        self.assertRegex(lines[1], r"^  at test_sdk.py:\d+ in execute$")
        self.assertEqual(run(Refused()).error, "the data source refused the request")
        self.assertEqual(run(Sum([Handle(0)])).error, "handle 0 is not one of this task's dependencies")

    def test_optional_subtasks_backoffs_and_permanent_errors_are_recorded(self):
        done = run(Careful())
        self.assertEqual((done.error, done.permanent), ("the account is closed", True))
        sub = done.subtasks[0]
        self.assertEqual((sub.optional, sub.max_retries, sub.backoff.millis()), (True, 3, (250, 2.0, 4000, True)))
        self.assertFalse(run(Refused()).permanent, "a TaskError is retried")

    def test_the_cache_moves_large_values_in_chunks(self):
        store = {}
        done = run(Cached(), cache=store, secrets={"token": "s3cr3t"})
        self.assertIsNone(done.error)
        self.assertEqual(done.output, {"size": 3 << 20, "keys": ["pages/a", "pages/b"], "b": {"ok": True},
                                       "secret": "s3cr3t"})
        self.assertEqual(len(store["pages/a"]), 3 << 20)
        self.assertIn("secret 'token' is not granted", run(Cached()).error)


if __name__ == "__main__":
    unittest.main()

// The example's unit tests, natively: `node --test examples/js-fanout`
// (with the SDK's packages installed; see guest-sdk-js/README.md).

import assert from "node:assert/strict";
import { test } from "node:test";

import { run } from "sandflow/testing";

import { Fanout, Measure, Report } from "./fanout.js";

test("the fan-out submits one measure per item and a report after all of them", () => {
  const result = run(new Fanout({ items: ["alpha", "be"] }));
  assert.equal(result.error, null);
  assert.deepEqual(
    result.subtasks.map((s) => [s.task, s.dependsOn]),
    [
      [new Measure({ item: "alpha" }), []],
      [new Measure({ item: "be" }), []],
      [new Report({ measures: [0, 1] }), [0, 1]],
    ],
  );
  assert.equal(result.outputOfSubtask, 2);
  assert.equal(run(new Fanout({ items: [] })).error, "nothing to measure: items is empty");
});

test("a measure counts letters and vowels; the report sums them", () => {
  assert.deepEqual(run(new Measure({ item: "alpha" })).output, { item: "alpha", length: 5, vowels: 2 });
  const outputs = { 0: { item: "alpha", length: 5, vowels: 2 }, 1: { item: "be", length: 2, vowels: 1 } };
  assert.deepEqual(run(new Report({ measures: [0, 1] }), { outputs }).output, { items: 2, letters: 7, longest: "alpha" });
});

// The SDK's unit tests, natively under `node --test` (no host): task types
// and their input, the context through `sandflow/testing`, error messages,
// the source map decoder, and the committed WIT declarations.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { InputError, PermanentError, Registry, Task, TaskError, decode, describe, taskType } from "../src/index.js";
import { decode as decodeMappings } from "../src/sourcemap.js";
import { generate } from "../src/types.js";
import { run } from "../src/testing.js";

const SDK = join(dirname(fileURLToPath(import.meta.url)), "..");

class Leaf extends Task {
  static version = "v1.2";
  static fields = { title: "string", year: "integer?", tags: ["string"], where: { city: "string" } };

  execute(ctx) {
    ctx.logger.info("leaf", { title: this.title, year: this.year });
    return { title: this.title, city: this.where.city };
  }
}

class Root extends Task {
  static taskName = "the-root";
  static fields = { titles: ["string"] };

  execute(ctx) {
    ctx.setDisplay(`${this.titles.length} titles`);
    const leaves = this.titles.map((title) => ctx.submitSubtask(new Leaf({ title, tags: [], where: { city: "Oslo" } })));
    const progress = ctx.progress("titles").add(this.titles.length);
    ctx.tracer.span("plan", { count: this.titles.length }, (span) => {
      progress.done(1);
      span.setAttributes({ done: 1, count: 2 });
    });
    const last = ctx.submitSubtask(new Leaf({ title: "last", tags: ["x"], where: { city: "Rome" } }), {
      dependsOn: leaves,
      maxRetries: 3,
      cluster: "gpu",
    });
    return ctx.outputFrom(last);
  }
}

class Reader extends Task {
  execute(ctx) {
    const secret = ctx.secret("API_KEY");
    ctx.cache.put("big/value", new Uint8Array(3 << 20).fill(7));
    ctx.cache.putJson("small", { secret: secret.length });
    const keys = [...ctx.cache.keys("")];
    return { deps: ctx.dependencyOutputs(), keys, size: ctx.cache.get("big/value").length, small: ctx.cache.getJson("small") };
  }
}

class Thrower extends Task {
  static fields = { how: "string" };

  execute(ctx) {
    if (this.how === "task") throw new TaskError("exactly this");
    if (this.how === "host") ctx.secret("missing");
    if (this.how === "string") throw "a bare string";
    const movie = {};
    return movie.details.title;
  }
}

test("a task class names its type; versions are checked", () => {
  assert.deepEqual(taskType(Leaf), { name: "Leaf", version: "v1.2" });
  assert.deepEqual(taskType(Root), { name: "the-root", version: "v0.0" });
  class Bad extends Task {
    static version = "1.0";
  }
  assert.throws(() => taskType(Bad), /version "1.0" is not vMAJOR.MINOR/);
});

test("a registry holds a module's exported task classes", () => {
  const registry = new Registry({ Leaf, Root, helper: () => 1, constant: 3 });
  assert.deepEqual(registry.list(), [taskType(Leaf), taskType(Root)]);
  assert.equal(registry.lookup("Leaf", "v1.2"), Leaf);
  assert.throws(() => registry.lookup("Leaf", "v9.9"), /implements no task type Leaf@v9.9/);
  class Twin extends Task {
    static taskName = "Leaf";
    static version = "v1.2";
  }
  assert.throws(() => new Registry({ Leaf, Twin }), /Leaf@v1.2 is defined twice/);
});

test("input is checked against the fields, naming the one that does not fit", () => {
  const ok = decode(Leaf, '{"title":"Up","tags":["a"],"where":{"city":"Oslo"},"extra":1}');
  assert.deepEqual({ ...ok }, { title: "Up", tags: ["a"], where: { city: "Oslo" } });
  assert.ok(ok instanceof Leaf);
  const cases = [
    ['{"title":3,"tags":[],"where":{"city":"x"}}', "Leaf.title: expected a string, got an integer"],
    ['{"title":"a","tags":[1],"where":{"city":"x"}}', "Leaf.tags[0]: expected a string, got an integer"],
    ['{"title":"a","tags":[],"where":{}}', "Leaf.where.city: missing"],
    ['{"title":"a","tags":[],"where":{"city":"x"},"year":1.5}', "Leaf.year: expected an integer, got a number"],
    ["[]", "Leaf: expected an object, got a list"],
  ];
  for (const [input, message] of cases) assert.throws(() => decode(Leaf, input), { name: "InputError", message });
  assert.throws(() => decode(Leaf, "{"), /Leaf: the input is not JSON/);
});

test("run records subtasks, display, logs, spans, progress and the output", () => {
  const result = run(new Root({ titles: ["A", "B"] }));
  assert.equal(result.error, null);
  assert.equal(result.display, "2 titles");
  assert.equal(result.subtasks.length, 3);
  assert.deepEqual(result.subtasks[0].task, new Leaf({ title: "A", tags: [], where: { city: "Oslo" } }));
  assert.deepEqual(result.subtasks[2], {
    task: new Leaf({ title: "last", tags: ["x"], where: { city: "Rome" } }),
    dependsOn: [0, 1],
    maxRetries: 3,
    cluster: "gpu",
    optional: false,
    backoff: null,
  });
  assert.deepEqual(result.spans, [{ name: "plan", attributes: { count: "2", done: "1" } }]);
  assert.deepEqual(result.progress, { titles: { total: 2, done: 1 } });
  assert.equal(result.outputOfSubtask, 2);
  const leaf = run(new Leaf({ title: "A", year: 1999, tags: [], where: { city: "Oslo" } }));
  assert.deepEqual(leaf.output, { title: "A", city: "Oslo" });
  assert.deepEqual(leaf.logs, [{ level: "info", message: "leaf", fields: { title: "A", year: "1999" } }]);
});

test("outputs of dependencies, secrets and the cache", () => {
  const cache = new Map();
  const result = run(new Reader(), { outputs: { 0: { n: 1 }, 1: null }, secrets: { API_KEY: "xyz" }, cache });
  assert.equal(result.error, null);
  assert.deepEqual(result.output, { deps: [{ n: 1 }, null], keys: ["big/value", "small"], size: 3 << 20, small: { secret: 3 } });
  assert.equal(cache.get("big/value").length, 3 << 20);
});

test("errors: a message alone for the SDK's errors, else the type, message and frames", () => {
  assert.equal(run(new Thrower({ how: "task" })).error, "exactly this");
  assert.equal(run(new Thrower({ how: "host" })).error, 'secret "missing" is not granted to this task');
  assert.equal(run(new Thrower({ how: "string" })).error, "thrown: a bare string");
  const typeError = run(new Thrower({ how: "type" })).error.split("\n");
  assert.match(typeError[0], /^TypeError: .*title/);
  assert.match(typeError[1], /^ {2}at sdk\.test\.js:\d+ in (Thrower\.)?execute$/);
  assert.ok(typeError.length <= 4, typeError.join("\n"));
  assert.equal(describe(new InputError("Leaf.title: missing")), "Leaf.title: missing");
});

class Careful extends Task {
  static fields = { backoff: "object?" };
  execute(ctx) {
    ctx.submitSubtask(new Leaf({ title: "t", tags: [], where: { city: "Oslo" } }), {
      optional: true,
      maxRetries: 3,
      backoff: this.backoff ?? { initialMs: 250, maxMs: 4000, jitter: true },
    });
    throw new PermanentError("the account is closed");
  }
}

test("optional subtasks, backoffs and permanent errors are recorded", () => {
  const result = run(new Careful());
  assert.equal(result.error, "the account is closed");
  assert.equal(result.permanent, true);
  const { optional, backoff } = result.subtasks[0];
  assert.deepEqual({ optional, backoff }, { optional: true, backoff: { initialMs: 250, factor: 2, maxMs: 4000, jitter: true } });
  assert.equal(run(new Thrower({ how: "task" })).permanent, false, "a TaskError is retried");
  const misspelt = run(new Careful({ backoff: { initial: 5 } })).error;
  assert.match(misspelt, /^TypeError: backoff: unknown field initial/);
});

test("a subtask may depend only on handles already issued", () => {
  class Early extends Task {
    execute(ctx) {
      ctx.submitSubtask(new Early(), { dependsOn: [0] });
    }
  }
  assert.match(run(new Early()).error, /depends on a handle not issued yet/);
  class NotATask extends Task {
    execute(ctx) {
      ctx.submitSubtask({ title: "x" });
    }
  }
  assert.match(run(new NotATask()).error, /^TypeError: submitSubtask takes a Task, not Object/);
});

test("source map positions decode (base64 VLQ, relative fields)", () => {
  // Line 1: column 0 -> source 0 line 0; column 4 -> source 0 line 2.
  // Line 2: column 2 -> source 1 line 0.
  assert.deepEqual(decodeMappings("AAAA,IAEA;ECFA"), [
    [
      [0, 0, 0],
      [4, 0, 2],
    ],
    [[2, 1, 0]],
  ]);
});

test("the committed WIT declarations are what wit/task.wit generates", async () => {
  for (const [name, text] of await generate(join(SDK, "wit/task.wit"))) {
    const committed = await readFile(join(SDK, "types/wit", name), "utf8");
    assert.equal(committed, text, `types/wit/${name} is stale: run npm run types`);
  }
});

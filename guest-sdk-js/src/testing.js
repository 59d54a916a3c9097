// Unit-test tasks natively, without a host: `run(task)` executes it with a
// host that records what it does.
//
//     const result = run(new MoviesStats({ titles: ["The Matrix"] }));
//     assert.equal(result.error, null);
//     assert.deepEqual(result.subtasks[0].task, new PrintMovieStats({ title: "The Matrix" }));
//
// Give `outputs` (by dependency handle), `secrets` and a `cache` Map to
// stand for what the real host would hold; the cache Map is updated in place.

import { OutputOf } from "./context.js";
import { SandflowError } from "./errors.js";
import { execute } from "./runtime.js";
import { decode, encode } from "./task.js";

const JOB = "00000000-0000-0000-0000-000000000000";
const TASK = "00000000-0000-0000-0000-000000000001";

/** `HostCalls` that record into `record`. */
function recorder(record, outputs, secrets, attempt) {
  return {
    submit(name, version, input, dependsOn, maxRetries, cluster, optional, backoff, cls) {
      const handle = record.subtasks.length;
      if (dependsOn.some((d) => d >= handle)) {
        throw new SandflowError(`subtask ${handle} depends on a handle not issued yet: ${dependsOn}`);
      }
      const task = decode(cls, input);
      record.subtasks.push({ task, dependsOn: [...dependsOn], maxRetries, cluster: cluster ?? null, optional, backoff });
      return handle;
    },
    setDisplay: (name) => (record.display = name),
    log: (level, message, pairs) => record.logs.push({ level, message, fields: Object.fromEntries(pairs) }),
    spanEnter(name, pairs) {
      record.spans.push({ name, attributes: Object.fromEntries(pairs) });
      return BigInt(record.spans.length);
    },
    spanExit() {},
    spanSet(id, pairs) {
      Object.assign(record.spans[Number(id) - 1].attributes, Object.fromEntries(pairs));
    },
    progress(label, addTotal, addDone) {
      const counts = (record.progress[label] ??= { total: 0, done: 0 });
      counts.total += addTotal;
      counts.done += addDone;
    },
    current: () => ({ jobId: JOB, taskId: TASK, attempt }),
    dependencies: () => [...outputs.keys()].sort((a, b) => a - b),
    outputOf(handle) {
      if (!outputs.has(handle)) throw new SandflowError(`handle ${handle} is not one of this task's dependencies`);
      const value = outputs.get(handle);
      if (value === null || value === undefined) return null;
      return value instanceof Uint8Array ? value : new TextEncoder().encode(JSON.stringify(value));
    },
    secret(name) {
      if (!Object.hasOwn(secrets, name)) throw new SandflowError(`secret ${JSON.stringify(name)} is not granted to this task`);
      return secrets[name];
    },
  };
}

/** The cache calls over a Map of Uint8Array values. */
function memoryCache(values) {
  return {
    put(key) {
      const parts = [];
      return {
        write: (chunk) => parts.push(Uint8Array.from(chunk)),
        finish: () => values.set(key, concat(parts)),
      };
    },
    get(key) {
      if (!values.has(key)) return null;
      const value = values.get(key);
      let at = 0;
      return {
        size: () => value.length,
        read(n) {
          const chunk = value.subarray(at, at + n);
          at += chunk.length;
          return chunk;
        },
      };
    },
    contains: (key) => values.has(key),
    delete: (key) => values.delete(key),
    list(prefix, after) {
      const keys = [...values.keys()].filter((k) => k.startsWith(prefix) && (after === undefined || k > after));
      return keys.sort().slice(0, 1000);
    },
  };
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Executes `task` as the host would (its input through JSON) and answers
 * what it did: `{ output, outputOfSubtask, error, permanent, subtasks,
 * display, logs, spans, progress }`. Subtasks are read back as instances of their classes. */
export function run(task, { outputs = {}, secrets = {}, cache = new Map(), attempt = 1 } = {}) {
  const record = { output: null, outputOfSubtask: null, error: null, permanent: false, subtasks: [], display: null, logs: [], spans: [], progress: {} };
  const byHandle = new Map(Object.entries(outputs).map(([h, v]) => [Number(h), v]));
  const host = recorder(record, byHandle, secrets, attempt);
  const outcome = execute(task.constructor, encode(task), host, memoryCache(cache));
  if (outcome.error !== undefined) {
    record.error = outcome.error;
    record.permanent = outcome.permanent;
  } else if (outcome.output instanceof OutputOf) {
    record.outputOfSubtask = outcome.output.handle;
  } else if (outcome.output !== null) {
    const text = new TextDecoder().decode(outcome.output);
    try {
      record.output = JSON.parse(text);
    } catch {
      record.output = outcome.output;
    }
  }
  return record;
}


// The component's side of the WIT world: the `task` export, and the host
// calls through the imports componentize-js binds (`sandflow:task/...`).
// Only bundled into a component (the build's entry exports `exportTasks`
// of the task module); nothing else in the SDK imports the WIT.

import * as cache from "sandflow:task/cache@0.4.0";
import * as host from "sandflow:task/host@0.4.0";

import { SandflowError } from "./errors.js";
import { execute } from "./runtime.js";
import { Registry } from "./task.js";

/** Calls a host function, its refusal thrown as `SandflowError`. */
function call(fn, ...args) {
  try {
    return fn(...args);
  } catch (refused) {
    if (refused && typeof refused === "object" && "payload" in refused) {
      throw new SandflowError(String(refused.payload));
    }
    throw refused;
  }
}

function fields(pairs) {
  return pairs.map(([key, value]) => ({ key, value }));
}

/** `HostCalls` through the WIT imports. */
const hostCalls = {
  submit(name, version, input, dependsOn, maxRetries, cluster, optional, backoff) {
    const wait = backoff && {
      initialMs: BigInt(backoff.initialMs),
      factor: backoff.factor,
      maxMs: BigInt(backoff.maxMs),
      jitter: backoff.jitter,
    };
    const spec = {
      taskType: { name, version },
      input,
      dependsOn,
      maxRetries,
      cluster: cluster ?? undefined,
      optional,
      backoff: wait ?? undefined,
    };
    return call(host.submitSubtask, spec);
  },
  setDisplay: (name) => host.setDisplay(name),
  log: (level, message, pairs) => host.log(level, message, fields(pairs)),
  spanEnter: (name, pairs) => host.spanEnter(name, fields(pairs)),
  spanExit: (id) => host.spanExit(id),
  spanSet: (id, pairs) => host.spanSet(id, fields(pairs)),
  progress: (label, addTotal, addDone) => host.progress(label, BigInt(addTotal), BigInt(addDone)),
  current: () => host.current(),
  dependencies: () => Array.from(host.dependencies()),
  outputOf: (handle) => call(host.outputOf, handle) ?? null,
  secret: (name) => call(host.secret, name),
};

/** The cache calls through the WIT imports. */
const cacheCalls = {
  put(key) {
    const inner = call(cache.put, key);
    return {
      write: (chunk) => call(() => inner.write(chunk)),
      finish: () => call(() => cache.Writer.finish(inner)),
    };
  },
  get(key) {
    const inner = call(cache.get, key);
    if (inner == null) return null;
    return { size: () => Number(inner.size()), read: (n) => call(() => inner.read(n)) };
  },
  contains: (key) => call(cache.contains, key),
  delete: (key) => call(cache.delete, key),
  list: (prefix, after) => call(cache.list, prefix, after ?? undefined),
};

/** The `task` export for the `Task` classes among `exports`. A failed
 * execution throws its message as a string, which the bindings answer as
 * the WIT `result`'s error. */
export function exportTasks(exports) {
  const registry = new Registry(exports);
  return {
    taskTypes: () => registry.list(),
    execute(taskType, input) {
      let cls;
      try {
        cls = registry.lookup(taskType.name, taskType.version);
      } catch (e) {
        throw e.message;
      }
      const outcome = execute(cls, input, hostCalls, cacheCalls);
      if (outcome.error !== undefined) {
        if (outcome.permanent) host.markPermanent();
        throw outcome.error;
      }
      if (outcome.output === null) return { tag: "none" };
      if (outcome.output instanceof Uint8Array) return { tag: "bytes", val: outcome.output };
      return { tag: "of-subtask", val: outcome.output.handle };
    },
  };
}

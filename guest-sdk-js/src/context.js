// What a running task can do: `Context`, handed to `execute`.
//
// Every call goes to a *host*: inside a component the Sandflow host through
// the WIT imports (`component.js`); in a unit test the recorder of
// `testing.js`. Both have the methods of `HostCalls` (types/index.d.ts): the
// host functions of the WIT world in plain JavaScript values, a refusal
// thrown as `SandflowError`. (`submit` is also given the subtask's class,
// which the recorder reads the subtask back through.)

import { Cache } from "./cache.js";
import { SandflowError } from "./errors.js";
import { Task, encode, taskType } from "./task.js";

const LEVELS = ["trace", "debug", "info", "warn", "error"];

/** Returned from `execute`: the task's output is that of its subtask `handle`. */
export class OutputOf {
  constructor(handle) {
    this.handle = handle;
  }
}

/** The running task's view of the host. */
export class Context {
  #host;

  constructor(host, cacheCalls) {
    this.#host = host;
    this.logger = new Logger(host);
    this.tracer = new Tracer(host);
    this.cache = new Cache(cacheCalls);
  }

  /** Submits `task` to run once this task has succeeded, after every
   * subtask in `dependsOn` (handles this execution got) is complete;
   * answers its handle. An `optional` subtask that fails for good (it or
   * any task of its subtree) does not fail the job: what is still queued
   * in its subtree is skipped, and the tasks that depend on it run. A
   * `backoff` (`{ initialMs, factor = 2, maxMs = one day, jitter = false }`)
   * waits before each of the `maxRetries`. */
  submitSubtask(task, { dependsOn = [], maxRetries = 0, cluster, optional = false, backoff } = {}) {
    if (!(task instanceof Task)) {
      throw new TypeError(`submitSubtask takes a Task, not ${task?.constructor?.name ?? typeof task}`);
    }
    const { name, version } = taskType(task.constructor);
    const handles = Array.from(dependsOn, (h) => handle(h, "dependsOn"));
    const retries = count(maxRetries, "maxRetries");
    const wait = backoff === undefined || backoff === null ? null : backoffOf(backoff);
    return this.#host.submit(name, version, encode(task), handles, retries, cluster, Boolean(optional), wait, task.constructor);
  }

  /** Sets this task's display name (shown in task lists and diagrams). */
  setDisplay(name) {
    this.#host.setDisplay(String(name));
  }

  /** The job's progress counter `label`. */
  progress(label) {
    return new Progress(this.#host, String(label));
  }

  get jobId() {
    return this.#host.current().jobId;
  }

  get taskId() {
    return this.#host.current().taskId;
  }

  get attempt() {
    return this.#host.current().attempt;
  }

  /** The handles of the tasks this one depends on, as its parent submitted
   * them, in the order of its `dependsOn`. */
  dependencies() {
    return this.#host.dependencies();
  }

  /** The raw output of dependency `h` (a Uint8Array); null if it left none. */
  outputBytesOf(h) {
    return this.#host.outputOf(handle(h, "handle")) ?? null;
  }

  /** The output of dependency `h`, read from JSON; null if it left none. */
  outputOf(h) {
    const raw = this.outputBytesOf(h);
    if (raw === null) return null;
    try {
      return JSON.parse(new TextDecoder().decode(raw));
    } catch (e) {
      throw new SandflowError(`the output of dependency ${h} is not JSON: ${e.message}`);
    }
  }

  /** The outputs of all of this task's dependencies, in order. */
  dependencyOutputs() {
    return this.dependencies().map((h) => this.outputOf(h));
  }

  /** Return this from `execute` to make this task's output that of its
   * subtask `h`. */
  outputFrom(h) {
    return new OutputOf(handle(h, "handle"));
  }

  /** The host's secret `name`, if this task's module was granted it. */
  secret(name) {
    return this.#host.secret(String(name));
  }
}

function handle(h, what) {
  if (!Number.isInteger(h) || h < 0 || h > 0xffffffff) {
    throw new TypeError(`${what}: ${String(h)} is not a subtask handle`);
  }
  return h;
}

/** A backoff with its defaults filled in, checked for type. */
function backoffOf({ initialMs, factor = 2, maxMs = 86_400_000, jitter = false, ...rest }) {
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw new TypeError(`backoff: unknown field ${unknown[0]} (initialMs, factor, maxMs, jitter)`);
  if (typeof factor !== "number") throw new TypeError(`backoff.factor: ${String(factor)} is not a number`);
  return { initialMs: count(initialMs, "backoff.initialMs"), factor, maxMs: count(maxMs, "backoff.maxMs"), jitter: Boolean(jitter) };
}

function count(n, what) {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new TypeError(`${what}: ${String(n)} is not a count`);
  }
  return n;
}

/** Log records with fields: `ctx.logger.info("fetched", { title })`.
 * Field values are written with `String`. */
export class Logger {
  #host;

  constructor(host) {
    this.#host = host;
  }

  log(level, message, fields = {}) {
    if (!LEVELS.includes(level)) {
      throw new TypeError(`log level ${JSON.stringify(level)} is not one of ${LEVELS.join(", ")}`);
    }
    this.#host.log(level, String(message), pairs(fields));
  }

  trace(message, fields) {
    this.log("trace", message, fields);
  }

  debug(message, fields) {
    this.log("debug", message, fields);
  }

  info(message, fields) {
    this.log("info", message, fields);
  }

  warn(message, fields) {
    this.log("warn", message, fields);
  }

  error(message, fields) {
    this.log("error", message, fields);
  }
}

/** Trace spans, nested in the open one: `ctx.tracer.span("fetch", { title
 * }, () => ...)` runs the function inside the span and answers its result;
 * `ctx.tracer.enter(name, attributes)` answers an open `Span` to `exit()`
 * (or to hold with `using`). */
export class Tracer {
  #host;

  constructor(host) {
    this.#host = host;
  }

  span(name, attributes, body) {
    if (typeof attributes === "function") return this.span(name, {}, attributes);
    const span = this.enter(name, attributes);
    try {
      return body(span);
    } finally {
      span.exit();
    }
  }

  enter(name, attributes = {}) {
    return new Span(this.#host, this.#host.spanEnter(String(name), pairs(attributes)));
  }
}

/** An open span. */
export class Span {
  #host;
  #id;

  constructor(host, id) {
    this.#host = host;
    this.#id = id;
  }

  exit() {
    if (this.#id !== null) {
      this.#host.spanExit(this.#id);
      this.#id = null;
    }
  }

  /** Gives the open span an attribute learned after it opened; a key it
   * has gets the new value. Ignored once the span exited. */
  setAttribute(key, value) {
    return this.setAttributes({ [key]: value });
  }

  /** `setAttribute` for several at once. */
  setAttributes(attributes) {
    if (this.#id !== null) this.#host.spanSet(this.#id, pairs(attributes));
    return this;
  }

  [Symbol.dispose ?? Symbol.for("Symbol.dispose")]() {
    this.exit();
  }
}

/** A job's progress counter: `add(n)` more items expected, `done(n)` items
 * finished. Counts once this attempt is computed. */
export class Progress {
  #host;

  constructor(host, label) {
    this.#host = host;
    this.label = label;
  }

  add(n = 1) {
    this.#host.progress(this.label, count(n, "add"), 0);
    return this;
  }

  done(n = 1) {
    this.#host.progress(this.label, 0, count(n, "done"));
    return this;
  }
}

function pairs(fields) {
  return Object.entries(fields ?? {}).map(([k, v]) => [String(k), String(v)]);
}

// One execution, the same inside a component and in a unit test: find the
// task type, read its input, run it, and turn what it returns or throws
// into an outcome.

import { Context, OutputOf } from "./context.js";
import { describe, isPermanent } from "./errors.js";
import { decode } from "./task.js";

/** Runs the task class `cls` on `input`: answers `{ output }` (null for
 * none, a Uint8Array, or an `OutputOf`) or `{ error, permanent }` (a
 * message, and whether the failure is not to be retried). */
export function execute(cls, input, host, cacheCalls) {
  try {
    const task = decode(cls, input);
    const result = task.execute(new Context(host, cacheCalls));
    if (result instanceof Promise) {
      throw new TypeError(`${cls.name}.execute returned a Promise: host calls are synchronous, so write execute without async`);
    }
    return { output: output(result) };
  } catch (error) {
    return { error: describe(error), permanent: isPermanent(error) };
  }
}

function output(result) {
  if (result === undefined || result === null || result instanceof OutputOf) return result ?? null;
  if (result instanceof Uint8Array) return result;
  const text = JSON.stringify(result);
  if (text === undefined) throw new TypeError(`a task's output is JSON; ${typeof result} is not`);
  return new TextEncoder().encode(text);
}

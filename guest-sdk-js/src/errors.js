// Errors: what the host refused, what a task throws on purpose, and how an
// uncaught exception becomes the attempt's error message.

import { originalPosition } from "./sourcemap.js";

/** How many of the innermost stack frames an error message names. */
export const FRAMES = 3;

/** The host refused a call (an unknown task type, a limit, a secret not
 * granted, ...); the message is the host's. */
export class SandflowError extends Error {
  constructor(message) {
    super(message);
    this.name = "SandflowError";
  }
}

/** A task's JSON input does not fit its fields (the message names the
 * field). Permanent: no retry makes the same input fit. */
export class InputError extends Error {
  constructor(message) {
    super(message);
    this.name = "InputError";
  }
}

/** Throw it to fail the attempt with exactly this message (no type, no stack). */
export class TaskError extends Error {
  constructor(message) {
    super(message);
    this.name = "TaskError";
  }
}

/** Throw it to fail the attempt with exactly this message and no retry,
 * whatever retries the task has left: for failures no retry can fix. */
export class PermanentError extends TaskError {
  constructor(message) {
    super(message);
    this.name = "PermanentError";
  }
}

/** Whether `error` fails the task without a retry. */
export function isPermanent(error) {
  return error instanceof PermanentError || error instanceof InputError;
}

/** The attempt's error for a value thrown out of `execute`: the message
 * alone for `TaskError`, `SandflowError` and `InputError`; otherwise
 * `Name: message` and the innermost frames of its stack, one line each
 * (positions in the task's own source files). A thrown non-`Error` is
 * described as `thrown: <value>`. */
export function describe(error) {
  if (error instanceof TaskError || error instanceof SandflowError || error instanceof InputError) {
    return error.message;
  }
  if (!(error instanceof Error)) {
    return `thrown: ${safeString(error)}`;
  }
  const head = error.message ? `${error.name}: ${error.message}` : error.name;
  return [head, ...frames(error.stack)].join("\n");
}

function safeString(value) {
  try {
    return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// A stack line is `function@file:line:column` (the engine's format) or
// `    at function (file:line:column)`; frames of the SDK itself are left out.
const SDK_SOURCE = /(guest-sdk-js|node_modules\/sandflow)\/src\//;
const FRAME = /^\s*(?:at\s+)?(?:(.*?)@|(.*?)\s+\()?(.*?):(\d+):(\d+)\)?$/;

function frames(stack) {
  const lines = [];
  for (const line of String(stack ?? "").split("\n")) {
    const m = FRAME.exec(line);
    if (!m) continue;
    const mapped = originalPosition(Number(m[4]), Number(m[5]));
    const source = mapped ? mapped.source : m[3];
    if (SDK_SOURCE.test(source) || source.startsWith("node:")) continue;
    const file = source.split("/").pop();
    const at = mapped ? mapped.line : Number(m[4]);
    const name = m[1] || m[2];
    lines.push(name ? `  at ${file}:${at} in ${name}` : `  at ${file}:${at}`);
    if (lines.length === FRAMES) break;
  }
  return lines;
}

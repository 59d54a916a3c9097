// The Sandflow JavaScript SDK's declarations. The WIT world's own
// interfaces, which the SDK calls inside a component, are declared in
// `wit/` (generated from `wit/task.wit`).

/// <reference path="./wit/sandflow.d.ts" />

/** A subtask submitted by this execution (a number, also in JSON). */
export type Handle = number;

/** A field type of `static fields`. */
export type FieldType =
  | "string" | "number" | "integer" | "boolean" | "object" | "any"
  | "string?" | "number?" | "integer?" | "boolean?" | "object?" | "any?"
  | [FieldType]
  | { [field: string]: FieldType };

/** The base of every task type. */
export class Task {
  /** The task type's name (the class name unless given). */
  static taskName?: string;
  /** The task type's version, `vMAJOR.MINOR` (`v0.0` unless given). */
  static version?: string;
  /** The JSON input's fields, checked when a task is read. */
  static fields?: { [field: string]: FieldType };
  constructor(fields?: object);
  /** Runs the task; the result is its output (JSON, bytes, none, or a subtask's). */
  execute(ctx: Context): unknown;
}

export interface SubmitOptions {
  /** Earlier subtasks of this execution that must complete first. */
  dependsOn?: Iterable<Handle>;
  /** How many times a failed attempt is retried. */
  maxRetries?: number;
  /** The cluster to run on; this task's when absent. */
  cluster?: string;
  /** Its failure for good (or its subtree's) does not fail the job. */
  optional?: boolean;
  /** The wait before each retry. */
  backoff?: Backoff;
}

/** The wait before each retry: `initialMs` before the first, each next
 * one `factor` (default 2) times the last, none over `maxMs` (default one
 * day); with `jitter`, each is drawn between half and all of it. */
export interface Backoff {
  initialMs: number;
  factor?: number;
  maxMs?: number;
  jitter?: boolean;
}

export type Fields = { [key: string]: unknown };

export class Context {
  readonly logger: Logger;
  readonly tracer: Tracer;
  readonly cache: Cache;
  readonly jobId: string;
  readonly taskId: string;
  readonly attempt: number;
  submitSubtask(task: Task, options?: SubmitOptions): Handle;
  setDisplay(name: string): void;
  progress(label: string): Progress;
  dependencies(): Handle[];
  outputBytesOf(handle: Handle): Uint8Array | null;
  outputOf<T = unknown>(handle: Handle): T | null;
  dependencyOutputs(): unknown[];
  outputFrom(handle: Handle): OutputOf;
  secret(name: string): string;
}

export class OutputOf {
  readonly handle: Handle;
}

export class Logger {
  log(level: "trace" | "debug" | "info" | "warn" | "error", message: string, fields?: Fields): void;
  trace(message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
}

export class Tracer {
  span<T>(name: string, attributes: Fields, body: (span: Span) => T): T;
  span<T>(name: string, body: (span: Span) => T): T;
  enter(name: string, attributes?: Fields): Span;
}

export class Span {
  exit(): void;
  /** Gives the open span an attribute learned after it opened; a key it has gets the new value. */
  setAttribute(key: string, value: unknown): this;
  setAttributes(attributes: Record<string, unknown>): this;
}

export class Progress {
  readonly label: string;
  add(n?: number): this;
  done(n?: number): this;
}

/** The most bytes one cache call moves. */
export const CHUNK_BYTES: number;

export class Cache {
  put(key: string, value: Uint8Array | string): void;
  get(key: string): Uint8Array | null;
  putJson(key: string, value: unknown): void;
  getJson<T = unknown>(key: string): T | null;
  contains(key: string): boolean;
  delete(key: string): boolean;
  keys(prefix?: string): Generator<string>;
  writer(key: string): Writer;
  reader(key: string): Reader | null;
}

export class Writer {
  write(data: Uint8Array): void;
  finish(): void;
}

export class Reader {
  readonly size: number;
  read(n?: number): Uint8Array;
}

export class SandflowError extends Error {}
export class InputError extends Error {}
export class TaskError extends Error {}
/** Fails the attempt with its message and no retry. */
export class PermanentError extends TaskError {}

/** The attempt's error message for a value thrown out of `execute`. */
export function describe(error: unknown): string;

export interface TaskTypeName {
  readonly name: string;
  readonly version: string;
}

/** The checked type of task class `cls`. */
export function taskType(cls: typeof Task): TaskTypeName;

/** The task classes among a module's exports. */
export class Registry {
  constructor(exports: object);
  list(): TaskTypeName[];
  lookup(name: string, version: string): typeof Task;
}

export function encode(task: Task): string;
export function decode<T extends Task>(cls: new (fields?: object) => T, text: string): T;

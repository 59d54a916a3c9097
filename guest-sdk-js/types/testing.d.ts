// `sandflow/testing`: run a task natively with a recording host.

import type { Handle, Task } from "./index.js";

export interface Submitted {
  task: Task;
  dependsOn: Handle[];
  maxRetries: number;
  cluster: string | null;
  optional: boolean;
  /** With its defaults filled in. */
  backoff: { initialMs: number; factor: number; maxMs: number; jitter: boolean } | null;
}

export interface Recorded {
  output: unknown;
  outputOfSubtask: Handle | null;
  error: string | null;
  /** The failure would not be retried (`PermanentError`, `InputError`). */
  permanent: boolean;
  subtasks: Submitted[];
  display: string | null;
  logs: { level: string; message: string; fields: { [key: string]: string } }[];
  spans: { name: string; attributes: { [key: string]: string } }[];
  progress: { [label: string]: { total: number; done: number } };
}

export interface RunOptions {
  /** The outputs of the task's dependencies, by handle. */
  outputs?: { [handle: number]: unknown };
  /** The secrets the module was granted. */
  secrets?: { [name: string]: string };
  /** The job's cache; updated in place. */
  cache?: Map<string, Uint8Array>;
  attempt?: number;
}

export function run(task: Task, options?: RunOptions): Recorded;

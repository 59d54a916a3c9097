/// <reference path="./sandflow-task-types.d.ts" />
declare module 'sandflow:task/host@0.4.0' {
  /**
   * Submits a subtask. Fails with a readable message when the subtask is
   * invalid: unknown task type, malformed input, a dependency on a handle not
   * issued yet, or a host limit exceeded.
   */
  export function submitSubtask(spec: Subtask): SubtaskHandle;
  /**
   * Sets the task's display name, shown in task lists and job diagrams.
   * At most 1024 characters are kept; line breaks are allowed.
   */
  export function setDisplay(name: string): void;
  /**
   * Records a log line with structured fields.
   */
  export function log(level: Level, message: string, fields: Array<Field>): void;
  /**
   * Opens a trace span nested in the innermost open span, if any.
   */
  export function spanEnter(name: string, attributes: Array<Field>): SpanId;
  /**
   * Closes a span opened by `span-enter`. Unknown ids are ignored.
   */
  export function spanExit(id: SpanId): void;
  /**
   * Gives attributes to a span opened by `span-enter` and not yet closed:
   * a key it has already gets the new value. Bounded as the attributes
   * given at opening (fields per span, bytes per key and value, bytes
   * per attempt); unknown or closed ids are ignored.
   */
  export function spanSet(id: SpanId, attributes: Array<Field>): void;
  /**
   * Adds to the progress counter `label` of the job: `add-total` items
   * expected and `add-done` items done. A task's additions count once
   * its attempt is computed (only the attempt that computed it counts).
   * Labels are at most 128 bytes; an attempt may use at most 64 labels.
   */
  export function progress(label: string, addTotal: bigint, addDone: bigint): void;
  /**
   * Marks this attempt's failure as permanent: if the attempt fails (an
   * error or a trap), the task is not retried, whatever retries it has
   * left. For errors no retry can fix, such as invalid input.
   */
  export function markPermanent(): void;
  /**
   * Returns the identity of the running execution.
   */
  export function current(): Execution;
  /**
   * The tasks this one depends on, as the handles its parent submitted them
   * under, in the order of its `depends-on`. Each was computed (with all of
   * its subtasks) before this task started.
   */
  export function dependencies(): Uint32Array;
  /**
   * The output of the dependency its parent submitted as `handle`: none
   * when it left none (an `of-subtask` output is followed to the bytes).
   * Fails with a readable message for a handle that is not one of
   * `dependencies`.
   */
  export function outputOf(handle: SubtaskHandle): Uint8Array | undefined;
  /**
   * The value of the host's secret `name`, if this task's module was
   * granted it (at upload: `POST /v1/modules?secrets=NAME`). Fails with a
   * readable message otherwise. The value is redacted from everything
   * the attempt records (logs, spans, display, error, subtask inputs,
   * output), so it never shows in the API, logs or exported traces;
   * what the task sends elsewhere (HTTP, the job cache) is its own.
   */
  export function secret(name: string): string;
  export type TaskType = import('sandflow:task/types@0.4.0').TaskType;
  export type Field = import('sandflow:task/types@0.4.0').Field;
  export type SubtaskHandle = import('sandflow:task/types@0.4.0').SubtaskHandle;
  export type Backoff = import('sandflow:task/types@0.4.0').Backoff;
  /**
   * A subtask to run once the current task has finished successfully.
   */
  export interface Subtask {
    /**
     * The task type to run; the newest compatible version is chosen when
     * the subtask is scheduled.
     */
    taskType: TaskType,
    /**
     * The subtask's input, a JSON document.
     */
    input: string,
    /**
     * Earlier subtasks of this execution that must be complete (computed,
     * together with all of their own subtasks) before this one may start.
     */
    dependsOn: Uint32Array,
    /**
     * How many times a failed attempt is retried before the subtask fails.
     */
    maxRetries: number,
    /**
     * The cluster to run on; the current task's cluster when absent.
     */
    cluster?: string,
    /**
     * An optional subtask's failure for good does not fail the job: the
     * failed task (it, or any task of its subtree) is `failed_optional`,
     * what is still queued in its subtree is `skipped`, and the tasks
     * that depend on it run. Inside an optional subtree, the innermost
     * optional task bounds what is skipped.
     */
    optional: boolean,
    /**
     * The delay before each retry; none retries at once.
     */
    backoff?: Backoff,
  }
  /**
   * Severity of a log record.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /**
   * Identifies an open trace span of this execution.
   */
  export type SpanId = bigint;
  /**
   * Where the running execution stands.
   */
  export interface Execution {
    /**
     * The job's id, a UUID.
     */
    jobId: string,
    /**
     * The task's id, a UUID.
     */
    taskId: string,
    /**
     * The attempt number, starting at 1.
     */
    attempt: number,
  }
}

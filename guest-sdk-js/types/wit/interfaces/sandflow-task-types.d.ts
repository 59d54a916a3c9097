declare module 'sandflow:task/types@0.4.0' {
  /**
   * Identifies a task type: a name and a version.
   */
  export interface TaskType {
    /**
     * The name, 1 to 256 bytes, unique within the host's registry.
     */
    name: string,
    /**
     * The version as `vMAJOR.MINOR`, for example `v1.0`. A task submitted
     * as `vX.Y` runs on the newest registered `vX.Z` with `Z >= Y`.
     */
    version: string,
  }
  /**
   * A key/value pair attached to a log record or a trace span.
   */
  export interface Field {
    key: string,
    value: string,
  }
  /**
   * Identifies a subtask submitted during this execution. Handles are issued
   * in submission order, starting at 0, and are only meaningful within the
   * execution that received them, and to the subtasks it submitted (a
   * subtask names its dependencies by these handles).
   */
  export type SubtaskHandle = number;
  /**
   * The delay before each retry of a failed attempt: `initial-ms` before
   * the first, each next one `factor` times the last, none over `max-ms`;
   * with `jitter`, each is drawn uniformly between half and all of it.
   * Delays are at most one day (86,400,000 ms), `factor` from 1 to 100.
   * A task waiting out its delay holds no runner.
   */
  export interface Backoff {
    initialMs: bigint,
    factor: number,
    maxMs: bigint,
    jitter: boolean,
  }
  /**
   * What a successful execution leaves for the tasks that depend on it.
   */
  export type Output = OutputNone | OutputBytes | OutputOfSubtask;
  /**
   * Nothing.
   */
  export interface OutputNone {
    tag: 'none',
  }
  /**
   * These bytes (the SDKs write JSON). At most the host's
   * `task_output_bytes` (1 MiB unless configured); more fails the
   * attempt.
   */
  export interface OutputBytes {
    tag: 'bytes',
    val: Uint8Array,
  }
  /**
   * Whatever the subtask with this handle (submitted by this
   * execution) leaves: a task's result can be its last step's.
   */
  export interface OutputOfSubtask {
    tag: 'of-subtask',
    val: SubtaskHandle,
  }
}

/// <reference path="./sandflow-task-types.d.ts" />
declare module 'sandflow:task/task@0.4.0' {
  /**
   * The task types this component implements.
   */
  export function taskTypes(): Array<TaskType>;
  /**
   * Runs one task of the given type on its JSON input, answering its output.
   * An error fails the attempt with the given message; a trap fails it too.
   */
  export function execute(taskType: TaskType, input: string): Output;
  export type TaskType = import('sandflow:task/types@0.4.0').TaskType;
  export type Output = import('sandflow:task/types@0.4.0').Output;
}

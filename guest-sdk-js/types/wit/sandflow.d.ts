/// <reference path="./interfaces/sandflow-task-cache.d.ts" />
/// <reference path="./interfaces/sandflow-task-host.d.ts" />
/// <reference path="./interfaces/sandflow-task-task.d.ts" />
/// <reference path="./interfaces/sandflow-task-types.d.ts" />
declare module 'sandflow:task/task-component@0.4.0' {
  export type * as SandflowTaskCache040 from 'sandflow:task/cache@0.4.0'; // import sandflow:task/cache@0.4.0
  export type * as SandflowTaskHost040 from 'sandflow:task/host@0.4.0'; // import sandflow:task/host@0.4.0
  export type * as SandflowTaskTypes040 from 'sandflow:task/types@0.4.0'; // import sandflow:task/types@0.4.0
  export * as task from 'sandflow:task/task@0.4.0'; // export sandflow:task/task@0.4.0
}

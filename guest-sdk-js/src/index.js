// The Sandflow JavaScript SDK: tasks as classes (`Task`), the context they
// run with (`Context`), and the errors they meet. `sandflow/testing` runs
// tasks natively; `sandflow-js build` makes a component of a module.

export { Cache, Reader, Writer, CHUNK_BYTES } from "./cache.js";
export { Context, Logger, OutputOf, Progress, Span, Tracer } from "./context.js";
export { InputError, PermanentError, SandflowError, TaskError, describe } from "./errors.js";
export { Registry, Task, decode, encode, taskType } from "./task.js";

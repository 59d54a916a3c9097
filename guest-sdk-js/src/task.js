// Task types: classes whose fields are the task's JSON input.
//
//     export class PrintMovieStats extends Task {
//       static version = "v1.1";
//       static fields = { title: "string" };
//       execute(ctx) { ... }
//     }
//
// A task type's name is its class name (or `static taskName`), its version
// `static version` (`v0.0` unless given). The classes a component
// implements are the `Task` subclasses its module exports. `static fields`
// describes the input, checked when a task is read from JSON with errors
// naming the field that does not fit: "string", "number", "integer",
// "boolean", "object", "any", a trailing "?" for a field that may be left
// out or null, `[type]` for a list, `{ field: type }` for a nested record.

import { InputError } from "./errors.js";

const VERSION = /^v(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$/;

/** The base of every task type; subclasses implement `execute(ctx)`, whose
 * result is the task's output (JSON; `undefined` or `null` for none). */
export class Task {
  /** A task with these input fields. */
  constructor(fields = {}) {
    Object.assign(this, fields);
  }

  execute(_ctx) {
    throw new TypeError(`${this.constructor.name} does not implement execute`);
  }
}

// The checked task type of each class asked for.
const checked = new WeakMap();

/** The `{ name, version }` of task class `cls`, checked. */
export function taskType(cls) {
  return checked.get(cls) ?? checkType(cls);
}

function checkType(cls) {
  if (!(cls?.prototype instanceof Task)) {
    throw new TypeError(`${cls?.name ?? cls} is not a Task class`);
  }
  const name = Object.hasOwn(cls, "taskName") ? cls.taskName : cls.name;
  const version = Object.hasOwn(cls, "version") ? cls.version : "v0.0";
  const bytes = new TextEncoder().encode(String(name)).length;
  if (typeof name !== "string" || bytes < 1 || bytes > 256) {
    throw new TypeError(`a task type's name has 1 to 256 bytes, not ${bytes}`);
  }
  if (typeof version !== "string" || !VERSION.test(version)) {
    throw new TypeError(`task type ${name}: version ${JSON.stringify(version)} is not vMAJOR.MINOR (for example v1.0)`);
  }
  const type = Object.freeze({ name, version });
  checked.set(cls, type);
  return type;
}

/** The task types of a module's exports (every `Task` subclass), by
 * `name@version`; a type exported twice is an error. */
export class Registry {
  constructor(exports) {
    this.types = new Map();
    for (const value of Object.values(exports)) {
      if (!(typeof value === "function" && value.prototype instanceof Task)) continue;
      const { name, version } = taskType(value);
      const key = `${name}@${version}`;
      if (this.types.has(key) && this.types.get(key) !== value) {
        throw new TypeError(`task type ${key} is defined twice`);
      }
      this.types.set(key, value);
    }
  }

  /** Every `{ name, version }`, in export order. */
  list() {
    return [...this.types.values()].map(taskType);
  }

  /** The class registered as `name@version`. */
  lookup(name, version) {
    const cls = this.types.get(`${name}@${version}`);
    if (!cls) throw new InputError(`this component implements no task type ${name}@${version}`);
    return cls;
  }
}

/** `task` (its own fields) as JSON. */
export function encode(task) {
  return JSON.stringify(task);
}

/** A task of class `cls` from its JSON input, checked against `cls.fields`. */
export function decode(cls, text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${cls.name}: the input is not JSON: ${e.message}`);
  }
  const schema = Object.hasOwn(cls, "fields") ? cls.fields : null;
  if (schema === null) {
    if (!isObject(data)) throw new InputError(`${cls.name}: expected an object, got ${kind(data)}`);
    return new cls(data);
  }
  return new cls(record(data, schema, cls.name));
}

function record(data, schema, where) {
  if (!isObject(data)) throw new InputError(`${where}: expected an object, got ${kind(data)}`);
  const values = {};
  for (const [field, type] of Object.entries(schema)) {
    const value = checkField(data[field], type, `${where}.${field}`);
    if (value !== undefined) values[field] = value;
  }
  return values;
}

function checkField(data, type, where) {
  if (Array.isArray(type)) {
    if (!Array.isArray(data)) throw new InputError(`${where}: expected a list, got ${kind(data)}`);
    return data.map((item, i) => checkField(item, type[0] ?? "any", `${where}[${i}]`));
  }
  if (isObject(type)) return record(data, type, where);
  if (typeof type !== "string") throw new TypeError(`${where}: ${String(type)} is not a field type`);
  if (type.endsWith("?")) {
    return data === undefined || data === null ? undefined : checkField(data, type.slice(0, -1), where);
  }
  if (data === undefined) throw new InputError(`${where}: missing`);
  if (!SCALARS[type]) throw new TypeError(`${where}: ${JSON.stringify(type)} is not a field type`);
  if (!SCALARS[type](data)) throw new InputError(`${where}: expected ${ARTICLE[type]}, got ${kind(data)}`);
  return data;
}

const SCALARS = {
  string: (v) => typeof v === "string",
  number: (v) => typeof v === "number",
  integer: (v) => Number.isInteger(v),
  boolean: (v) => typeof v === "boolean",
  object: isObject,
  any: () => true,
};

const ARTICLE = {
  string: "a string",
  number: "a number",
  integer: "an integer",
  boolean: "a boolean",
  object: "an object",
  any: "a value",
};

function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function kind(data) {
  if (data === null) return "null";
  if (data === undefined) return "nothing";
  if (Array.isArray(data)) return "a list";
  if (Number.isInteger(data)) return "an integer";
  return ARTICLE[typeof data] ?? typeof data;
}

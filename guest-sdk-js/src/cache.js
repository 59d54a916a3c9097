// The job's cache: byte values under string keys, shared by the tasks of one
// job (`ctx.cache`). Values move in chunks of at most 1 MiB, so a large one
// is never copied whole; `writer`/`reader` stream, `put`/`get` take and give
// whole values. A value is stored when its writer finishes, and stays stored
// even if the attempt that wrote it then fails.

/** The most bytes one host call moves. */
export const CHUNK_BYTES = 1 << 20;

/** The most keys one listing call answers. */
const PAGE = 1000;

/** `ctx.cache`. Keys are 1 to 1024 bytes of text in `/`-separated
 * segments; a group is a key prefix such as `pages/`. */
export class Cache {
  #calls;

  constructor(calls) {
    this.#calls = calls;
  }

  /** Stores `value` (a Uint8Array, or text written as UTF-8) under `key`. */
  put(key, value) {
    const data = typeof value === "string" ? new TextEncoder().encode(value) : bytes(value);
    const writer = this.writer(key);
    writer.write(data);
    writer.finish();
  }

  /** The value of `key` (a Uint8Array); null when there is none. */
  get(key) {
    const reader = this.reader(key);
    return reader === null ? null : reader.read();
  }

  putJson(key, value) {
    this.put(key, JSON.stringify(value));
  }

  getJson(key) {
    const raw = this.get(key);
    return raw === null ? null : JSON.parse(new TextDecoder().decode(raw));
  }

  contains(key) {
    return this.#calls.contains(key);
  }

  /** Deletes `key`'s value; whether it had one. */
  delete(key) {
    return this.#calls.delete(key);
  }

  /** Every key that starts with `prefix`, in byte order (fetched a page of
   * 1000 at a time). */
  *keys(prefix = "") {
    let after;
    for (;;) {
      const page = this.#calls.list(prefix, after);
      yield* page;
      if (page.length < PAGE) return;
      after = page[page.length - 1];
    }
  }

  /** A writer for `key`; nothing is visible until its `finish()`. */
  writer(key) {
    return new Writer(this.#calls.put(key));
  }

  /** A reader of `key`'s value; null when there is none. */
  reader(key) {
    const inner = this.#calls.get(key);
    return inner == null ? null : new Reader(inner);
  }
}

function bytes(value) {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError(`cache values are Uint8Array or string, not ${value?.constructor?.name ?? typeof value}`);
}

/** A value being written. */
export class Writer {
  #inner;

  constructor(inner) {
    this.#inner = inner;
  }

  write(data) {
    const view = bytes(data);
    for (let at = 0; at < view.length; at += CHUNK_BYTES) {
      this.#inner.write(view.subarray(at, at + CHUNK_BYTES));
    }
  }

  finish() {
    this.#inner.finish();
  }
}

/** A value being read from its start. */
export class Reader {
  #inner;

  constructor(inner) {
    this.#inner = inner;
    this.size = inner.size();
  }

  /** At most `n` bytes (all that is left without `n`); empty at the end. */
  read(n = Infinity) {
    const parts = [];
    let want = Math.min(n, this.size);
    let total = 0;
    while (want > 0) {
      const chunk = this.#inner.read(Math.min(want, CHUNK_BYTES));
      if (chunk.length === 0) break;
      parts.push(chunk);
      total += chunk.length;
      want -= chunk.length;
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

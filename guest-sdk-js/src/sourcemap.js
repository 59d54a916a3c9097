// Positions in the task's own files for positions in the built bundle.
// The build command puts the bundle's source map (its `sources` and
// `mappings`, no contents) under `SOURCE_MAP`; it is decoded only when
// an error is described, so it costs a task nothing otherwise.

/** Where the build leaves the source map. */
export const SOURCE_MAP = Symbol.for("sandflow.source-map");

const DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
let decoded;

/** The `{ source, line }` (1-based) of bundle position `line`:`column`
 * (1-based, as stacks give them), or null without a map or a mapping. */
export function originalPosition(line, column) {
  const map = globalThis[SOURCE_MAP];
  if (!map) return null;
  decoded ??= decode(map.mappings);
  const segments = decoded[line - 1];
  if (!segments || segments.length === 0) return null;
  let best = segments[0];
  for (const s of segments) {
    if (s[0] <= column - 1) best = s;
  }
  return { source: map.sources[best[1]] ?? "?", line: best[2] + 1 };
}

/** The mappings as, per generated line, `[column, source, line]` segments. */
export function decode(mappings) {
  const lines = [];
  const state = [0, 0, 0];
  for (const text of mappings.split(";")) {
    const segments = [];
    let column = 0;
    for (const segment of text.split(",")) {
      if (!segment) continue;
      const fields = vlq(segment);
      column += fields[0];
      if (fields.length >= 4) {
        state[0] += fields[1];
        state[1] += fields[2];
        state[2] += fields[3];
        segments.push([column, state[0], state[1]]);
      }
    }
    lines.push(segments);
  }
  return lines;
}

function vlq(segment) {
  const values = [];
  let value = 0;
  let shift = 0;
  for (const char of segment) {
    const digit = DIGITS.indexOf(char);
    if (digit < 0) throw new Error(`source map: ${char} is not a base64 digit`);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
    } else {
      values.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return values;
}

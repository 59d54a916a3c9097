#!/usr/bin/env node
// The SDK's command line: `sandflow-js build TASKS.js -o OUT.wasm` makes a
// component of a task module; `sandflow-js types` regenerates the WIT
// declarations under `types/wit/`.

import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const SDK = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = `usage: sandflow-js build TASKS.js -o OUT.wasm [--wit DIR]
       sandflow-js types [-o DIR]`;

async function main(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { output: { type: "string", short: "o" }, wit: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) return fail(USAGE, values.help ? 0 : 2);
  if (command === "build") {
    if (rest.length !== 1 || !values.output) return fail(USAGE, 2);
    const { build } = await import("../src/build.js");
    const started = Date.now();
    const bytes = await build(rest[0], values.output, values.wit ? { wit: values.wit } : {});
    console.error(`sandflow-js: built ${values.output} (${(bytes / 1e6).toFixed(1)} MB) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return 0;
  }
  if (command === "types") {
    const { write } = await import("../src/types.js");
    await write(join(SDK, "wit/task.wit"), values.output ?? join(SDK, "types/wit"));
    return 0;
  }
  return fail(`sandflow-js: unknown command ${command}\n${USAGE}`, 2);
}

function fail(message, code) {
  (code === 0 ? console.log : console.error)(message);
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`sandflow-js: ${error.message}`);
    process.exit(1);
  },
);

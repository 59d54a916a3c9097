// `sandflow-js types`: the TypeScript declarations of the WIT world's
// interfaces (`types/wit/`), generated from `wit/task.wit` by the bindings
// generator that componentize-js builds on (jco-transpile, pinned in the
// lockfile, a development dependency). The SDK's tests check that the
// committed declarations are what the WIT generates.

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";

/** The declarations of `witFile`'s world `task-component`, as `[path, text]`. */
export async function generate(witFile) {
  const transpile = dirname(createRequire(import.meta.url).resolve("@bytecodealliance/jco-transpile"));
  const bindgen = await import(join(transpile, "../vendor/js-component-bindgen-component.js"));
  await bindgen.$init;
  const source = await readFile(witFile, "utf8");
  const files = bindgen.generateTypes("sandflow", {
    wit: { tag: "source", val: source },
    world: "task-component",
    guest: true,
    tlaCompat: false,
    features: { tag: "list", val: [] },
  });
  return files.map(([name, bytes]) => [name, new TextDecoder().decode(bytes)]);
}

/** Writes the declarations under `outDir`. */
export async function write(witFile, outDir) {
  for (const [name, text] of await generate(witFile)) {
    const path = join(outDir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }
}

// `sandflow-js build TASKS.js -o OUT.wasm`: a component from a module of
// tasks. esbuild bundles the module with the SDK (the WIT imports left
// external), then componentize-js's library function makes the component
// against the WIT world shipped with the SDK. Both tools come at the
// versions the SDK's package-lock.json pins.
//
// The bundle's entry exports the `task` export of the module's `Task`
// classes; its source map (positions only) is put into the bundle so an
// error's stack names the task's own files and lines.

import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SDK = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Builds the task module `module` into the component `output`; answers
 * its size in bytes. */
export async function build(module, output, { wit = join(SDK, "wit") } = {}) {
  const source = resolve(module);
  if (!/\.(m?js|ts|mts)$/.test(source) || !(await stat(source).catch(() => null))?.isFile()) {
    throw new BuildError(`${module} is not a JavaScript or TypeScript file`);
  }
  const scratch = await mkdtemp(join(tmpdir(), "sandflow-build-"));
  try {
    const bundle = join(scratch, "tasks.bundle.js");
    await writeFile(bundle, await bundleOf(source, scratch, bundle));
    const { componentize } = await import("@bytecodealliance/componentize-js");
    const { component } = await componentize({ sourcePath: bundle, witPath: resolve(wit), worldName: "task-component" });
    await writeFile(output, component);
    return component.length;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** A build that cannot go on; the message says why. */
export class BuildError extends Error {}

async function bundleOf(source, scratch, outfile) {
  const entry = join(scratch, "entry.js");
  await writeFile(
    entry,
    `import * as tasks from ${JSON.stringify(source)};\n` +
      `import { exportTasks } from ${JSON.stringify(join(SDK, "src/component.js"))};\n` +
      "export const task = exportTasks(tasks);\n",
  );
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    keepNames: true,
    external: ["sandflow:*", "wasi:*"],
    alias: { sandflow: join(SDK, "src/index.js") },
    sourcemap: "external",
    sourcesContent: false,
    write: false,
    logLevel: "silent",
  }).catch((e) => {
    throw new BuildError(e.errors?.map((m) => esbuildMessage(m)).join("\n") || e.message);
  });
  const code = result.outputFiles.find((f) => f.path.endsWith(".js")).text;
  const map = JSON.parse(result.outputFiles.find((f) => f.path.endsWith(".map")).text);
  const positions = JSON.stringify({ sources: map.sources, mappings: map.mappings });
  return `${code}\nglobalThis[Symbol.for("sandflow.source-map")] = ${positions};\n`;
}

function esbuildMessage(m) {
  const at = m.location ? `${m.location.file}:${m.location.line}:${m.location.column}: ` : "";
  return `${at}${m.text}`;
}

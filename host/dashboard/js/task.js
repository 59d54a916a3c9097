// A task's page: what it is (type, state, cluster, parent, dependencies),
// its input and output, each failed attempt's error, timings and usage,
// its logs (followed while it runs) and a waterfall of its spans.

import { get } from "./api.js";
import { badge, between, bytes, duration, h, json, link, table, when } from "./dom.js";
import { logTail } from "./job.js";

const finished = (t) => ["computed", "failed", "failed_optional", "skipped"].includes(t.state);

function facts(job, t) {
  const usage = t.usage || {};
  const rows = [
    ["Job", link(`#/jobs/${job}`, job)],
    ["Type", `${t.task_type.name} ${t.task_type.version}`],
    ["Ran version", t.ran_version || "–"],
    ["Cluster", t.cluster],
    ["Attempts", `${t.attempts} (retries allowed: ${t.max_retries})`],
    ["Optional", t.optional ? "yes" : "no"],
    ["Created", when(t.created_at)],
    ["Started", when(t.started_at)],
    ["Finished", when(t.finished_at)],
    ["Took", between(t.started_at, t.finished_at)],
    ["CPU", usage.cpu_us === undefined ? "–" : duration(usage.cpu_us / 1000)],
    ["Peak memory", bytes(usage.peak_memory_bytes)],
    t.not_before ? ["Not before", when(t.not_before)] : null,
    t.parent ? ["Parent", link(`#/jobs/${job}/tasks/${t.parent}`, t.parent)] : null,
  ].filter(Boolean);
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function attempts(t) {
  if (!t.errors.length) return h("p", {}, "No attempt failed.");
  const rows = t.errors.map((e) => [String(e.attempt), h("pre", { class: "error-text" }, e.message),
    e.usage ? duration(e.usage.cpu_us / 1000) : "–"]);
  return table("Failed attempts", ["Attempt", "Error", "CPU"], rows);
}

function output(job, t) {
  if (t.state !== "computed") return h("p", {}, "No output yet.");
  if (t.output_bytes === undefined) return h("p", {}, "It left no output.");
  if (t.output !== undefined) return json(t.output);
  return h("p", {}, `${bytes(t.output_bytes)}, not shown here (over 64 KiB, or not JSON): `,
    h("code", {}, `sandflow job output ${job} --task ${t.id}`));
}

/** Spans as bars on one time axis, the earliest start at its left. */
function waterfall(trace) {
  const spans = trace.spans;
  if (!spans.length) return h("p", {}, "No spans.");
  const start = Math.min(...spans.map((s) => Date.parse(s.start)));
  const end = Math.max(...spans.map((s) => Date.parse(s.end)), start + 1);
  const rows = spans.map((s) => {
    const left = (100 * (Date.parse(s.start) - start)) / (end - start);
    const width = Math.max(0.5, (100 * (Date.parse(s.end) - Date.parse(s.start))) / (end - start));
    const label = `${s.name}: ${s.duration_ms} ms (attempt ${s.attempt ?? "–"})`;
    return h("li", { class: "span" }, h("span", { class: "span-name" }, s.name),
      h("span", { class: "span-track" }, h("span", { class: "span-bar", style: `left: ${left}%; width: ${width}%`, title: label })),
      h("span", { class: "span-time" }, `${s.duration_ms} ms`));
  });
  return h("ol", { class: "waterfall", "aria-label": "Spans by start time" }, rows);
}

export async function taskPage(ctx, job, id) {
  const box = h("div", { id: "task" });
  const logs = h("ol", { id: "task-logs", class: "logs", "aria-label": "Log lines" });
  const tail = logTail(ctx, job, logs, id);
  const section = (title, key, body) => h("section", { "aria-labelledby": key }, h("h2", { id: key }, title), body);
  const load = async () => {
    const [t, trace] = await Promise.all([
      get(`/v1/jobs/${job}/tasks/${id}`, ctx.signal),
      get(`/v1/jobs/${job}/spans?task=${id}`, ctx.signal),
    ]);
    const deps = t.depends_on.length ? h("ul", {}, t.depends_on.map((d) => h("li", {}, link(`#/jobs/${job}/tasks/${d}`, d)))) : h("p", {}, "None.");
    box.replaceChildren(
      h("h1", {}, t.display, " ", badge(t.state)),
      t.error ? h("div", { class: "error", role: "alert", id: "task-error" }, h("strong", {}, "Error: "), h("pre", { class: "error-text" }, t.error)) : null,
      facts(job, t),
      section("Input", "input-title", json(t.input)),
      section("Output", "output-title", output(job, t)),
      section("Attempts", "attempts-title", attempts(t)),
      section("Depends on", "deps-title", deps),
      section("Spans", "spans-title", waterfall(trace)),
    );
    tail();
    return t;
  };
  ctx.main.append(box, h("section", { "aria-labelledby": "task-logs-title" },
    h("h2", { id: "task-logs-title" }, "Logs"), h("div", { class: "log-box" }, logs)));
  let last = await load();
  ctx.every(2000, async () => {
    if (!finished(last)) last = await load().catch(() => last);
  });
}

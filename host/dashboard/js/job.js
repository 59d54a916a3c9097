// A job's page: its header and counts, the actions (cancel, forced cancel,
// retry, clone, delete; each confirmed), its live graph (the host's
// diagram, redrawn as the job's event stream reports changes; big jobs in
// groups), the task table (paged) and the logs that follow.

import { follow, get, post, query, remove } from "./api.js";
import { STATES, badge, between, confirm, countsBar, duration, errorBox, errorText, h, link, notice, table, theme, when } from "./dom.js";

const PAGE = 50;
const MAX_LOG_LINES = 2000;

/**
 * Runs `fn` at most once per `ms` (or per four times its last run, when
 * that is longer: a big job's reads cost the host more), never twice at
 * once, and once more after the last call.
 */
function coalesce(fn, ms) {
  let running = false;
  let again = false;
  const run = async () => {
    if (running) return void (again = true);
    running = true;
    const started = performance.now();
    try {
      await fn();
    } catch {
      // The next change tries again; the page shows what it last read.
    }
    setTimeout(() => {
      running = false;
      if (again) (again = false), run();
    }, Math.max(ms, 4 * (performance.now() - started)));
  };
  return run;
}

const ended = (job) => ["completed", "failed", "canceled"].includes(job.state) && job.task_counts.running === 0;

function header(job) {
  const stats = job.stats || {};
  const facts = [
    ["Id", h("code", {}, job.id)],
    ["Cluster", job.cluster],
    ["Priority", String(job.priority)],
    ["Submitted", when(job.submitted_at)],
    ["Elapsed", duration(stats.elapsed_ms)],
    ["Compute", duration(stats.compute_ms)],
    job.automation ? ["Automation", link(`#/jobs?automation=${job.automation}`, job.automation)] : null,
  ].filter(Boolean);
  const progress = Object.entries(job.progress || {}).map(([label, p]) =>
    h("div", { class: "progress-line" }, h("label", {}, label, " ", h("progress", { max: p.total || 1, value: p.done }), ` ${p.done} / ${p.total}`)));
  return [
    h("h1", {}, job.name, " ", badge(job.state)),
    countsBar(job.task_counts),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    progress.length ? h("section", { "aria-label": "Progress" }, progress) : null,
  ];
}

function actions(job, act) {
  const running = !["completed", "failed", "canceled"].includes(job.state);
  const button = (label, id, enabled, handler, danger) =>
    h("button", { type: "button", id, disabled: !enabled, class: danger ? "danger" : null, onclick: handler }, label);
  return [
    button("Cancel", "a-cancel", running, () => act("Cancel this job? Queued tasks will not start.", "Cancel job", () => post(`/v1/jobs/${job.id}/cancel`))),
    button("Force cancel", "a-force", job.task_counts.running > 0, () => act("Force-cancel this job? Running tasks are interrupted and fail.", "Force cancel", () => post(`/v1/jobs/${job.id}/cancel?force=true`)), true),
    button("Retry", "a-retry", ["failed", "canceled"].includes(job.state), () => act("Retry this job's failed and canceled tasks?", "Retry", () => post(`/v1/jobs/${job.id}/retry`))),
    button("Clone", "a-clone", true, () => act("Submit a new job with this job's roots?", "Clone", async () => {
      const copy = await post(`/v1/jobs/${job.id}/clone`, {});
      location.hash = `#/jobs/${copy.id}`;
    })),
    button("Delete", "a-delete", true, () => act("Delete this job and everything it recorded? This cannot be undone.", "Delete", async () => {
      await remove(`/v1/jobs/${job.id}`);
      location.hash = "#/jobs";
    }), true),
  ];
}

export async function jobPage(ctx, id) {
  let job = await get(`/v1/jobs/${id}`, ctx.signal);
  const top = h("div", { id: "job-header" });
  const bar = h("div", { class: "actions", role: "group", "aria-label": "Job actions" });
  const graph = h("div", { id: "graph", class: "graph", "aria-live": "off" });
  const tasks = h("div", { id: "tasks" });
  const logs = h("ol", { id: "logs", class: "logs", "aria-label": "Log lines" });
  ctx.main.append(top, bar,
    h("section", { "aria-labelledby": "graph-title" }, h("h2", { id: "graph-title" }, "Graph"), graph),
    h("section", { "aria-labelledby": "tasks-title" }, h("h2", { id: "tasks-title" }, "Tasks"), tasks),
    h("section", { "aria-labelledby": "logs-title" }, h("h2", { id: "logs-title" }, "Logs"), h("div", { class: "log-box" }, logs)));
  let wake = () => {};
  const act = async (text, label, fn) => {
    if (!(await confirm(text, label))) return;
    try {
      await fn();
      notice(`${label}: done`);
      wake();
    } catch (error) {
      notice(errorText(error), true);
    }
  };
  const table = taskTable(ctx, id, tasks);
  const draw = coalesce(graphDrawer(ctx, id, graph, table.group), 250);
  const tail = logTail(ctx, id, logs);
  const show = (view) => {
    job = view;
    top.replaceChildren(...header(job).filter(Boolean));
    bar.replaceChildren(...actions(job, act));
    draw();
    table.refresh(job.task_counts.total);
    tail();
  };
  show(job);
  (async () => {
    while (!ctx.signal.aborted) {
      await follow(`/v1/jobs/${id}/events`, show, ctx.signal).catch(() => {});
      if (ctx.signal.aborted) return;
      if (ended(job)) await new Promise((resolve) => (wake = resolve));
      else await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
}

/** Draws the host's diagram into `box` when it changed, keeping the focused node focused. */
function graphDrawer(ctx, id, box, onGroup) {
  let last = "";
  return async () => {
    let svg;
    try {
      svg = await get(`/v1/jobs/${id}/diagram.svg?theme=${theme()}`, ctx.signal);
    } catch (error) {
      if (!ctx.signal.aborted) box.replaceChildren(errorBox(error));
      last = "";
      return;
    }
    if (svg === last) return;
    last = svg;
    const active = box.contains(document.activeElement) ? document.activeElement.dataset : {};
    const focused = active.task ? `g.task[data-task="${active.task}"]` : active.group ? `g.group[data-group="${active.group}"]` : null;
    box.innerHTML = svg;
    for (const node of box.querySelectorAll("g.task[data-task]")) linkNode(node, () => (location.hash = `#/jobs/${id}/tasks/${node.dataset.task}`));
    for (const node of box.querySelectorAll("g.group")) {
      linkNode(node, () => onGroup(node.dataset.taskType, node.dataset.parent, node.querySelector("tspan").textContent));
    }
    if (focused) box.querySelector(focused)?.focus();
  };
}

/** Makes a box of the diagram a link (to a task's page, or to a group's tasks), for the mouse and the keyboard. */
function linkNode(node, open) {
  node.setAttribute("tabindex", "0");
  node.setAttribute("role", "link");
  node.setAttribute("aria-label", `${node.textContent.trim()} (${node.dataset.state.replace("_", " ")})`);
  node.addEventListener("click", open);
  node.addEventListener("keydown", (e) => (e.key === "Enter" ? open() : null));
}

/** The task table: one page of tasks (of a state, of a group), read again as the job changes. */
function taskTable(ctx, id, box) {
  let offset = 0;
  let total = 0;
  const filter = { state: "", task_type: "", parent: "", label: "" };
  const load = coalesce(async () => {
    const asked = { offset, limit: PAGE + 1, state: filter.state, task_type: filter.task_type, parent: filter.parent };
    const page = await get(`/v1/jobs/${id}/tasks${query(asked)}`, ctx.signal);
    const more = page.length > PAGE;
    const rows = page.slice(0, PAGE).map((t) => [
      link(`#/jobs/${id}/tasks/${t.id}`, t.display),
      `${t.task_type.name} ${t.task_type.version}`,
      badge(t.state),
      `${t.attempts} (retries ${t.max_retries})`,
      when(t.started_at),
      between(t.started_at, t.finished_at),
    ]);
    const shown = Math.min(page.length, PAGE);
    const filtered = filter.state || filter.task_type;
    const range = shown ? `Tasks ${offset + 1} to ${offset + shown}` : "No tasks";
    const caption = filtered ? `${range} of ${[filter.label, filter.state.replace("_", " ")].filter(Boolean).join(", ")}`
      : total > PAGE ? `${range} of ${total}` : `${total} tasks`;
    const move = (by) => () => ((offset = Math.max(0, offset + by)), load());
    box.replaceChildren(filters(), table(caption, ["Task", "Type", "State", "Attempts", "Started", "Took"], rows),
      offset > 0 || more ? h("nav", { class: "pager", "aria-label": "Pages of tasks" },
        h("button", { type: "button", disabled: offset === 0, onclick: move(-PAGE) }, "Previous"),
        h("button", { type: "button", disabled: !more, onclick: move(PAGE) }, "Next")) : null);
  }, 500);
  const filters = () => {
    const select = h("select", { id: "task-state", onchange: (e) => ((filter.state = e.target.value), (offset = 0), load()) },
      h("option", { value: "" }, "every state"), STATES.map((s) => h("option", { value: s, selected: filter.state === s }, s.replace("_", " "))));
    const clear = () => (Object.assign(filter, { task_type: "", parent: "", label: "" }), (offset = 0), load());
    return h("div", { class: "table-filters" }, h("label", { for: "task-state" }, "Show "), select,
      filter.task_type ? h("button", { type: "button", id: "task-group-clear", onclick: clear }, `${filter.label}: show every task`) : null);
  };
  return {
    refresh: (count) => ((total = count), load()),
    /** Shows the tasks of one group of the diagram. */
    group(taskType, parent, label) {
      Object.assign(filter, { task_type: taskType, parent: parent || "", label });
      offset = 0;
      load();
      box.scrollIntoView({ block: "start" });
    },
  };
}

/** The log lines after the last read, appended; `cursor` follows the job. */
export function logTail(ctx, id, list, task) {
  let cursor;
  return coalesce(async () => {
    for (let more = true; more && !ctx.signal.aborted; ) {
      const page = await get(`/v1/jobs/${id}/logs${query({ cursor, task, limit: 1000 })}`, ctx.signal);
      for (const line of page.logs) list.append(logLine(id, line));
      while (list.children.length > MAX_LOG_LINES) list.firstChild.remove();
      if (page.cursor) cursor = page.cursor;
      more = page.more;
    }
    const box = list.parentElement;
    box.scrollTop = box.scrollHeight;
  }, 500);
}

function logLine(id, line) {
  const fields = Object.entries(line.fields).map(([k, v]) => h("span", { class: "field" }, `${k}=${v}`));
  return h("li", { class: `log level-${line.level}` },
    h("time", { datetime: line.time }, new Date(line.time).toLocaleTimeString()), " ",
    h("span", { class: "level" }, line.level), " ",
    link(`#/jobs/${id}/tasks/${line.task}`, line.task.slice(0, 8)), " ",
    h("span", { class: "message" }, line.message), " ", fields);
}

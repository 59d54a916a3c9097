// The jobs page: the list with the API's filters (state, name, cluster,
// time range), paged by cursor, each job's live state and a bar of its
// tasks by state; refreshed every two seconds while open.

import { get, query } from "./api.js";
import { badge, countsBar, h, link, table, when } from "./dom.js";

const JOB_STATES = ["submitted", "running", "started", "completed", "failed", "canceled"];
const FILTERS = ["state", "name_contains", "cluster", "from", "to", "automation", "cursor"];

function filterForm(params) {
  const chosen = new Set((params.get("state") || "").split(",").filter(Boolean));
  const field = (name, label, type = "text") =>
    h("div", { class: "field" }, h("label", { for: `f-${name}` }, label),
      h("input", { id: `f-${name}`, name, type, value: local(params.get(name), type) }));
  const states = h("fieldset", { class: "states" }, h("legend", {}, "State"),
    JOB_STATES.map((s) => h("label", {}, h("input", { type: "checkbox", name: "state", value: s, checked: chosen.has(s) }), ` ${s}`)));
  const form = h("form", { class: "filters", "aria-label": "Filter jobs", onsubmit: (e) => apply(e, form, params) },
    states, field("name_contains", "Name contains"), field("cluster", "Cluster"),
    field("from", "Submitted from", "datetime-local"), field("to", "Submitted before", "datetime-local"),
    h("div", { class: "field actions" }, h("button", { type: "submit" }, "Filter"), h("a", { href: "#/jobs", class: "button" }, "Clear")));
  return form;
}

/** A `datetime-local` input's value for an RFC 3339 time. */
function local(iso, type) {
  if (!iso || type !== "datetime-local") return iso || "";
  const d = new Date(iso);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function apply(event, form, params) {
  event.preventDefault();
  const data = new FormData(form);
  const next = new URLSearchParams();
  const states = data.getAll("state");
  if (states.length) next.set("state", states.join(","));
  for (const name of ["name_contains", "cluster"]) if (data.get(name)) next.set(name, data.get(name).trim());
  for (const name of ["from", "to"]) if (data.get(name)) next.set(name, new Date(data.get(name)).toISOString());
  if (params.get("automation")) next.set("automation", params.get("automation"));
  location.hash = `#/jobs?${next}`;
}

function rows(jobs) {
  return jobs.map((job) => [
    link(`#/jobs/${job.id}`, job.name),
    badge(job.state),
    countsBar(job.task_counts),
    String(job.task_counts.total),
    job.cluster,
    when(job.submitted_at),
  ]);
}

export async function jobsPage(ctx) {
  const params = ctx.params;
  const q = Object.fromEntries(FILTERS.map((f) => [f, params.get(f)]));
  const holder = h("div", { id: "jobs" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of jobs" });
  ctx.main.append(h("h1", {}, "Jobs"), filterForm(params), holder, pager);
  const load = async () => {
    const page = await get(`/v1/jobs${query({ ...q, limit: 50 })}`, ctx.signal);
    holder.replaceChildren(table("Jobs, newest first", ["Name", "State", "Tasks", "Total", "Cluster", "Submitted"], rows(page.jobs)));
    const next = new URLSearchParams(params);
    if (page.next_cursor) next.set("cursor", page.next_cursor);
    pager.replaceChildren(
      params.get("cursor") ? link(`#/jobs?${withoutCursor(params)}`, "First page") : null,
      page.next_cursor ? link(`#/jobs?${next}`, "Next page") : null,
    );
  };
  await load();
  ctx.every(2000, () => load().catch(() => {}));
}

function withoutCursor(params) {
  const copy = new URLSearchParams(params);
  copy.delete("cursor");
  return copy;
}

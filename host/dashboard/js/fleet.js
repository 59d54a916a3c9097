// The pages of what runs jobs and what submits them: clusters (with their
// concurrency limits), runners (refreshed while open), modules with their
// task types, and automations (pause and resume).

import { get, patch } from "./api.js";
import { badge, bytes, errorText, h, link, notice, table, when } from "./dom.js";

export async function clustersPage(ctx) {
  const clusters = await get("/v1/clusters", ctx.signal);
  const limits = (c) => c.concurrency.map((l) => `${l.task}${l.key || ""} ≤ ${l.max}`).join(", ") || "none";
  ctx.main.append(h("h1", {}, "Clusters"), table("Clusters", ["Slug", "Name", "Description", "Concurrency limits", "Created"],
    clusters.map((c) => [h("code", {}, c.slug), c.name, c.description, limits(c), when(c.created_at)])));
}

export async function runnersPage(ctx) {
  const holder = h("div");
  ctx.main.append(h("h1", {}, "Runners"), holder);
  const load = async () => {
    const runners = await get("/v1/runners", ctx.signal);
    holder.replaceChildren(table("Runners heard from", ["Id", "Kind", "Cluster", "Running", "Capacity", "Last seen"],
      runners.map((r) => [h("code", {}, r.id), r.kind, r.cluster, String(r.in_flight), String(r.capacity),
        new Date(r.last_seen_ms).toLocaleString()])));
  };
  await load();
  ctx.every(2000, () => load().catch(() => {}));
}

export async function modulesPage(ctx) {
  const [modules, types] = await Promise.all([get("/v1/modules", ctx.signal), get("/v1/task-types", ctx.signal)]);
  ctx.main.append(
    h("h1", {}, "Modules"),
    table("Uploaded modules", ["Digest", "Size", "Task types", "Timeout", "Memory", "Uploaded"],
      modules.map((m) => [h("code", { title: m.digest }, m.digest.slice(0, 16)), bytes(m.size),
        m.task_types.map((t) => `${t.name} ${t.version}`).join(", "),
        m.timeout_ms ? `${m.timeout_ms} ms` : "default", m.memory_mib ? `${m.memory_mib} MiB` : "default",
        when(m.uploaded_at)])),
    table("Registered task types", ["Task type", "Version", "Module"],
      types.map((t) => [t.name, t.version, h("code", { title: t.module }, t.module.slice(0, 16))])),
  );
}

export async function automationsPage(ctx) {
  const holder = h("div");
  ctx.main.append(h("h1", {}, "Automations"), holder);
  const toggle = (a) => async () => {
    try {
      await patch(`/v1/automations/${a.id}`, { paused: !a.paused });
      notice(`${a.name}: ${a.paused ? "resumed" : "paused"}`);
      await load();
    } catch (error) {
      notice(errorText(error), true);
    }
  };
  const load = async () => {
    const items = await get("/v1/automations", ctx.signal);
    holder.replaceChildren(table("Automations", ["Name", "Task", "Triggers", "State", "Next", "Last fired", "Jobs", "Actions"],
      items.map((a) => [a.name, a.task, a.triggers.join("; "), badge(a.paused ? "paused" : "active"),
        when(a.next_scheduled_at), when(a.last_fired_at), link(`#/jobs?automation=${a.id}`, `${a.fired} fired`),
        h("button", { type: "button", onclick: toggle(a) }, a.paused ? "Resume" : "Pause")])));
  };
  await load();
}

// The submit page: a form for a job (name, root task type chosen from the
// registry, JSON input checked as it is typed, cluster, retries, priority);
// a submitted job opens its own page.

import { get, post } from "./api.js";
import { errorBox, h } from "./dom.js";

function field(id, label, input, hint) {
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

/** The input's JSON, or the reason it is not JSON. */
function parse(text) {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: `not JSON: ${error.message}` };
  }
}

export async function submitPage(ctx) {
  const [types, clusters] = await Promise.all([get("/v1/task-types", ctx.signal), get("/v1/clusters", ctx.signal)]);
  const type = h("select", { id: "s-task", name: "task", required: true },
    types.map((t) => h("option", { value: `${t.name}@${t.version}` }, `${t.name} ${t.version}`)));
  const cluster = h("select", { id: "s-cluster", name: "cluster" },
    clusters.map((c) => h("option", { value: c.slug }, c.name === c.slug ? c.slug : `${c.name} (${c.slug})`)));
  const input = h("textarea", { id: "s-input", name: "input", rows: 8, spellcheck: "false", "aria-describedby": "s-input-hint" }, "{}");
  const hint = "The root task's input, as JSON.";
  const name = h("input", { id: "s-name", name: "name", required: true, maxlength: 256, value: "" });
  const retries = h("input", { id: "s-retries", name: "max_retries", type: "number", min: 0, max: 1000, value: 0 });
  const priority = h("input", { id: "s-priority", name: "priority", type: "number", min: -10, max: 10, value: 0 });
  const status = h("div", { class: "form-status", "aria-live": "polite" });
  const button = h("button", { type: "submit", id: "s-submit" }, "Submit");
  const check = () => {
    const parsed = parse(input.value);
    const note = document.getElementById("s-input-hint");
    note.textContent = parsed.error || hint;
    note.className = parsed.error ? "hint error" : "hint";
    input.setAttribute("aria-invalid", parsed.error ? "true" : "false");
    button.disabled = Boolean(parsed.error) || types.length === 0;
    return parsed;
  };
  input.addEventListener("input", check);
  type.addEventListener("change", () => (name.value ||= type.value.split("@")[0]));
  const send = async (event) => {
    event.preventDefault();
    const parsed = check();
    if (parsed.error) return input.focus();
    const body = { name: name.value.trim(), task: type.value, input: parsed.value, cluster: cluster.value,
      max_retries: Number(retries.value), priority: Number(priority.value) };
    button.disabled = true;
    try {
      const job = await post("/v1/jobs", body);
      location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      status.replaceChildren(errorBox(error));
      button.disabled = false;
    }
  };
  ctx.main.append(
    h("h1", {}, "Submit a job"),
    types.length ? null : h("p", { class: "error" }, "No task type is registered yet: upload a module first (sandflow module upload)."),
    h("form", { class: "submit", onsubmit: send },
      field("s-name", "Job name", name),
      field("s-task", "Root task type", type),
      field("s-input", "Input", input, hint),
      field("s-cluster", "Cluster", cluster),
      field("s-retries", "Retries per task", retries),
      field("s-priority", "Priority (-10 to 10)", priority),
      status, button),
  );
  if (types.length) name.value = type.value.split("@")[0];
  check();
}

// Small DOM helpers shared by the pages: element building, formatting of
// times and sizes, state badges, bars of task counts, tables, the
// confirmation dialog and the notice line.

/** An element with attributes (`onclick` and the like become listeners) and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** The theme in use (`light` or `dark`), as the page's root element says. */
export function theme() {
  return document.documentElement.dataset.theme || "light";
}

export const STATES = ["queued", "running", "computed", "failed", "failed_optional", "skipped"];

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function duration(ms) {
  if (ms === undefined || ms === null) return "–";
  if (ms < 10) return `${Number(ms.toFixed(2))} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function between(start, end) {
  return start && end ? duration(new Date(end) - new Date(start)) : "–";
}

export function bytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function badge(state) {
  return h("span", { class: `badge state-${state}`, "data-state": state }, state.replace("_", " "));
}

/** A bar of a job's task counts by state, with the counts as its label. */
export function countsBar(counts) {
  const total = counts.total || 0;
  const done = total - counts.queued - counts.running;
  const parts = STATES.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s.replace("_", " ")}`);
  const label = total ? `${done} of ${total} tasks finished: ${parts.join(", ")}` : "no tasks yet";
  const bar = h("div", { class: "bar", role: "img", "aria-label": label, title: label });
  for (const state of STATES) {
    if (!counts[state]) continue;
    bar.append(h("span", { class: `state-${state}`, style: `width: ${(100 * counts[state]) / total}%` }));
  }
  return bar;
}

/** A table with a caption, column headers and rows of cells. */
export function table(caption, columns, rows) {
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.length ? rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c)))) : h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "None."))),
    ),
  );
}

/** Asks in the confirmation dialog; resolves true when confirmed. */
export function confirm(text, action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  const ok = document.getElementById("confirm-ok");
  const no = document.getElementById("confirm-no");
  ok.textContent = action;
  return new Promise((resolve) => {
    const done = (answer) => () => {
      ok.onclick = no.onclick = dialog.oncancel = null;
      dialog.close();
      resolve(answer);
    };
    ok.onclick = done(true);
    no.onclick = done(false);
    dialog.oncancel = done(false);
    dialog.showModal();
    no.focus();
  });
}

/** Shows a short message in the notice line (errors stay until the next one). */
export function notice(text, isError = false) {
  const line = document.getElementById("notice");
  line.textContent = text;
  line.className = isError ? "error" : "";
  clearTimeout(notice.timer);
  if (!isError) notice.timer = setTimeout(() => (line.textContent = ""), 4000);
}

/** An error's own words, as the API gave them. */
export function errorText(error) {
  return error && error.code ? `${error.message} (${error.code})` : String(error && error.message ? error.message : error);
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, errorText(error));
}

/** Pretty JSON in a block. */
export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function link(href, text) {
  return h("a", { href }, text);
}

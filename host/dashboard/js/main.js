// The dashboard's entry: the router (pages live in the URL's fragment, so
// the host serves one page), the page context (an AbortSignal and timers
// that end when the user leaves the page), the theme switch and the login
// that appears when the host asks for a token.

import { ApiError, token } from "./api.js";
import { errorBox, h, theme } from "./dom.js";
import { jobsPage } from "./jobs.js";
import { submitPage } from "./submit.js";
import { jobPage } from "./job.js";
import { taskPage } from "./task.js";
import { automationsPage, clustersPage, modulesPage, runnersPage } from "./fleet.js";

const ID = "[0-9a-fA-F-]{36}";
const ROUTES = [
  [new RegExp(`^/jobs/(${ID})/tasks/(${ID})$`), "jobs", (ctx, m) => taskPage(ctx, m[1], m[2])],
  [new RegExp(`^/jobs/(${ID})$`), "jobs", (ctx, m) => jobPage(ctx, m[1])],
  [/^\/jobs$/, "jobs", (ctx) => jobsPage(ctx)],
  [/^\/submit$/, "submit", (ctx) => submitPage(ctx)],
  [/^\/automations$/, "automations", (ctx) => automationsPage(ctx)],
  [/^\/clusters$/, "clusters", (ctx) => clustersPage(ctx)],
  [/^\/runners$/, "runners", (ctx) => runnersPage(ctx)],
  [/^\/modules$/, "modules", (ctx) => modulesPage(ctx)],
];

let current = null;

/** What a page gets: where to draw, its query, and work that ends with it. */
function context(main, params) {
  const controller = new AbortController();
  const timers = [];
  return {
    main,
    params,
    signal: controller.signal,
    every(ms, fn) {
      timers.push(setInterval(fn, ms));
    },
    end() {
      controller.abort();
      timers.forEach(clearInterval);
    },
  };
}

async function route() {
  if (current) current.end();
  const main = document.getElementById("main");
  const [path, search] = (location.hash.slice(1) || "/jobs").split("?");
  const found = ROUTES.map(([re, nav, page]) => [re.exec(path), nav, page]).find(([m]) => m);
  document.querySelectorAll("[data-nav]").forEach((a) => {
    if (found && a.dataset.nav === found[1]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  document.getElementById("logout").hidden = !token.get();
  const ctx = context(main, new URLSearchParams(search || ""));
  current = ctx;
  main.replaceChildren();
  try {
    if (!found) throw new ApiError(404, "not_found", `no page ${path}`);
    await found[2](ctx, found[0]);
  } catch (error) {
    if (ctx.signal.aborted) return;
    if (error instanceof ApiError && error.status === 401) return login(main, error);
    main.replaceChildren(h("h1", {}, "Something went wrong"), errorBox(error));
  }
}

/** The login form: the token is kept for this tab only, and the page asked for is drawn again. */
function login(main, error) {
  const input = h("input", { id: "token", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "login", onsubmit: (e) => (e.preventDefault(), token.set(input.value.trim()), route()) },
    h("h1", {}, "Log in"),
    h("p", {}, "This host needs an admin token (from its token file)."),
    token.get() ? errorBox(error) : null,
    h("label", { for: "token" }, "Admin token"),
    input,
    h("button", { type: "submit" }, "Log in"),
  );
  main.replaceChildren(form);
  input.focus();
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  const button = document.getElementById("theme");
  const other = theme === "dark" ? "light" : "dark";
  button.textContent = other === "dark" ? "Dark" : "Light";
  button.setAttribute("aria-label", `Switch to the ${other} theme`);
}

function start() {
  const saved = localStorage.getItem("sandflow.theme");
  applyTheme(saved || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
  document.getElementById("theme").addEventListener("click", () => {
    const next = theme() === "dark" ? "light" : "dark";
    localStorage.setItem("sandflow.theme", next);
    applyTheme(next);
    route();
  });
  const logout = document.getElementById("logout");
  logout.addEventListener("click", () => (token.clear(), route()));
  window.addEventListener("hashchange", route);
  route();
}

start();

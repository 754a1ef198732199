// The UI's entry: theme, navigation, who is logged in, and which page to draw.
import { ApiError, whoami } from "./api.js";
import { clear, errorBox, h, main } from "./dom.js";
import { workflowsPage } from "./workflows.js";
import { workflowPage } from "./workflow.js";
import { schedulePage, schedulesPage } from "./schedules.js";

const THEME_KEY = "perdure-theme";

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}

function initTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  applyTheme(saved || (dark ? "dark" : "light"));
  document.getElementById("theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
  });
}

const PAGES = {
  "": ["workflows", workflowsPage],
  workflow: ["workflows", workflowPage],
  schedules: ["schedules", schedulesPage],
  schedule: ["schedules", schedulePage],
};

export async function route() {
  const name = location.pathname.split("/").pop();
  const [nav, draw] = PAGES[name] || PAGES[""];
  for (const link of document.querySelectorAll(".nav a")) {
    link.classList.toggle("active", link.dataset.page === nav);
  }
  try {
    await draw(new URLSearchParams(location.search));
  } catch (error) {
    const login = error instanceof ApiError && error.status === 401
      ? h("p", { text: "Open the login URL that perdure server printed (/?token=TOKEN)." })
      : null;
    clear(main(), errorBox(error, login));
  }
}

async function start() {
  initTheme();
  try {
    const me = await whoami();
    const role = document.getElementById("role");
    role.textContent = me.role === "write" ? "read & write" : "read only";
    role.classList.add(me.role);
    role.hidden = false;
  } catch {
    // route() shows the error
  }
  window.addEventListener("popstate", route);
  await route();
}

start();

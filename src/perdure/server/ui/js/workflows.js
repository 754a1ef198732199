// The workflows page: a visibility query, quick filters and counts by status, a page of
// workflows, paging and auto-refresh; the view (query, status, page) lives in the URL.
import { ApiError, get } from "./api.js";
import {
  STATUSES, STATUS_QUERY, badge, clear, duration, empty, errorBox, fmtDuration, fmtTime, h,
  main, statusLabel,
} from "./dom.js";

const EXAMPLES = [
  "ExecutionStatus = 'Running'",
  "WorkflowType = 'Checkout' AND ExecutionStatus = 'Failed'",
  "WorkflowId STARTS_WITH 'order-'",
  "StartTime > '2026-01-01T00:00:00Z'",
  "ExecutionStatus IN ('Failed', 'TimedOut') ORDER BY CloseTime DESC",
];
const REFRESH_KEY = "perdure-auto-refresh";
const REFRESH_MS = 5000;
let timer = null;

function effectiveQuery(query, status) {
  const filter = status ? `ExecutionStatus = '${STATUS_QUERY[status]}'` : "";
  if (!query) return filter;
  if (!filter) return query;
  // ORDER BY stays last.
  const m = query.match(/^(.*?)(\s+ORDER\s+BY\s+.*)?$/is);
  return `(${m[1]}) AND ${filter}${m[2] || ""}`;
}

function go(params, replace = false) {
  const u = new URL(location.href);
  u.search = "";
  for (const [k, v] of Object.entries(params)) if (v) u.searchParams.set(k, v);
  history[replace ? "replaceState" : "pushState"](null, "", u);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function workflowRef(wf) {
  const u = new URL("workflow", location.href);
  u.search = "";
  u.searchParams.set("id", wf.workflow_id);
  if (wf.run_id) u.searchParams.set("run_id", wf.run_id);
  return u.pathname + u.search;
}

function queryError(error, query) {
  const pos = error.problem && error.problem.position;
  if (!pos) return errorBox(error);
  const at = Math.max(0, pos - 1);
  return errorBox(error, h("pre", { class: "code query-error" },
    h("span", { text: query }), "\n", h("span", { class: "caret", text: " ".repeat(at) + "^" }),
    h("span", { class: "muted", text: ` column ${pos}` })));
}

async function counts(query, row) {
  const all = [["", query], ...STATUSES.map((st) => [st, effectiveQuery(query, st)])];
  const found = await Promise.all(all.map(([, q]) =>
    get("/api/v1/workflows/count", { query: q }).then((r) => r.count, () => null)));
  row.replaceChildren();
  const params = new URLSearchParams(location.search);
  const current = params.get("status") || "";
  all.forEach(([st], i) => {
    if (st && !found[i]) return;
    row.append(h("button", {
      type: "button",
      class: `chip ${st === current ? "active" : ""} ${st ? "st-" + st.toLowerCase() : ""}`,
      "data-status": st || "ALL",
      onclick: () => go({ query: params.get("query"), status: st, size: params.get("size") }),
    }, st ? statusLabel(st) : "All", h("span", { class: "count", text: found[i] ?? "?" })));
  });
}

function table(workflows) {
  if (!workflows.length) return empty("No workflows match.");
  return h("div", { class: "table-wrap" }, h("table", { class: "table workflows" },
    h("thead", {}, h("tr", {}, ["Status", "Workflow ID", "Type", "Start", "End", "Duration"]
      .map((t) => h("th", { text: t })))),
    h("tbody", {}, workflows.map((wf) => h("tr", {},
      h("td", { "data-label": "Status" }, badge(wf.status)),
      h("td", { "data-label": "Workflow ID", class: "id" },
        h("a", { href: workflowRef(wf), class: "wf-link", text: wf.workflow_id }),
        h("div", { class: "sub mono", text: wf.run_id })),
      h("td", { "data-label": "Type", text: wf.workflow_type }),
      h("td", { "data-label": "Start", class: "nowrap", title: wf.start_time,
        text: fmtTime(wf.start_time) }),
      h("td", { "data-label": "End", class: "nowrap", title: wf.close_time,
        text: fmtTime(wf.close_time) }),
      h("td", { "data-label": "Duration", class: "nowrap",
        text: fmtDuration(duration(wf.start_time, wf.close_time)) }))))));
}

export async function workflowsPage(params) {
  clearInterval(timer);
  const query = params.get("query") || "";
  const status = params.get("status") || "";
  const page = params.get("page") || "";
  const size = params.get("size") || "50";
  const effective = effectiveQuery(query, status);
  document.title = "Workflows · perdure";

  const box = h("input", {
    id: "query", name: "query", class: "query-input", value: query, spellcheck: "false",
    autocomplete: "off", placeholder: "A visibility query, e.g. WorkflowType = 'Checkout'",
    "aria-label": "Visibility query",
  });
  const examples = h("details", { class: "examples" }, h("summary", { text: "Examples" }),
    h("ul", {}, EXAMPLES.map((ex) => h("li", {}, h("button", {
      type: "button", class: "link mono", text: ex,
      onclick: () => go({ query: ex, size }),
    })))));
  const form = h("form", { class: "query-bar", onsubmit: (e) => {
    e.preventDefault();
    go({ query: box.value.trim(), status, size });
  } }, box, h("button", { class: "button primary", type: "submit", text: "Search" }),
  query ? h("button", { class: "button", type: "button", text: "Clear",
    onclick: () => go({ status, size }) }) : null);
  const chips = h("div", { class: "chips" });
  const results = h("div", { class: "results" }, h("p", { class: "muted", text: "Loading…" }));
  const auto = h("input", { type: "checkbox", id: "auto-refresh",
    checked: localStorage.getItem(REFRESH_KEY) === "1" });
  const pager = h("div", { class: "pager" });

  clear(main(),
    h("div", { class: "page-head" }, h("h1", { text: "Workflows" }),
      h("label", { class: "toggle" }, auto, " Auto-refresh")),
    form, examples, chips, results, pager);

  async function load() {
    counts(query, chips);
    try {
      const listing = await get("/api/v1/workflows",
        { query: effective, page_size: size, next_page_token: page });
      results.replaceChildren(table(listing.workflows));
      clear(pager,
        page ? h("button", { class: "button", type: "button", text: "⏮ First page",
          onclick: () => go({ query, status, size }) }) : null,
        h("span", { class: "muted", text: `${listing.workflows.length} shown` }),
        listing.next_page_token ? h("button", { class: "button", type: "button",
          id: "next-page", text: "Next page ▶",
          onclick: () => go({ query, status, size, page: listing.next_page_token }) }) : null,
        h("select", { "aria-label": "Page size", onchange: (e) =>
          go({ query, status, size: e.target.value }) },
        ["25", "50", "100", "200"].map((n) =>
          h("option", { value: n, text: `${n} / page`, selected: n === size }))));
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        results.replaceChildren(queryError(error, effective));
      } else {
        throw error;
      }
    }
  }

  const arm = () => {
    clearInterval(timer);
    if (auto.checked) timer = setInterval(() => {
      if (document.body.contains(results)) load(); else clearInterval(timer);
    }, REFRESH_MS);
  };
  auto.addEventListener("change", () => {
    localStorage.setItem(REFRESH_KEY, auto.checked ? "1" : "0");
    arm();
  });
  await load();
  arm();
}

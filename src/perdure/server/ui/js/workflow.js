// The workflow page: summary, the last workflow task failure, actions, and tabs for the
// history (timeline and events), pending activities, the call stack and time travel.
import { canWrite, enc, get, post } from "./api.js";
import {
  badge, card, clear, code, duration, empty, errorBox, field, fmtDuration, fmtTime, h, main,
} from "./dom.js";
import { actionBar } from "./actions.js";
import { historyList, loadHistory } from "./history.js";
import { timeline } from "./timeline.js";
import { hasCode, timeTravel } from "./timetravel.js";
import { workflowRef } from "./workflows.js";

const TABS = [["history", "History"], ["pending", "Pending activities"],
  ["stack", "Call stack"], ["travel", "Time travel"]];
let poll = null;

const link = (workflowId, runId, text) =>
  h("a", { href: workflowRef({ workflow_id: workflowId, run_id: runId }), class: "mono",
    text: text || workflowId });

function setParam(name, value) {
  const u = new URL(location.href);
  if (value) u.searchParams.set(name, value); else u.searchParams.delete(name);
  history.replaceState(null, "", u);
}

function relations(desc, events) {
  const first = events[0] ? events[0].attributes : {};
  const lastEvent = events[events.length - 1];
  const out = [];
  if (desc.parent) out.push(field("Parent", link(desc.parent.workflow_id, desc.parent.run_id)));
  const children = new Map();
  for (const e of events) {
    if (e.event_type === "StartChildWorkflowExecutionInitiated" ||
        e.event_type === "ChildWorkflowExecutionStarted") {
      const a = e.attributes;
      children.set(a.workflow_id, a.run_id || children.get(a.workflow_id) || "");
    }
  }
  if (children.size) {
    out.push(field("Children", h("ul", { class: "plain" },
      [...children].map(([id, run]) => h("li", {}, link(id, run))))));
  }
  const chain = [];
  if (first.continued_run_id) {
    chain.push(h("li", {}, "Continued from ", link(desc.workflow_id, first.continued_run_id,
      first.continued_run_id)));
  }
  if (lastEvent && lastEvent.event_type === "WorkflowExecutionContinuedAsNew") {
    const next = lastEvent.attributes.new_run_id || lastEvent.attributes.new_execution_run_id;
    if (next) chain.push(h("li", {}, "Continued as new in ", link(desc.workflow_id, next, next)));
  }
  if (desc.reset_from) {
    chain.push(h("li", {}, `Reset at event ${desc.reset_from.event_id} from `,
      link(desc.workflow_id, desc.reset_from.base_run_id, desc.reset_from.base_run_id),
      desc.reset_from.reason ? ` (${desc.reset_from.reason})` : ""));
  }
  if (desc.reset_to) {
    chain.push(h("li", {}, "Reset into ",
      link(desc.workflow_id, desc.reset_to.new_run_id, desc.reset_to.new_run_id),
      desc.reset_to.reason ? ` (${desc.reset_to.reason})` : ""));
  }
  if (chain.length) out.push(field("Run chain", h("ul", { class: "plain" }, chain)));
  return out;
}

function summaryCard(desc, events, outcome) {
  const input = events[0] ? events[0].attributes.input : undefined;
  let result = null;
  if (outcome && outcome.status === "COMPLETED") result = code(outcome.result);
  else if (outcome && outcome.failure) {
    result = h("div", { class: "failure" },
      h("strong", { text: `${outcome.failure.type}: ` }), h("span", { text: outcome.failure.message }),
      outcome.failure.stack_trace ? code(outcome.failure.stack_trace, "stack") : null);
  }
  const hasMap = (m) => m && Object.keys(m).length;
  return card(null, h("dl", { class: "summary" },
    field("Status", badge(desc.status)),
    field("Workflow type", h("span", { class: "mono", text: desc.workflow_type })),
    field("Run ID", h("span", { class: "mono", text: desc.run_id })),
    field("Task queue", h("span", { class: "mono", text: desc.task_queue })),
    field("Started", fmtTime(desc.start_time)),
    field("Closed", fmtTime(desc.close_time)),
    field("Duration", fmtDuration(duration(desc.start_time, desc.close_time))),
    field("History", `${desc.history_length} events`),
    ...relations(desc, events)),
  h("div", { class: "io" },
    h("div", {}, h("h3", { text: "Input" }), code(input ?? [])),
    h("div", { id: "result" }, h("h3", { text: outcome && outcome.failure ? "Failure" : "Result" }),
      result || h("p", { class: "muted", text: "Still running." }))),
  hasMap(desc.memo) || hasMap(desc.search_attributes) ? h("div", { class: "io" },
    h("div", {}, h("h3", { text: "Memo" }), code(desc.memo)),
    h("div", {}, h("h3", { text: "Search attributes" }), code(desc.search_attributes))) : null);
}

function taskFailure(desc) {
  const f = desc.last_workflow_task_failure;
  if (!f) return null;
  return h("section", { class: "alert error task-failure", role: "alert" },
    h("h2", { text: `Workflow task failing (attempt ${f.attempt})` }),
    h("p", {}, h("strong", { text: `${f.type}: ` }), h("span", { text: f.message })),
    code(f.stack_trace || "(no stack)", "stack"));
}

function pendingTable(desc) {
  const acts = desc.pending_activities;
  if (!acts.length) return empty("No pending activities.");
  return h("div", { class: "table-wrap" }, h("table", { class: "table pending" },
    h("thead", {}, h("tr", {}, ["Activity", "State", "Attempt", "Last heartbeat",
      "Next attempt", "Last failure"].map((t) => h("th", { text: t })))),
    h("tbody", {}, acts.map((a) => h("tr", {},
      h("td", { "data-label": "Activity" }, h("strong", { text: a.activity_type }),
        h("div", { class: "sub mono", text: `id ${a.activity_id}` })),
      h("td", { "data-label": "State", text: a.state }),
      h("td", { "data-label": "Attempt",
        text: `${a.attempt}${a.maximum_attempts ? ` of ${a.maximum_attempts}` : ""}` }),
      h("td", { "data-label": "Last heartbeat" }, fmtTime(a.last_heartbeat_time),
        a.heartbeat_details.length ? code(a.heartbeat_details) : null),
      h("td", { "data-label": "Next attempt", text: fmtTime(a.next_attempt_schedule_time) }),
      h("td", { "data-label": "Last failure" }, a.last_failure
        ? h("details", {}, h("summary", { text: `${a.last_failure.type}: ${a.last_failure.message}` }),
          code(a.last_failure.stack_trace || "(no stack)", "stack")) : "—"))))));
}

async function stackPanel(run, desc) {
  const out = h("div", {}, h("p", { class: "muted", text: "Asking a worker…" }));
  if (desc.status !== "RUNNING") {
    out.replaceChildren(empty("The run is closed: its code waits nowhere."));
    return out;
  }
  post(`${run.base}/queries/__stack_trace`, { timeout: 10 }, { run_id: run.runId })
    .then((a) => out.replaceChildren(
      h("p", { class: "muted", text: "Where the workflow's code waits (the __stack_trace query)." }),
      code(a.result, "stack")))
    .catch((e) => out.replaceChildren(errorBox(e)));
  return out;
}

function handlerNames(run) {
  let asked = null;
  return () => {
    asked = asked || post(`${run.base}/queries/__perdure_workflow_metadata`, { timeout: 5 },
      { run_id: run.runId }).then((a) => {
      const d = (a.result && a.result.definition) || {};
      const pick = (list) => (list || []).map((x) => x.name).filter(Boolean);
      return { signals: pick(d.signal_definitions), queries: pick(d.query_definitions),
        updates: pick(d.update_definitions) };
    });
    return asked;
  };
}

export async function workflowPage(params) {
  clearInterval(poll);
  const id = params.get("id");
  if (!id) throw new Error("No workflow id in the address (workflow?id=...)");
  const base = `/api/v1/workflows/${enc(id)}`;
  const requested = params.get("run_id") || "";
  const tab = params.get("tab") || "history";
  const [desc, writable] = await Promise.all([get(base, { run_id: requested }), canWrite()]);
  const run = { id, runId: desc.run_id, base };
  document.title = `${desc.workflow_id} · perdure`;
  const [{ events, next: firstNext }, outcome] = await Promise.all([loadHistory(base, desc.run_id),
    get(`${base}/result`, { run_id: desc.run_id }).catch(() => null)]);
  const open = desc.status === "RUNNING";
  let next = firstNext;
  const reload = () => workflowPage(new URLSearchParams(location.search));

  const panels = {};
  const tabBar = h("div", { class: "tabs", role: "tablist" });
  const body = h("div", { class: "tab-body" });
  let compact = localStorage.getItem("perdure-history") !== "full";
  const historyBox = h("div");
  const drawHistory = (highlight) => historyBox.replaceChildren(historyList(events,
    { compact, highlight, onStep: panels.travelReady ? stepTo : null }));
  const stepTo = (eventId) => { select("travel"); travel.show(eventId); };
  const travel = timeTravel(run, events, (eventId) => drawHistory(eventId));

  panels.history = () => h("div", {},
    card("Timeline", timeline(events, desc, (eventId) => {
      compact = false;
      drawHistory(eventId);
      const el = historyBox.querySelector(`[data-event-id="${eventId}"]`);
      if (el) { el.open = true; el.scrollIntoView({ block: "center" }); }
    })),
    card(null, h("div", { class: "card-head" }, h("h2", { text: "Event history" }),
      h("div", { class: "segmented" }, [["compact", "Compact"], ["full", "Full"]].map(([k, t]) =>
        h("button", { type: "button", class: (k === "compact") === compact ? "active" : "",
          id: `history-${k}`, text: t, onclick: () => {
            compact = k === "compact";
            localStorage.setItem("perdure-history", k);
            select("history");
          } })))),
    historyBox,
    next ? h("p", { class: "muted" }, `The first ${events.length} events are shown. `,
      h("button", { type: "button", class: "button", id: "history-more", text: "Load more",
        onclick: async () => {
          const more = await loadHistory(base, desc.run_id, next);
          events.push(...more.events);
          next = more.next;
          select("history");
        } })) : null));
  panels.pending = () => card(null, pendingTable(desc));
  panels.stack = () => { const box = h("div"); stackPanel(run, desc).then((el) => box.append(el)); return card(null, box); };
  panels.travel = () => card(null, travel);

  function select(name) {
    setParam("tab", name === "history" ? "" : name);
    for (const b of tabBar.children) b.classList.toggle("active", b.dataset.tab === name);
    body.replaceChildren(panels[name]());
    if (name === "history") drawHistory();
  }
  for (const [key, label] of TABS) {
    const count = key === "pending" ? desc.pending_activities.length : null;
    tabBar.append(h("button", { type: "button", role: "tab", "data-tab": key, id: `tab-${key}`,
      onclick: () => select(key) }, label, count ? h("span", { class: "count", text: count }) : null));
  }

  clear(main(),
    h("nav", { class: "crumbs" }, h("a", { href: "./", text: "Workflows" }), " / ",
      h("span", { class: "mono", text: desc.workflow_type })),
    h("div", { class: "page-head" },
      h("h1", { class: "wf-id" }, h("span", { id: "workflow-id", text: desc.workflow_id })),
      badge(desc.status)),
    actionBar(run, { writable, open, events, names: handlerNames(run), reload }),
    taskFailure(desc),
    summaryCard(desc, events, outcome),
    tabBar, body);
  select(TABS.some(([k]) => k === tab) ? tab : "history");
  hasCode(run).then((yes) => {
    panels.travelReady = yes;
    if (!yes) tabBar.querySelector('[data-tab="travel"]').remove();
    else if (tab === "history") drawHistory();
  });

  if (open) {
    poll = setInterval(async () => {
      if (!document.body.contains(body)) return clearInterval(poll);
      if (document.querySelector("dialog[open]")) return;
      try {
        const now = await get(base, { run_id: desc.run_id });
        if (now.history_length !== desc.history_length || now.status !== desc.status ||
            JSON.stringify(now.pending_activities) !== JSON.stringify(desc.pending_activities)) {
          clearInterval(poll);
          reload();
        }
      } catch { /* try again */ }
    }, 1000);
  }
}

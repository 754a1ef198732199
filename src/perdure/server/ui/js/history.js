// The event history: compact (what the workflow did) or full (every event), each event
// expandable to its JSON; reading it a page at a time.
import { get } from "./api.js";
import { code, fmtDuration, h } from "./dom.js";

export const PAGE = 1000;
export const MAX_EVENTS = 5000; // more are loaded on request

export async function loadHistory(base, runId, token = "", limit = MAX_EVENTS) {
  const events = [];
  let next = token;
  do {
    const page = await get(`${base}/history`, { run_id: runId, decode: "true",
      page_size: PAGE, next_page_token: next });
    events.push(...page.events);
    next = page.next_page_token || "";
  } while (next && events.length < limit);
  return { events, next };
}

function firstLine(text) {
  return String(text || "").split("\n")[0];
}

function failureText(f) {
  if (!f) return "";
  if (typeof f === "string") return f;
  return f.message || firstLine(JSON.stringify(f));
}

export function summary(e) {
  const a = e.attributes || {};
  switch (e.event_type) {
    case "WorkflowExecutionStarted": return `${a.workflow_type} on ${a.task_queue}`;
    case "ActivityTaskScheduled": return `${a.activity_type} (activity ${a.activity_id})`;
    case "ActivityTaskStarted": return `attempt ${a.attempt ?? 1}`;
    case "ActivityTaskFailed":
    case "WorkflowTaskFailed":
    case "WorkflowExecutionFailed":
    case "ChildWorkflowExecutionFailed": return failureText(a.failure);
    case "TimerStarted": return `${fmtDuration((a.duration || 0) * 1000)}`;
    case "WorkflowExecutionSignaled": return `${a.signal_name}`;
    case "StartChildWorkflowExecutionInitiated": return `${a.workflow_type} ${a.workflow_id}`;
    case "WorkflowExecutionTerminated":
    case "WorkflowExecutionCancelRequested": return a.reason || "";
    case "WorkflowExecutionUpdateAccepted": return a.name || "";
    case "MarkerRecorded": return a.marker_name || "";
    default: return "";
  }
}

const HIDDEN_IN_COMPACT = new Set(["WorkflowTaskCompleted", "ActivityTaskStarted"]);

function category(type) {
  if (type.startsWith("Activity")) return "activity";
  if (type.startsWith("Timer")) return "timer";
  if (type.includes("Child")) return "child";
  if (type.includes("Signal")) return "signal";
  if (type.startsWith("WorkflowTask")) return "task";
  if (/Failed|TimedOut|Terminated/.test(type)) return "failed";
  return "workflow";
}

export function historyList(events, { compact, highlight, onStep } = {}) {
  const t0 = events.length ? new Date(events[0].event_time).getTime() : 0;
  const shown = compact ? events.filter((e) => !HIDDEN_IN_COMPACT.has(e.event_type)) : events;
  return h("ol", { class: `events ${compact ? "compact" : "full"}` }, shown.map((e) => {
    const row = h("details", { class: `event cat-${category(e.event_type)}`,
      "data-event-id": e.event_id, "data-event-type": e.event_type,
      open: !compact && e.event_id === highlight },
    h("summary", {},
      h("span", { class: "eid", text: e.event_id }),
      h("span", { class: "etime mono", title: e.event_time,
        text: `+${fmtDuration(new Date(e.event_time).getTime() - t0)}` }),
      h("span", { class: "etype", text: e.event_type }),
      h("span", { class: "esum", text: summary(e) }),
      onStep ? h("button", { type: "button", class: "link step", text: "state here",
        title: "Replay the workflow up to this event",
        onclick: (ev) => { ev.preventDefault(); onStep(e.event_id); } }) : null),
    code(e));
    if (e.event_id === highlight) row.classList.add("highlight");
    return h("li", {}, row);
  }));
}

// The timeline: a horizontal SVG chart of the run's activities, timers, child workflows,
// signals and updates over time, built from its history; retries show as attempts.
import { fmtDuration, h, s } from "./dom.js";
import { workflowRef } from "./workflows.js";

const KINDS = [
  ["ActivityTask", "activity"],
  ["Timer", "timer"],
  ["ChildWorkflowExecution", "child"],
  ["StartChildWorkflowExecution", "child"],
];
const START = {
  ActivityTaskScheduled: "activity", TimerStarted: "timer",
  StartChildWorkflowExecutionInitiated: "child",
};

function kindOf(type) {
  for (const [prefix, kind] of KINDS) if (type.startsWith(prefix)) return kind;
  return null;
}

function outcome(type) {
  if (/Completed|Fired$/.test(type)) return "ok";
  if (/Failed|TimedOut|Terminated/.test(type)) return "failed";
  if (/Canceled$/.test(type)) return "canceled";
  return null;
}

// Rows of spans {label, kind, start, startedAt, end, state, attempt, events} and points.
export function timelineRows(events, description) {
  const rows = [];
  const open = new Map();
  const points = [];
  const t = (e) => new Date(e.event_time).getTime();
  for (const e of events) {
    const a = e.attributes || {};
    const startKind = START[e.event_type];
    if (startKind) {
      const label = startKind === "activity" ? a.activity_type
        : startKind === "timer" ? `timer ${fmtDuration((a.duration || 0) * 1000)}`
          : a.workflow_type || a.workflow_id;
      const row = { label, kind: startKind, start: t(e), end: null, state: "running",
        attempt: 1, events: [e.event_id], seq: a.seq, childId: a.workflow_id };
      open.set(`${startKind}:${a.seq}`, row);
      rows.push(row);
      continue;
    }
    const kind = kindOf(e.event_type);
    if (kind && a.seq !== undefined) {
      const row = open.get(`${kind}:${a.seq}`);
      if (!row) continue;
      row.events.push(e.event_id);
      if (e.event_type === "ActivityTaskStarted" || e.event_type === "ChildWorkflowExecutionStarted") {
        row.startedAt = t(e);
        row.attempt = a.attempt || row.attempt;
        if (a.run_id) row.childRun = a.run_id;
      }
      const state = outcome(e.event_type);
      if (state) {
        row.end = t(e);
        row.state = state;
        if (a.attempt) row.attempt = a.attempt;
        open.delete(`${kind}:${a.seq}`);
      }
      continue;
    }
    if (e.event_type === "WorkflowExecutionSignaled") {
      points.push({ label: `signal ${a.signal_name}`, time: t(e), kind: "signal", id: e.event_id });
    } else if (e.event_type === "WorkflowExecutionUpdateAccepted") {
      points.push({ label: `update ${a.name || ""}`, time: t(e), kind: "update", id: e.event_id });
    } else if (e.event_type === "WorkflowTaskFailed") {
      points.push({ label: "workflow task failed", time: t(e), kind: "failed", id: e.event_id });
    } else if (e.event_type === "WorkflowExecutionCancelRequested") {
      points.push({ label: "cancel requested", time: t(e), kind: "canceled", id: e.event_id });
    }
  }
  // A pending activity's attempt (retries leave no event until the last attempt ends).
  for (const p of (description && description.pending_activities) || []) {
    const row = rows.find((r) => r.kind === "activity" && String(r.seq) === String(p.activity_id)
      && r.state === "running");
    if (row) {
      row.attempt = p.attempt;
      if (p.last_failure) row.retrying = p.last_failure.message;
    }
  }
  return { rows, points };
}

function ticks(t0, t1, n) {
  const span = t1 - t0;
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4,
    3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 216e5, 432e5, 864e5, 1728e5, 6048e5];
  const step = steps.find((x) => span / x <= n) || span / n;
  const out = [];
  for (let v = 0; v <= span + 1; v += step) out.push(v);
  return out;
}

export function timeline(events, description, onPick) {
  if (!events.length) return h("div", { class: "empty", text: "No events yet." });
  const { rows, points } = timelineRows(events, description);
  const t0 = new Date(events[0].event_time).getTime();
  const closed = description.close_time ? new Date(description.close_time).getTime() : null;
  const last = new Date(events[events.length - 1].event_time).getTime();
  const t1 = Math.max(closed || Date.now(), last, t0 + 1);
  const W = 1000, LABEL = 190, ROW = 24, TOP = 28;
  const x = (time) => LABEL + ((time - t0) / (t1 - t0)) * (W - LABEL - 12);
  const all = [{ label: "workflow", kind: "workflow", start: t0, end: closed,
    state: closed ? description.status.toLowerCase() : "running", events: [1] }, ...rows];
  const height = TOP + (all.length + (points.length ? 1 : 0)) * ROW + 6;
  const svg = s("svg", { class: "timeline", viewBox: `0 0 ${W} ${height}`, role: "img",
    "aria-label": "Timeline of the run", preserveAspectRatio: "xMinYMin meet" });
  svg.style.minWidth = "640px";
  for (const v of ticks(t0, t1, 8)) {
    const xx = x(t0 + v);
    if (xx > W - 60) continue;
    svg.append(s("line", { x1: xx, x2: xx, y1: TOP - 6, y2: height, class: "grid" }),
      s("text", { x: xx + 3, y: 14, class: "tick", text: `+${fmtDuration(v)}` }));
  }
  all.forEach((row, i) => {
    const y = TOP + i * ROW;
    const end = row.end ?? t1;
    const g = s("g", { class: `span ${row.kind} ${row.state}`, "data-kind": row.kind,
      tabindex: "0" });
    const title = `${row.label} — ${row.state}${row.attempt > 1 ? `, attempt ${row.attempt}` : ""}` +
      ` (${fmtDuration(end - row.start)})${row.retrying ? `; last failure: ${row.retrying}` : ""}`;
    const label = s("text", { x: 8, y: y + 16, class: "label",
      text: `${row.kind === "workflow" ? "▣" : "•"} ${row.label}` });
    g.append(s("title", { text: title }), row.kind === "child" && row.childId
      ? s("a", { href: workflowRef({ workflow_id: row.childId, run_id: row.childRun }),
        class: "child-link" }, label)
      : label);
    const x0 = x(row.start), x1 = Math.max(x(end), x0 + 3);
    // Retries leave no event of their own: a retried activity's bar is marked, with its
    // attempt count (a pending one's last failure is in its tooltip).
    g.append(s("rect", { x: x0, y: y + 5, width: x1 - x0, height: 14, rx: 3,
      class: row.attempt > 1 || row.retrying ? "bar retried" : "bar" }));
    if (row.attempt > 1) {
      g.append(s("text", { x: Math.min(x1 + 4, W - 60), y: y + 16, class: "attempt",
        text: `${row.attempt} attempts` }));
    }
    if (onPick) g.addEventListener("click", () => onPick(row.events[row.events.length - 1]));
    svg.append(g);
  });
  if (!closed) {
    const nx = x(t1);
    svg.append(s("line", { x1: nx, x2: nx, y1: TOP - 6, y2: height, class: "now" }));
  }
  if (points.length) {
    const y = TOP + all.length * ROW;
    svg.append(s("text", { x: 8, y: y + 16, class: "label", text: "◆ signals & events" }));
    for (const p of points) {
      const px = x(p.time);
      const g = s("g", { class: `point ${p.kind}`, tabindex: "0" },
        s("title", { text: `${p.label} (event ${p.id})` }),
        s("path", { d: `M${px} ${y + 5} l7 7 l-7 7 l-7 -7 z` }));
      if (onPick) g.addEventListener("click", () => onPick(p.id));
      svg.append(g);
    }
  }
  const legend = h("div", { class: "legend" },
    ["activity", "timer", "child", "signal", "retry", "failed"].map((k) =>
      h("span", { class: `key ${k}` }, h("i"), k === "child" ? "child workflow" : k)));
  return h("div", { class: "timeline-wrap" }, h("div", { class: "timeline-scroll" }, svg), legend);
}

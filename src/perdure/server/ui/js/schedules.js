// The schedules: a list, a schedule's page (what it starts, when, what it did), and the
// forms to create, edit, pause, unpause, trigger, backfill and delete one.
import { canWrite, del, enc, get, patch, post } from "./api.js";
import {
  card, clear, code, dialog, empty, field, fmtDuration, fmtTime, h, input, main, parseArgs,
  select, toast,
} from "./dom.js";
import { workflowRef } from "./workflows.js";

const OVERLAPS = ["SKIP", "BUFFER_ONE", "BUFFER_ALL", "CANCEL_OTHER", "TERMINATE_OTHER",
  "ALLOW_ALL"];

function when(spec) {
  if (!spec) return "—";
  const parts = [...spec.calendars.map((c) => c.text),
    ...spec.intervals.map((i) => `every ${fmtDuration(i.every * 1000)}` +
      (i.offset ? ` + ${fmtDuration(i.offset * 1000)}` : ""))];
  return parts.join("; ") || "—";
}

const scheduleRef = (id) => `schedule?id=${enc(id)}`;

function createForm() {
  dialog("Create a schedule", [
    input("Schedule ID", "schedule_id", { required: true }),
    input("Workflow type", "workflow_type", { required: true }),
    input("Workflow ID (each action's id is ID-slot time)", "workflow_id", { required: true }),
    input("Task queue", "task_queue", { required: true }),
    input("Arguments (JSON)", "args", { rows: 2, class: "mono", placeholder: "[]" }),
    input("Cron expression", "cron", { placeholder: "0 * * * *", class: "mono" }),
    input("…or every N seconds", "every", { type: "number", min: 1 }),
    select("Overlap policy", "overlap", OVERLAPS.map((o) => [o, o]), "SKIP"),
    input("Note", "note", {}),
  ], "Create", async (form) => {
    const every = Number(form.get("every"));
    const cron = String(form.get("cron") || "").trim();
    const body = {
      schedule_id: form.get("schedule_id"),
      action: { workflow_type: form.get("workflow_type"), workflow_id: form.get("workflow_id"),
        task_queue: form.get("task_queue"), args: parseArgs(form.get("args")) },
      spec: { cron_expressions: cron ? [cron] : [], intervals: every ? [{ every }] : [] },
      policy: { overlap: form.get("overlap") },
      state: { note: form.get("note") || null },
    };
    await post("/api/v1/schedules", body);
    toast("Schedule created");
    location.href = scheduleRef(body.schedule_id);
  });
}

// Change what it starts, its overlap policy and note; "when" only if a new cron expression
// or interval is given (a spec of calendars, skips or jitter made elsewhere is kept whole).
function editForm(base, sc, reload) {
  const { action, policy, state, spec } = sc;
  dialog("Edit the schedule", [
    input("Workflow type", "workflow_type", { required: true, value: action.workflow_type }),
    input("Workflow ID (each action's id is ID-slot time)", "workflow_id",
      { required: true, value: action.workflow_id }),
    input("Task queue", "task_queue", { required: true, value: action.task_queue }),
    input("Arguments (JSON)", "args", { rows: 2, class: "mono",
      text: JSON.stringify(action.args) }),
    h("p", { text: `When: ${when(spec)}. To change it, give a cron ` +
      "expression or an interval; leave both empty to keep it." }),
    input("New cron expression", "cron", { placeholder: "0 * * * *", class: "mono" }),
    input("…or every N seconds", "every", { type: "number", min: 1 }),
    select("Overlap policy", "overlap", OVERLAPS.map((o) => [o, o]), policy.overlap),
    input("Note", "note", { value: state.note || "" }),
  ], "Save", async (form) => {
    const every = Number(form.get("every"));
    const cron = String(form.get("cron") || "").trim();
    const body = {
      action: { workflow_type: form.get("workflow_type"), workflow_id: form.get("workflow_id"),
        task_queue: form.get("task_queue"), args: parseArgs(form.get("args")) },
      policy: { overlap: form.get("overlap") },
      state: { note: form.get("note") || null },
    };
    if (cron || every) {
      body.spec = { cron_expressions: cron ? [cron] : [], intervals: every ? [{ every }] : [],
        time_zone_name: spec.time_zone_name };
    }
    await patch(base, body);
    toast("Schedule saved");
    reload();
  });
}

export async function schedulesPage() {
  const [{ schedules }, writable] = await Promise.all([get("/api/v1/schedules"), canWrite()]);
  document.title = "Schedules · perdure";
  const rows = schedules.map((sc) => h("tr", {},
    h("td", { "data-label": "Schedule ID" },
      h("a", { href: scheduleRef(sc.schedule_id), class: "mono", text: sc.schedule_id })),
    h("td", { "data-label": "Workflow type", text: sc.workflow_type || "—" }),
    h("td", { "data-label": "State" }, h("span", {
      class: `badge ${sc.state && sc.state.paused ? "st-terminated" : "st-running"}`,
    }, h("span", { class: "dot" }), sc.state && sc.state.paused ? "Paused" : "Active")),
    h("td", { "data-label": "When", class: "mono", text: when(sc.spec) }),
    h("td", { "data-label": "Next action", text: fmtTime(sc.next_action_times[0]) }),
    h("td", { "data-label": "Last action" }, sc.recent_actions.length
      ? fmtTime(sc.recent_actions[sc.recent_actions.length - 1].started_at) : "—")));
  clear(main(),
    h("div", { class: "page-head" }, h("h1", { text: "Schedules" }),
      writable ? h("button", { type: "button", class: "button primary", id: "create-schedule",
        text: "Create schedule", onclick: createForm }) : null),
    schedules.length ? h("div", { class: "table-wrap" }, h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ["Schedule ID", "Workflow type", "State", "When",
        "Next action", "Last action"].map((t) => h("th", { text: t })))),
      h("tbody", {}, rows))) : empty("No schedules yet."));
}

export async function schedulePage(params) {
  const id = params.get("id");
  const base = `/api/v1/schedules/${enc(id)}`;
  const [sc, writable] = await Promise.all([get(base), canWrite()]);
  document.title = `${sc.schedule_id} · perdure`;
  const reload = () => schedulePage(params);
  const act = (text, path, body, danger) => h("button", { type: "button",
    class: danger ? "button danger" : "button", id: `sched-${path || "delete"}`, text,
    onclick: async () => {
      try {
        if (path) await post(`${base}/${path}`, body);
        else {
          await del(base);
          location.href = "schedules";
          return;
        }
        toast(`Schedule ${text.toLowerCase()}d`.replace("eed", "ed"));
        reload();
      } catch (e) { toast(e.message, "error"); }
    } });
  const backfill = h("button", { type: "button", class: "button", text: "Backfill",
    onclick: () => dialog("Backfill", [
      input("From (ISO time)", "start_at", { required: true,
        value: new Date(Date.now() - 3600e3).toISOString() }),
      input("To (ISO time)", "end_at", { required: true, value: new Date().toISOString() })],
    "Backfill", async (form) => {
      await post(`${base}/backfill`, { start_at: form.get("start_at"), end_at: form.get("end_at") });
      toast("Backfilled");
      reload();
    }) });
  const { action, info, state, policy, spec } = sc;
  clear(main(),
    h("nav", { class: "crumbs" }, h("a", { href: "schedules", text: "Schedules" })),
    h("div", { class: "page-head" }, h("h1", { class: "mono", text: sc.schedule_id }),
      h("span", { class: `badge ${state.paused ? "st-terminated" : "st-running"}` },
        h("span", { class: "dot" }), state.paused ? "Paused" : "Active")),
    writable ? h("div", { class: "actions" },
      h("button", { type: "button", class: "button", id: "sched-edit", text: "Edit",
        onclick: () => editForm(base, sc, reload) }),
      state.paused ? act("Unpause", "unpause", {}) : act("Pause", "pause", {}),
      act("Trigger", "trigger", {}), backfill, act("Delete", "", null, true)) : null,
    card(null, h("dl", { class: "summary" },
      field("Workflow type", h("span", { class: "mono", text: action.workflow_type })),
      field("Workflow ID", h("span", { class: "mono", text: `${action.workflow_id}-<slot time>` })),
      field("Task queue", h("span", { class: "mono", text: action.task_queue })),
      field("When", h("span", { class: "mono", text: when(spec) })),
      field("Time zone", spec.time_zone_name || "UTC"),
      field("Overlap policy", policy.overlap),
      field("Note", state.note || "—"),
      field("Actions taken", String(info.num_actions)),
      field("Created", fmtTime(info.created_at))),
    h("div", { class: "io" }, h("div", {}, h("h3", { text: "Arguments" }), code(action.args)),
      h("div", {}, h("h3", { text: "Next actions" }), h("ul", { class: "plain" },
        info.next_action_times.slice(0, 5).map((t) => h("li", { text: fmtTime(t) })))))),
    card("Recent actions", info.recent_actions.length ? h("ul", { class: "plain" },
      info.recent_actions.slice().reverse().map((a) => h("li", {},
        h("a", { href: workflowRef({ workflow_id: a.workflow_id, run_id: "" }), class: "mono",
          text: a.workflow_id }), ` — started ${fmtTime(a.started_at)}`)))
      : empty("No action taken yet.")));
}

// What a user can do to a run: signal, query, update, cancel, terminate, reset, and
// download its history. A read-only session sees only query and download.
import { get, post } from "./api.js";
import { code, dialog, h, input, jsonText, parseArgs, select, toast } from "./dom.js";

function argsField() {
  return input("Arguments (a JSON array, or one JSON value)", "args",
    { rows: 3, placeholder: '["ada"]', class: "mono", spellcheck: "false" });
}

// The handler names the workflow declares, offered as the user types (asked of a worker
// when a dialog first opens; without an answer the field still takes any name).
function nameField(label, names, kind) {
  const listId = `names-${kind}`;
  const list = h("datalist", { id: listId });
  names().then((found) => list.append(...found[kind].map((n) => h("option", { value: n }))),
    () => {});
  return h("label", { class: "field" }, h("span", { text: label }),
    h("input", { name: "name", required: true, list: listId, autocomplete: "off" }), list);
}

async function downloadHistory(run) {
  const events = [];
  let next = "";
  let doc = null;
  do {
    doc = await get(`${run.base}/history`, { run_id: run.runId, page_size: 1000,
      next_page_token: next });
    events.push(...doc.events);
    next = doc.next_page_token || "";
  } while (next);
  const whole = { format: doc.format, version: doc.version, workflow_id: doc.workflow_id,
    run_id: doc.run_id, events };
  const blob = new Blob([JSON.stringify(whole, null, 2)], { type: "application/json" });
  const a = h("a", { href: URL.createObjectURL(blob),
    download: `${run.id.replace(/[^\w.-]+/g, "_")}-${run.runId}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

export function actionBar(run, { writable, open, events, names, reload }) {
  const q = (name) => `${run.base}/${name}`;
  const params = { run_id: run.runId };
  const button = (text, id, onclick, cls = "button") =>
    h("button", { type: "button", class: cls, id, text, onclick });
  const resetPoints = events.filter((e) => e.event_type === "WorkflowTaskCompleted");
  const buttons = [];
  if (writable && open) {
    buttons.push(button("Signal", "act-signal", () => dialog("Send a signal",
      [nameField("Signal", names, "signals"), argsField()], "Send", async (form) => {
        await post(q(`signals/${encodeURIComponent(form.get("name"))}`),
          { args: parseArgs(form.get("args")) }, params);
        toast("Signal sent");
        reload();
      })));
    buttons.push(button("Update", "act-update", () => {
      const out = h("div");
      dialog("Send an update", [nameField("Update", names, "updates"), argsField(), out], "Send",
        async (form) => {
          const answer = await post(q(`updates/${encodeURIComponent(form.get("name"))}`),
            { args: parseArgs(form.get("args")) }, params);
          toast(`Update answered: ${jsonText(answer.result)}`);
          reload();
        });
    }));
  }
  buttons.push(button("Query", "act-query", () => {
    const out = h("div", { class: "query-answer" });
    dialog("Ask a query", [nameField("Query", names, "queries"), argsField(), out],
      "Ask", async (form) => {
        out.replaceChildren();
        const answer = await post(q(`queries/${encodeURIComponent(form.get("name"))}`),
          { args: parseArgs(form.get("args")) }, params);
        out.append(h("h3", { text: "Answer" }), code(answer.result));
        return false; // keep the dialog open to show the answer
      });
  }));
  if (writable && open) {
    buttons.push(button("Cancel", "act-cancel", () => dialog("Cancel the workflow",
      [h("p", { text: "The workflow is asked to cancel: its code decides what that means." }),
        input("Reason", "reason", {})], "Request cancellation", async (form) => {
        await post(q("cancel"), { reason: form.get("reason") || "" }, params);
        toast("Cancellation requested");
        reload();
      }, true)));
    buttons.push(button("Terminate", "act-terminate", () => dialog("Terminate the workflow",
      [h("p", { text: "The run ends at once; its code gets no say." }),
        input("Reason", "reason", { required: true })], "Terminate", async (form) => {
        await post(q("terminate"), { reason: form.get("reason") }, params);
        toast("Terminated");
        reload();
      }, true)));
  }
  if (writable && resetPoints.length) {
    buttons.push(button("Reset", "act-reset", () => dialog("Reset the workflow",
      [h("p", { text: "A new run replays the history up to the chosen workflow task, then runs "
        + "on from there (signals after it are applied again)." }),
      select("To the workflow task completed at", "event_id",
        resetPoints.map((e) => [String(e.event_id), `event ${e.event_id}`]).reverse(),
        String(resetPoints[resetPoints.length - 1].event_id)),
      input("Reason", "reason", { required: true })], "Reset", async (form) => {
        const done = await post(q("reset"), { event_id: Number(form.get("event_id")),
          reason: form.get("reason") }, params);
        toast("Reset: a new run started");
        const u = new URL(location.href);
        u.searchParams.set("run_id", done.run_id);
        history.pushState(null, "", u);
        reload();
      }, true)));
  }
  buttons.push(button("Download JSON", "act-download", () => downloadHistory(run)
    .catch((e) => toast(e.message, "error"))));
  return h("div", { class: "actions" }, buttons);
}

// Time travel: replay the run in the server, on the workflow code it was given, up to a
// chosen event; show what its queries answered then and where its code waited. And the
// pre-deploy question: would this history replay on the current code?
import { ApiError, get } from "./api.js";
import { clear, code, errorBox, h } from "./dom.js";

export function timeTravel(run, events, onEvent) {
  const ids = events.map((e) => e.event_id);
  const last = ids[ids.length - 1] || 1;
  const out = h("div", { class: "tt-out" });
  const check = h("div", { class: "tt-check" });
  const slider = h("input", { type: "range", min: 1, max: last, value: last, id: "tt-slider",
    "aria-label": "Event" });
  const number = h("input", { type: "number", min: 1, max: last, value: last, id: "tt-event",
    class: "narrow", "aria-label": "Event id" });
  let seq = 0;

  async function show(eventId) {
    eventId = Math.min(Math.max(1, Number(eventId) || 1), last);
    slider.value = number.value = eventId;
    const mine = ++seq;
    out.classList.add("loading"); // the old answer stays until the new one comes
    try {
      const state = await get(`${run.base}/replay/state`, { run_id: run.runId, event_id: eventId });
      if (mine !== seq) return;
      out.classList.remove("loading");
      const ev = events.find((e) => e.event_id === eventId);
      clear(out,
        h("p", { class: "tt-where" }, "At event ", h("strong", { text: eventId }),
          ev ? ` (${ev.event_type})` : "", state.at_event_id
            ? `: replayed through event ${state.at_event_id}, the end of the last workflow task by then.`
            : "."),
        state.error ? h("div", { class: "alert warn", text: state.error }) : null,
        state.queries.length ? h("table", { class: "table kv" }, h("tbody", {},
          state.queries.map((q) => h("tr", {}, h("th", { class: "mono", text: q.name }),
            h("td", {}, q.error ? h("span", { class: "muted", text: q.error })
              : code(q.result)))))) : null,
        state.stack_trace ? [h("h3", { text: "Where the code waited" }),
          code(state.stack_trace, "stack")] : null);
      onEvent(eventId);
    } catch (error) {
      if (mine === seq) {
        out.classList.remove("loading");
        out.replaceChildren(errorBox(error));
      }
    }
  }

  const step = (d) => {
    const i = ids.indexOf(Number(number.value));
    show(ids[Math.min(Math.max(0, (i < 0 ? ids.length - 1 : i) + d), ids.length - 1)]);
  };
  slider.addEventListener("change", () => show(slider.value));
  number.addEventListener("change", () => show(number.value));

  const checkButton = h("button", { type: "button", class: "button", id: "replay-check",
    text: "Would this history replay on the current code?", onclick: async () => {
      check.replaceChildren(h("span", { class: "muted", text: "Replaying…" }));
      try {
        const r = await get(`${run.base}/replay`, { run_id: run.runId });
        check.replaceChildren(r.ok
          ? h("div", { class: "alert ok", text: "Yes: the current code replays this history." })
          : h("div", { class: "alert error" }, h("strong", { text: "No. " }),
            h("span", { text: r.error })));
      } catch (error) {
        check.replaceChildren(errorBox(error));
      }
    } });

  const panel = h("div", { class: "time-travel" },
    h("div", { class: "tt-head" },
      h("p", { class: "muted", text: "Step through the history: the server replays the run " +
        "on the workflow code it was given, up to the chosen event." }), checkButton),
    check,
    h("div", { class: "tt-controls" },
      h("button", { type: "button", class: "button", text: "◀", title: "Previous event",
        id: "tt-prev", onclick: () => step(-1) }),
      slider,
      h("button", { type: "button", class: "button", text: "▶", title: "Next event",
        id: "tt-next", onclick: () => step(1) }),
      number),
    out);
  panel.show = show;
  return panel;
}

export async function hasCode(run) {
  try {
    await get(`${run.base}/replay/state`, { run_id: run.runId, event_id: 1 });
    return true;
  } catch (error) {
    return !(error instanceof ApiError && error.status === 409);
  }
}

// Building the page: every value from the database goes into the DOM as text (textContent,
// attributes by setAttribute), never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "style") Object.assign(el.style, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const h = (tag, props, ...children) => fill(document.createElement(tag), props, children);
export const s = (tag, props, ...children) =>
  fill(document.createElementNS(SVG_NS, tag), props, children);

export function clear(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

export const main = () => document.getElementById("main");

// -- formatting -------------------------------------------------------------------------
const pad = (n, w = 2) => String(n).padStart(w, "0");

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const sec = ms / 1000;
  if (sec < 60) return `${sec.toFixed(sec < 10 ? 2 : 1)} s`;
  const m = Math.floor(sec / 60), rs = Math.floor(sec % 60);
  const both = (a, ua, b, ub) => `${a}${ua}${b ? ` ${b}${ub}` : ""}`;
  if (m < 60) return both(m, "m", rs, "s");
  const hr = Math.floor(m / 60);
  if (hr < 48) return both(hr, "h", m % 60, "m");
  return both(Math.floor(hr / 24), "d", hr % 24, "h");
}

export function duration(start, close) {
  if (!start) return null;
  return (close ? new Date(close) : new Date()) - new Date(start);
}

export const STATUSES = ["RUNNING", "COMPLETED", "FAILED", "CANCELED", "TERMINATED",
  "CONTINUED_AS_NEW", "TIMED_OUT"];
// The visibility language's spelling of each status.
export const STATUS_QUERY = {
  RUNNING: "Running", COMPLETED: "Completed", FAILED: "Failed", CANCELED: "Canceled",
  TERMINATED: "Terminated", CONTINUED_AS_NEW: "ContinuedAsNew", TIMED_OUT: "TimedOut",
};
const LABEL = { CONTINUED_AS_NEW: "Continued as new", TIMED_OUT: "Timed out" };
export const statusLabel = (st) => LABEL[st] || st.charAt(0) + st.slice(1).toLowerCase();

export function badge(status) {
  return h("span", { class: `badge st-${status.toLowerCase()}`, "data-status": status },
    h("span", { class: "dot" }), statusLabel(status));
}

export function jsonText(value) {
  return JSON.stringify(value, null, 2) ?? "null";
}

export function code(value, cls = "") {
  return h("pre", { class: `code ${cls}` }, typeof value === "string" ? value : jsonText(value));
}

export function field(label, ...value) {
  return h("div", { class: "f" }, h("dt", { text: label }), h("dd", {}, ...value));
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", { text: title }) : null, ...children);
}

export function errorBox(error, extra) {
  const problem = error && error.problem ? error.problem : {};
  return h("div", { class: "alert error", role: "alert" },
    h("strong", { text: problem.title || "Error" }), " ",
    h("span", { class: "detail", text: error.message || String(error) }), extra || null);
}

export function toast(message, kind = "ok") {
  const el = h("div", { class: `toast ${kind}`, role: "status", text: message });
  document.body.append(el);
  setTimeout(() => el.remove(), 4000);
}

export function empty(text) {
  return h("div", { class: "empty", text });
}

// A modal form: fields built by the caller; resolves with the submit handler's promise.
export function dialog(title, fields, submitLabel, onSubmit, danger = false) {
  const error = h("div", { class: "dialog-error" });
  const form = h("form", { method: "dialog", class: "form" },
    h("h2", { text: title }), ...fields, error,
    h("div", { class: "buttons" },
      h("button", { type: "button", class: "button", value: "cancel", text: "Cancel",
        onclick: () => dlg.close() }),
      h("button", { type: "submit", class: danger ? "button danger" : "button primary",
        text: submitLabel })));
  const dlg = h("dialog", { class: "modal" }, form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    try {
      const keep = await onSubmit(new FormData(form));
      if (keep !== false) dlg.close();
    } catch (e) {
      error.append(errorBox(e));
    }
  });
  dlg.addEventListener("close", () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  return dlg;
}

export function input(label, name, props = {}) {
  const tag = props.rows ? "textarea" : "input";
  return h("label", { class: "field" }, h("span", { text: label }),
    h(tag, { name, ...props }));
}

export function select(label, name, options, value) {
  return h("label", { class: "field" }, h("span", { text: label }),
    h("select", { name }, options.map(([v, text]) =>
      h("option", { value: v, text, selected: v === value }))));
}

export function parseArgs(text) {
  const trimmed = (text || "").trim();
  if (!trimmed) return [];
  let value;
  try {
    value = JSON.parse(trimmed);
  } catch (e) {
    throw new Error(`The arguments are not JSON: ${e.message}`);
  }
  return Array.isArray(value) ? value : [value];
}

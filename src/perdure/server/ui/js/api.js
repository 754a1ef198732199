// The HTTP API, as the UI calls it: JSON in and out, the CSRF header on every change,
// problem documents turned into ApiError.

export const BASE = new URL("../../", import.meta.url);

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export const enc = encodeURIComponent;

export function url(path, params = {}) {
  const u = new URL(path.replace(/^\//, ""), BASE);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, String(v));
  }
  return u;
}

export async function api(method, path, { params, body } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["X-Perdure-CSRF"] = cookie("perdure_csrf");
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  const response = await fetch(url(path, params), init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, params) => api("GET", path, { params });
export const post = (path, body, params) => api("POST", path, { body, params });
export const del = (path, params) => api("DELETE", path, { params });
export const patch = (path, body) => api("PATCH", path, { body });

let session = null;
export async function whoami() {
  if (!session) session = await get("/api/v1/session");
  return session;
}
export const canWrite = async () => (await whoami()).role === "write";

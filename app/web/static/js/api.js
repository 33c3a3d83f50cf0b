// The public REST API: tokens in this module's memory only (a reload means signing in again).
let session = null;
let expiredHandler = () => {};
let refreshing = null;

export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(describe(status, problem));
    this.status = status;
    this.problem = problem;
  }
}

function describe(status, problem) {
  const parts = [];
  const issues = Array.isArray(problem.errors) && problem.errors.length > 0;
  if (!issues && typeof problem.detail === "string" && problem.detail) parts.push(problem.detail);
  else if (!issues && typeof problem.title === "string" && problem.title) parts.push(problem.title);
  if (issues) {
    for (const issue of problem.errors.slice(0, 5)) {
      const where = Array.isArray(issue.loc) ? issue.loc.filter((p) => p !== "body").join(".") : "";
      if (typeof issue.msg === "string") parts.push(where ? `${where}: ${issue.msg}` : issue.msg);
    }
  }
  if (typeof problem.retry_after === "number") parts.push(`try again in ${problem.retry_after} s`);
  return parts.length ? parts.join(" — ") : `The request failed (HTTP ${status}).`;
}

export function signedIn() {
  return session !== null;
}

export function user() {
  return session?.user ?? null;
}

export function onExpired(handler) {
  expiredHandler = handler;
}

export async function signIn(username, password) {
  const tokens = await request("POST", "/api/v2/auth/login", { json: { username, password } });
  session = { access: tokens.access_token, refresh: tokens.refresh_token, user: null };
  session.user = await request("GET", "/api/v2/users/me");
  return session.user;
}

export async function signOut() {
  if (!session) return;
  try {
    await request("POST", "/api/v2/auth/logout");
  } finally {
    session = null;
  }
}

async function refresh() {
  refreshing ??= (async () => {
    const res = await fetch("/api/v2/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: session.refresh }),
    });
    if (!res.ok) return false;
    const tokens = await res.json();
    session.access = tokens.access_token;
    session.refresh = tokens.refresh_token;
    return true;
  })()
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

function send(method, path, { json, body, headers = {} }) {
  const sent = { ...headers };
  if (session) sent.Authorization = `Bearer ${session.access}`;
  let payload = body;
  if (json !== undefined) {
    sent["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  }
  return fetch(path, { method, headers: sent, body: payload });
}

// An expired access token is refreshed once, silently; a refused refresh ends the session.
export async function request(method, path, options = {}) {
  let res;
  try {
    res = await send(method, path, options);
  } catch {
    throw new ApiError(0, { detail: "The dashboard cannot reach the server. Check your connection." });
  }
  if (res.status === 401 && session && !path.startsWith("/api/v2/auth/")) {
    if (await refresh()) {
      res = await send(method, path, options);
    } else {
      session = null;
      const message = "Your session has expired. Please sign in again.";
      expiredHandler(message);
      throw new ApiError(401, { detail: message });
    }
  }
  if (!res.ok) {
    let problem = {};
    try {
      problem = await res.json();
    } catch {
      problem = {};
    }
    throw new ApiError(res.status, problem && typeof problem === "object" ? problem : {});
  }
  if (options.raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, json, options = {}) => request("POST", path, { ...options, json });
export const put = (path, json, options = {}) => request("PUT", path, { ...options, json });
export const patch = (path, json, options = {}) => request("PATCH", path, { ...options, json });
export const del = (path, options) => request("DELETE", path, options);

// A one-use ticket: browsers cannot put a bearer token on a WebSocket or an EventSource.
export async function ticket() {
  return (await post("/api/v2/ws/tickets")).ticket;
}

export function socketUrl(path, ticketValue) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}?ticket=${encodeURIComponent(ticketValue)}`;
}

export function filePath(path) {
  return path.split("/").filter(Boolean).map(encodeURIComponent).join("/");
}

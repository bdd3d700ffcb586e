// The API client: the token lives in sessionStorage only (never the URL or localStorage), a 401
// anywhere signs out with a message, and the token's own scopes decide what the console shows.
// Behind API Management the page is at /v1/kalimera/console/ and the API at /v1/kalimera/...
// (infra/README.md), and every call carries the subscription key typed at sign-in, kept beside
// the token; served by the app itself (make run) the base is "" and there is no key.
const KEY = "kalimera.token";
const SUBSCRIPTION = "kalimera.subscription";
const listeners = new Set();

const here = location.pathname.indexOf("/kalimera/console");
export const API_BASE = here > 0 ? location.pathname.slice(0, here) : "";
export const BEHIND_GATEWAY = API_BASE !== "";

export const session = {
  token: sessionStorage.getItem(KEY),
  subscription: sessionStorage.getItem(SUBSCRIPTION),
  scopes: null,
  message: null,
};

function credentials() {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (session.subscription) headers["Ocp-Apim-Subscription-Key"] = session.subscription;
  return headers;
}

export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed() {
  for (const fn of listeners) fn({ ...session });
}

export function signOut(message = null) {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(SUBSCRIPTION);
  session.token = null;
  session.subscription = null;
  session.scopes = null;
  session.message = message;
  changed();
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** A refusal as one line: each field's error from a 422 ("url: must be http or https"), else
 * the problem's detail. */
export const problemText = (err) =>
  err.problem?.errors?.map((x) => `${(x.loc || []).slice(1).join(".")}: ${x.msg}`).join("; ") || err.message;

export const REFUSED =
  "The API refused the token (401): it was revoked, it expired, or it was mistyped. Paste a token to sign in again.";

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function request(method, path, { params, body, headers = {}, raw = false } = {}) {
  const init = { method, headers: { ...credentials(), ...headers } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(`${API_BASE}${path}${query(params)}`, init);
  if (response.status === 401) {
    signOut(REFUSED);
    throw new ApiError(401, null);
  }
  if (raw) return response;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path, params) => request("GET", path, { params });

/** A read and its ETag, for an update under If-Match. */
export async function getTagged(path) {
  const response = await request("GET", path, { raw: true });
  const data = await response.json();
  if (!response.ok) throw new ApiError(response.status, data);
  return { data, etag: response.headers.get("ETag") };
}

export async function signIn(token, subscription = null) {
  session.token = token.trim();
  session.subscription = subscription?.trim() || null;
  session.message = null;
  const response = await fetch(`${API_BASE}/kalimera/tokens/current`, { headers: credentials() });
  if (response.status === 401) {
    session.token = null;
    throw new Error("That token was refused (401): check it was copied whole and is not revoked.");
  }
  if (!response.ok) {
    session.token = null;
    throw new Error(`The API answered ${response.status}; try again.`);
  }
  const me = await response.json();
  sessionStorage.setItem(KEY, session.token);
  if (session.subscription) sessionStorage.setItem(SUBSCRIPTION, session.subscription);
  session.scopes = new Set(me.scopes);
  changed();
}

export async function restore() {
  if (!session.token) return;
  try {
    const me = await get("/kalimera/tokens/current");
    session.scopes = new Set(me.scopes);
    changed();
  } catch (error) {
    if (error.status !== 401) signOut(`Could not reach the API: ${error.message}`);
  }
}

export const can = (scope) => Boolean(session.scopes?.has(scope));

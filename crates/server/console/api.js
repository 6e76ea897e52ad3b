// The console's only way to Coffer: the public API, with the key of this tab's session.
const KEY = "coffer.key";
const ROLE = "coffer.role";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  role: () => sessionStorage.getItem(ROLE),
  isAdmin: () => sessionStorage.getItem(ROLE) === "admin",
  set(key, role) {
    sessionStorage.setItem(KEY, key);
    sessionStorage.setItem(ROLE, role);
  },
  clear() {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(ROLE);
  },
};

// Calls the API; a non-2xx answer throws the API's own message (its error body).
export async function api(path, { method = "GET", body, key } = {}) {
  const headers = { "x-api-key": key ?? session.key() ?? "" };
  if (body !== undefined) headers["content-type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new ApiError(0, "network", `Coffer could not be reached: ${e.message}`);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const message = json && typeof json.message === "string" ? json.message : `HTTP ${resp.status}`;
    throw new ApiError(resp.status, json?.error ?? "http", message);
  }
  return json;
}

// The role of a key: admins may list customers, readers are refused (403).
export async function roleOf(key) {
  try {
    await api("/v2/customers?limit=1", { key });
    return "admin";
  } catch (e) {
    if (e.status === 403) return "reader";
    throw e;
  }
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

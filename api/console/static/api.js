// Calls to the public API with the operator's bearer token; errors come back as RFC 9457 problems.
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

export class Api {
  constructor(token, { onUnauthorized } = {}) {
    this.token = token;
    this.onUnauthorized = onUnauthorized || (() => {});
    this.clockOffsetMs = 0; // server time minus browser time, from the Date header
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, { title: "network", detail: String(e) });
    }
    const date = r.headers.get("date");
    if (date) {
      const server = Date.parse(date);
      // The header has whole seconds: correct only a real skew, not the rounding.
      if (!Number.isNaN(server)) {
        const skew = server + 500 - Date.now();
        this.clockOffsetMs = Math.abs(skew) > 2000 ? skew : 0;
      }
    }
    const text = await r.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch { data = { detail: text }; }
    }
    if (!r.ok) {
      if (r.status === 401) this.onUnauthorized();
      throw new ApiError(r.status, data);
    }
    return data;
  }

  get(path) { return this.request("GET", path); }
  post(path, body) { return this.request("POST", path, body === undefined ? {} : body); }

  now() { return Date.now() + this.clockOffsetMs; }
}

export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) p.set(k, v);
  return p.toString();
}

/** The claims of a JWT, for display only (the server checks the signature). */
export function tokenClaims(token) {
  try {
    const part = token.split(".")[1];
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    return JSON.parse(json);
  } catch {
    return {};
  }
}

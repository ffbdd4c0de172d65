// The /api/v1 client: bearer tokens, refresh before expiry and on 401, Matrix error JSON.

import { saveSession } from "./session.js";

export class ApiError extends Error {
  constructor(status, errcode, message, body) {
    super(message || errcode || `HTTP ${status}`);
    this.status = status;
    this.errcode = errcode;
    this.body = body;
  }
}

const REFRESH_MARGIN_MS = 60_000;

export class Api {
  constructor(session, { onSessionEnded } = {}) {
    this.session = session;
    this.onSessionEnded = onSessionEnded || (() => {});
    this._refreshing = null;
    this._media = new Map();
  }

  get userId() {
    return this.session?.user?.id;
  }

  static async anonymous(method, path, body) {
    const response = await fetch("/api/v1" + path, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    return Api._parse(response);
  }

  static async _parse(response) {
    if (response.status === 204) return null;
    let body = null;
    const text = await response.text();
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = { error: text };
    }
    if (!response.ok) {
      throw new ApiError(response.status, body?.errcode, body?.error, body);
    }
    return body;
  }

  // An access token good for at least another minute (refreshed first if not).
  async freshToken() {
    const s = this.session;
    if (s.expires_at && Date.now() > s.expires_at - REFRESH_MARGIN_MS) await this.refresh();
    return this.session.access_token;
  }

  refresh() {
    if (!this._refreshing) {
      this._refreshing = (async () => {
        try {
          const answer = await Api.anonymous("POST", "/auth/refresh", { refresh_token: this.session.refresh_token });
          this.session = { ...this.session, ...withExpiry(answer) };
          saveSession(this.session);
        } catch (err) {
          if (err.status === 401 || err.status === 403) this.end();
          throw err;
        } finally {
          this._refreshing = null;
        }
      })();
    }
    return this._refreshing;
  }

  end() {
    saveSession(null);
    this.onSessionEnded();
  }

  async request(method, path, { body, raw, contentType, retried = false } = {}) {
    const token = await this.freshToken();
    const headers = { Authorization: `Bearer ${token}` };
    let payload;
    if (raw !== undefined) {
      payload = raw;
      headers["Content-Type"] = contentType || "application/octet-stream";
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch("/api/v1" + path, { method, headers, body: payload });
    if (response.status === 401 && !retried) {
      const err = await Api._parse(response).catch((e) => e);
      if (err?.errcode === "M_UNKNOWN_TOKEN" && err.body?.soft_logout) {
        await this.refresh();
        return this.request(method, path, { body, raw, contentType, retried: true });
      }
      if (err?.errcode === "M_UNKNOWN_TOKEN") this.end();
      throw err;
    }
    return Api._parse(response);
  }

  get(path) { return this.request("GET", path); }
  post(path, body) { return this.request("POST", path, { body: body ?? {} }); }
  put(path, body) { return this.request("PUT", path, { body: body ?? {} }); }
  patch(path, body) { return this.request("PATCH", path, { body: body ?? {} }); }
  del(path) { return this.request("DELETE", path); }

  // Media needs the access token, so it is fetched and shown through a blob: URL.
  async mediaUrl(url) {
    if (!url) return null;
    let path = url;
    if (url.startsWith("mxc://")) {
      const [server, id] = url.slice(6).split("/");
      path = `/_matrix/client/v1/media/download/${encodeURIComponent(server)}/${encodeURIComponent(id)}`;
    }
    if (!this._media.has(path)) {
      this._media.set(path, (async () => {
        const token = await this.freshToken();
        const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
        if (!response.ok) throw new ApiError(response.status, "M_UNKNOWN", "media unavailable");
        return URL.createObjectURL(await response.blob());
      })().catch((err) => {
        this._media.delete(path);
        throw err;
      }));
    }
    return this._media.get(path);
  }
}

export function withExpiry(answer) {
  const out = { ...answer };
  if (answer.expires_in_ms) out.expires_at = Date.now() + answer.expires_in_ms;
  return out;
}

export function enc(id) {
  return encodeURIComponent(id);
}

// The gateway connection: HELLO, IDENTIFY, heartbeats, RESUME after a drop (the server
// replays what was missed), reconnect with backoff. Emits "dispatch" {t, d} and "state".

const OP = { DISPATCH: 0, HEARTBEAT: 1, IDENTIFY: 2, PRESENCE_UPDATE: 3, RESUME: 6, RECONNECT: 7,
  INVALID_SESSION: 9, HELLO: 10, HEARTBEAT_ACK: 11 };
const MAX_BACKOFF_MS = 30_000;
// Close codes after which reconnecting cannot help.
const FATAL = new Set([4004, 4008]);

export class Gateway extends EventTarget {
  constructor(api, url = gatewayUrl()) {
    super();
    this.api = api;
    this.url = url;
    this.ws = null;
    this.sessionId = null;
    this.seq = null;
    this.state = "idle";
    this.attempts = 0;
    this._heartbeat = null;
    this._acked = true;
    this._reconnectTimer = null;
    this._stopped = false;
    this._presence = null;
  }

  start() {
    this._stopped = false;
    // Back online: try at once rather than waiting out the backoff.
    this._online = () => {
      if (!this._stopped && !this.ws) {
        this.attempts = 0;
        this._open();
      }
    };
    window.addEventListener("online", this._online);
    this._open();
  }

  stop() {
    this._stopped = true;
    window.removeEventListener("online", this._online);
    clearTimeout(this._reconnectTimer);
    this._stopHeartbeat();
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this._setState("closed");
  }

  // Gives up on the socket at once, as on a network failure: a closing handshake over a
  // dead network may never finish, so reconnecting does not wait for it.
  drop() {
    const ws = this.ws;
    if (!ws) return;
    ws.close(4000, "dropped");
    this._onClose(ws, { code: 4000 });
  }

  setPresence(status, customStatus) {
    this._presence = { status, ...(customStatus !== undefined ? { custom_status: customStatus } : {}) };
    this._send(OP.PRESENCE_UPDATE, this._presence);
  }

  _setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  _open() {
    clearTimeout(this._reconnectTimer);
    this._setState(this.sessionId ? "resuming" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = (msg) => this._onFrame(ws, msg);
    ws.onclose = (ev) => this._onClose(ws, ev);
    ws.onerror = () => {};
  }

  _send(op, d) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op, d }));
  }

  async _onFrame(ws, msg) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(msg.data);
    } catch {
      return;
    }
    switch (frame.op) {
      case OP.HELLO:
        this._startHeartbeat(frame.d.heartbeat_interval);
        await this._identifyOrResume();
        break;
      case OP.HEARTBEAT_ACK:
        this._acked = true;
        break;
      case OP.HEARTBEAT:
        this._send(OP.HEARTBEAT, this.seq);
        break;
      case OP.RECONNECT:
        ws.close(4000, "reconnect");
        break;
      case OP.INVALID_SESSION:
        // The session is gone: start afresh; READY will replace everything the store holds.
        this.sessionId = null;
        this.seq = null;
        await this._identifyOrResume();
        break;
      case OP.DISPATCH:
        if (typeof frame.s === "number") this.seq = frame.s;
        if (frame.t === "READY") {
          this.sessionId = frame.d.session_id;
          this.attempts = 0;
          this._setState("connected");
        } else if (frame.t === "RESUMED") {
          this.attempts = 0;
          this._setState("connected");
        }
        this.dispatchEvent(new CustomEvent("dispatch", { detail: { t: frame.t, d: frame.d } }));
        break;
    }
  }

  async _identifyOrResume() {
    let token;
    try {
      token = await this.api.freshToken();
    } catch {
      this.ws?.close(4000, "no token");
      return;
    }
    if (this.sessionId && this.seq !== null) {
      this._send(OP.RESUME, { token, session_id: this.sessionId, seq: this.seq });
    } else {
      this._send(OP.IDENTIFY, { token });
      if (this._presence) this._send(OP.PRESENCE_UPDATE, this._presence);
    }
  }

  _startHeartbeat(interval) {
    this._stopHeartbeat();
    this._acked = true;
    this._heartbeat = setInterval(() => {
      if (!this._acked) {
        // No ACK for a whole interval: the connection is a zombie.
        this.drop();
        return;
      }
      this._acked = false;
      this._send(OP.HEARTBEAT, this.seq);
    }, interval);
  }

  _stopHeartbeat() {
    clearInterval(this._heartbeat);
    this._heartbeat = null;
  }

  _onClose(ws, ev) {
    if (ws !== this.ws) return;
    this._stopHeartbeat();
    this.ws = null;
    if (this._stopped) return;
    if (FATAL.has(ev.code)) {
      this._setState("failed");
      this.dispatchEvent(new CustomEvent("fatal", { detail: ev.code }));
      return;
    }
    this._setState("disconnected");
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempts) * (0.75 + Math.random() * 0.5);
    this.attempts += 1;
    this._reconnectTimer = setTimeout(() => this._open(), this.attempts === 1 ? 250 : delay);
  }
}

function gatewayUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/gateway`;
}

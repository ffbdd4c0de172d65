// Client state: what READY gave and every dispatch since, plus loaded message history.
// Views subscribe to topics ("servers", "channels:<server>", "messages:<channel>", ...).

import { enc } from "./api.js";
import { hasPermission } from "./permissions.js";

const PAGE = 100;
const TYPING_TTL_MS = 8_000;

export class Store {
  constructor(api) {
    this.api = api;
    this.me = null;
    this.servers = new Map(); // id -> server {channels: [], roles: []}
    this.members = new Map(); // server id -> Map(user id -> member)
    this.presence = new Map(); // user id -> {status, custom_status}
    this.dms = new Map();
    this.relationships = new Map(); // user id -> relationship
    this.readStates = new Map(); // channel id -> {last_read_message_id, unread_count, mention_count}
    this.channels = new Map(); // message timelines, channel id -> Timeline
    this.threads = new Map(); // thread id -> Timeline
    this.threadLists = new Map(); // channel id -> [thread]
    this.typing = new Map(); // channel id -> Map(user id -> expiry ms)
    this.pins = new Map(); // channel id -> [message id]
    this.voice = new Map(); // voice channel id -> Map(user id -> voice state)
    this.permissions = new Map(); // server id -> {permissions, channels: {id: bits}}
    this._permissionLoads = new Map();
    this.listeners = new Map();
    this.current = { serverId: null, channelId: null };
  }

  on(topic, fn) {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic).add(fn);
    return () => this.listeners.get(topic)?.delete(fn);
  }

  emit(topic, detail) {
    // Anything that can change what the user may do reloads their permissions.
    const m = /^(channels|roles|members|overwrites):(.+)$/.exec(topic);
    if (m) {
      const serverId = m[1] === "overwrites" ? this.channel(m[2])?.server_id : m[2];
      if (serverId && this.servers.has(serverId) && this.permissions.has(serverId)) this.loadPermissions(serverId);
    }
    for (const fn of this.listeners.get(topic) || []) fn(detail);
    for (const fn of this.listeners.get("*") || []) fn(topic, detail);
  }

  // --- READY -------------------------------------------------------------------------------

  loadReady(d) {
    this.me = { ...(this.me || {}), ...d.user };
    this.servers.clear();
    for (const server of d.servers) this.servers.set(server.id, normaliseServer(server));
    this.dms.clear();
    for (const dm of d.dms) this.dms.set(dm.id, dm);
    this.relationships.clear();
    for (const rel of d.relationships) this.relationships.set(rel.user_id, rel);
    this.readStates.clear();
    for (const rs of d.read_states) this.readStates.set(rs.channel_id, rs);
    // A fresh session may have missed anything: timelines are loaded again when shown.
    for (const timeline of this.channels.values()) timeline.stale = true;
    this.members.clear();
    this.emit("ready");
    this.emit("servers");
    this.emit("dms");
    this.emit("relationships");
    this.emit("unread");
  }

  // --- lookups -----------------------------------------------------------------------------

  server(id) { return this.servers.get(id); }

  channel(id) {
    for (const server of this.servers.values()) {
      const channel = server.channels.find((c) => c.id === id);
      if (channel) return channel;
    }
    return null;
  }

  isDm(id) { return this.dms.has(id); }

  dmName(dm) {
    const others = (dm.recipients || []).filter((r) => r.id !== this.me?.id);
    return others.map((r) => r.display_name || r.id).join(", ") || "Just you";
  }

  displayName(userId, serverId) {
    const member = serverId ? this.members.get(serverId)?.get(userId) : null;
    if (member?.nickname) return member.nickname;
    if (member?.user?.display_name) return member.user.display_name;
    if (userId === this.me?.id) return this.me.display_name;
    return userId?.slice(1).split(":")[0];
  }

  statusOf(userId) {
    return this.presence.get(userId)?.status || "offline";
  }

  // The colour of the member's highest role that has one.
  roleColour(serverId, userId) {
    const server = this.servers.get(serverId);
    const member = this.members.get(serverId)?.get(userId);
    if (!server || !member) return null;
    const held = server.roles.filter((r) => member.role_ids.includes(r.id) && r.color).sort((a, b) => b.position - a.position);
    return held.length ? "#" + Number(held[0].color).toString(16).padStart(6, "0") : null;
  }

  unread(channelId) {
    return this.readStates.get(channelId) || { unread_count: 0, mention_count: 0 };
  }

  serverUnread(serverId) {
    const server = this.servers.get(serverId);
    let unread = 0, mentions = 0;
    for (const channel of server?.channels || []) {
      const rs = this.unread(channel.id);
      unread += rs.unread_count;
      mentions += rs.mention_count;
    }
    return { unread, mentions };
  }

  // --- own permissions (GET /servers/{id}/permissions/@me) ----------------------------------

  loadPermissions(serverId) {
    if (!this._permissionLoads.has(serverId)) {
      const load = (async () => {
        await new Promise((r) => setTimeout(r, 30)); // coalesce bursts of role/channel events
        this._permissionLoads.delete(serverId);
        try {
          this.permissions.set(serverId, await this.api.get(`/servers/${enc(serverId)}/permissions/@me`));
          this.emit("permissions:" + serverId);
        } catch {
          // Not a member any more: the server is about to leave the list.
        }
      })();
      this._permissionLoads.set(serverId, load);
    }
    return this._permissionLoads.get(serverId);
  }

  // Whether the user may do `key` in the server, or in one of its channels.
  can(serverId, key, channelId = null) {
    const server = this.servers.get(serverId);
    if (!server) return false;
    if (server.owner_id === this.me?.id) return true;
    const known = this.permissions.get(serverId);
    if (!known) return false;
    const bits = channelId ? known.channels[channelId] : known.permissions;
    return bits !== undefined && hasPermission(bits, key);
  }

  // --- voice ---------------------------------------------------------------------------------

  applyVoiceState(state) {
    for (const [channelId, users] of this.voice) {
      if (users.delete(state.user_id) && channelId !== state.channel_id) this.emit("voice:" + channelId);
    }
    if (state.connected && state.channel_id) {
      if (!this.voice.has(state.channel_id)) this.voice.set(state.channel_id, new Map());
      this.voice.get(state.channel_id).set(state.user_id, state);
      this.emit("voice:" + state.channel_id);
    }
    this.emit("voice");
  }

  async loadVoiceStates(channelId) {
    try {
      const states = await this.api.get(`/channels/${enc(channelId)}/voice/states`);
      this.voice.set(channelId, new Map(states.map((s) => [s.user_id, s])));
      this.emit("voice:" + channelId);
      this.emit("voice");
    } catch {
      // Not visible any more, or voice not set up: nothing to show.
    }
  }

  // --- members -------------------------------------------------------------------------------

  async loadMembers(serverId) {
    const map = new Map();
    let after = null;
    for (;;) {
      const page = await this.api.get(`/servers/${enc(serverId)}/members?limit=1000${after ? "&after=" + enc(after) : ""}`);
      for (const member of page) {
        map.set(member.user_id, member);
        if (member.status) this.presence.set(member.user_id, { status: member.status, custom_status: member.custom_status });
      }
      if (page.length < 1000) break;
      after = page[page.length - 1].user_id;
    }
    this.members.set(serverId, map);
    this.emit("members:" + serverId);
    this.emit("messages-meta");
    return map;
  }

  // --- timelines -----------------------------------------------------------------------------

  timeline(channelId, threadId = null) {
    const key = threadId || channelId;
    const table = threadId ? this.threads : this.channels;
    if (!table.has(key)) table.set(key, new Timeline(channelId, threadId));
    return table.get(key);
  }

  async loadOlder(channelId, threadId = null) {
    const tl = this.timeline(channelId, threadId);
    if (tl.loading || (tl.loaded && !tl.hasMore && !tl.stale)) return tl;
    if (tl.stale) tl.reset();
    tl.loading = true;
    try {
      const before = tl.messages.length ? `&before=${enc(tl.messages[0].id)}` : "";
      const base = threadId
        ? `/channels/${enc(channelId)}/threads/${enc(threadId)}/messages`
        : `/channels/${enc(channelId)}/messages`;
      const page = await this.api.get(`${base}?limit=${PAGE}${before}`);
      tl.prepend(page.slice().reverse());
      tl.hasMore = page.length === PAGE;
      tl.loaded = true;
      for (const early of tl.early.splice(0)) {
        if (early.removed) tl.remove(early.removed);
        else tl.upsert(early.message, this.me?.id);
      }
    } finally {
      tl.loading = false;
    }
    this.emit("messages:" + (threadId || channelId), { kind: "older" });
    return tl;
  }

  upsertMessage(message, kind = "create") {
    const key = message.thread_id || message.channel_id;
    const tl = (message.thread_id ? this.threads : this.channels).get(key);
    if (tl && tl.loaded) {
      if (tl.upsert(message, this.me?.id)) this.emit("messages:" + key, { kind, id: message.id });
    } else if (tl && tl.loading) {
      // The first page is on its way and may have been read before this was stored: keep
      // it, to be merged when the page arrives (duplicates are dropped by ID).
      tl.early.push({ message });
    }
    if (message.thread_id) {
      const threads = this.threadLists.get(message.channel_id);
      const thread = threads?.find((t) => t.id === message.thread_id);
      if (thread && kind === "create") {
        thread.message_count += 1;
        thread.last_message_id = message.id;
        thread.last_activity_at = message.created_at;
        this.emit("threads:" + message.channel_id);
      } else if (!thread) {
        // A thread this client has not seen yet (someone just started it).
        this.emit("threads-unknown:" + message.channel_id);
      }
    }
  }

  removeMessage(channelId, messageId) {
    for (const tl of [this.channels.get(channelId), ...this.threads.values()]) {
      if (tl && tl.channelId === channelId && tl.loading && !tl.loaded) tl.early.push({ removed: messageId });
      if (tl && tl.channelId === channelId && tl.remove(messageId)) {
        this.emit("messages:" + (tl.threadId || channelId), { kind: "delete", id: messageId });
      }
    }
  }

  findMessage(channelId, messageId) {
    const own = this.channels.get(channelId)?.byId.get(messageId);
    if (own) return own;
    for (const tl of this.threads.values()) {
      if (tl.channelId === channelId && tl.byId.has(messageId)) return tl.byId.get(messageId);
    }
    return null;
  }

  // --- dispatches ----------------------------------------------------------------------------

  apply(t, d) {
    const handler = DISPATCH[t];
    if (handler) handler(this, d);
    this.emit("dispatch:" + t, d);
  }

  addServer(server) {
    // An /api/v1 answer carries no roles; SERVER_CREATE does: whichever comes second keeps them.
    const known = this.servers.get(server.id);
    const merged = normaliseServer(server);
    if (!server.roles && known) merged.roles = known.roles;
    this.servers.set(server.id, merged);
    this.emit("servers");
    this.emit("channels:" + server.id);
  }

  bumpUnread(message) {
    if (message.author?.id === this.me?.id || message.thread_id) return;
    if (this.current.channelId === message.channel_id && document.visibilityState === "visible") return;
    const rs = { ...this.unread(message.channel_id), channel_id: message.channel_id };
    rs.unread_count += 1;
    if (mentionsMe(this, message)) rs.mention_count += 1;
    this.readStates.set(message.channel_id, rs);
    this.emit("unread");
  }

  markRead(channelId, messageId) {
    const rs = this.unread(channelId);
    this.readStates.set(channelId, { ...rs, channel_id: channelId, last_read_message_id: messageId, unread_count: 0, mention_count: 0 });
    this.emit("unread");
  }

  typingIn(channelId) {
    const now = Date.now();
    const map = this.typing.get(channelId);
    if (!map) return [];
    return [...map.entries()].filter(([user, until]) => until > now && user !== this.me?.id).map(([user]) => user);
  }
}

export function mentionsMe(store, message) {
  const me = store.me?.id;
  if (!me || message.author?.id === me) return false;
  if (message.mention_everyone) return true;
  if ((message.mentions || []).some((m) => (m.id || m) === me)) return true;
  const server = store.channel(message.channel_id)?.server_id;
  const member = server ? store.members.get(server)?.get(me) : null;
  return !!member && (message.mention_roles || []).some((r) => member.role_ids.includes(r));
}

function normaliseServer(server) {
  return { ...server, channels: sortChannels(server.channels || []), roles: server.roles || [] };
}

function sortChannels(channels) {
  return channels.slice().sort((a, b) => (a.position ?? 0) - (b.position ?? 0) || a.name.localeCompare(b.name));
}

// One channel's (or thread's) loaded messages, oldest first, without duplicates.
export class Timeline {
  constructor(channelId, threadId) {
    this.channelId = channelId;
    this.threadId = threadId;
    this.reset();
  }

  reset() {
    this.messages = [];
    this.byId = new Map();
    this.hasMore = true;
    this.loaded = false;
    this.loading = false;
    this.stale = false;
    this.version = 0;
    this.early = []; // dispatches that arrived while the first page was loading
  }

  prepend(older) {
    const fresh = older.filter((m) => !this.byId.has(m.id));
    for (const m of fresh) this.byId.set(m.id, m);
    this.messages = fresh.concat(this.messages);
    this.version += 1;
  }

  // Returns whether anything changed. A message already present is replaced (edits,
  // reactions, the server's copy of a pending send); a new one goes in time order.
  upsert(message, meId = null) {
    let pending = message.nonce ? this.messages.findIndex((m) => m.pending && m.nonce === message.nonce) : -1;
    if (pending < 0 && !message.nonce && meId && message.author?.id === meId) {
      // Our own message came through the gateway before the send's answer: it replaces
      // the pending copy with the same text, so the two are never on screen together.
      pending = this.messages.findIndex((m) => m.pending && !m.failed && m.content === message.content);
    }
    if (pending >= 0) {
      this.byId.delete(this.messages[pending].id);
      this.messages.splice(pending, 1);
    }
    const existing = this.byId.get(message.id);
    if (existing) {
      const index = this.messages.indexOf(existing);
      this.messages[index] = message;
      this.byId.set(message.id, message);
      this.version += 1;
      return true;
    }
    this.byId.set(message.id, message);
    let index = this.messages.length;
    while (index > 0 && !this.messages[index - 1].pending && this.messages[index - 1].created_at > message.created_at) index -= 1;
    this.messages.splice(index, 0, message);
    this.version += 1;
    return true;
  }

  remove(id) {
    const existing = this.byId.get(id);
    if (!existing) return false;
    this.byId.delete(id);
    this.messages.splice(this.messages.indexOf(existing), 1);
    this.version += 1;
    return true;
  }
}

function updateServer(store, id, fn) {
  const server = store.servers.get(id);
  if (!server) return null;
  fn(server);
  return server;
}

const DISPATCH = {
  READY: (s, d) => s.loadReady(d),
  MESSAGE_CREATE: (s, d) => {
    s.upsertMessage(d, "create");
    s.bumpUnread(d);
    if (!d.thread_id) {
      const dm = s.dms.get(d.channel_id);
      if (dm) {
        dm.last_message_id = d.id;
        s.emit("dms");
      }
    }
  },
  MESSAGE_UPDATE: (s, d) => s.upsertMessage(d, "update"),
  MESSAGE_DELETE: (s, d) => s.removeMessage(d.channel_id, d.id),
  REACTION_ADD: (s, d) => reaction(s, d, +1),
  REACTION_REMOVE: (s, d) => reaction(s, d, -1),
  MESSAGE_PIN: (s, d) => {
    s.pins.set(d.channel_id, d.pinned);
    const tl = s.channels.get(d.channel_id);
    if (tl) {
      for (const m of tl.messages) m.pinned = d.pinned.includes(m.id);
      tl.version += 1;
      s.emit("messages:" + d.channel_id, { kind: "update" });
    }
    s.emit("pins:" + d.channel_id);
  },
  TYPING_START: (s, d) => {
    if (!s.typing.has(d.channel_id)) s.typing.set(d.channel_id, new Map());
    s.typing.get(d.channel_id).set(d.user_id, Date.now() + TYPING_TTL_MS);
    s.emit("typing:" + d.channel_id);
    setTimeout(() => s.emit("typing:" + d.channel_id), TYPING_TTL_MS + 50);
  },
  CHANNEL_CREATE: (s, d) => {
    updateServer(s, d.server_id, (server) => {
      server.channels = sortChannels(server.channels.filter((c) => c.id !== d.id).concat([d]));
    });
    s.emit("channels:" + d.server_id);
  },
  CHANNEL_UPDATE: (s, d) => DISPATCH.CHANNEL_CREATE(s, d),
  CHANNEL_DELETE: (s, d) => {
    updateServer(s, d.server_id, (server) => {
      server.channels = server.channels.filter((c) => c.id !== d.id);
    });
    s.emit("channels:" + d.server_id);
    s.emit("channel-gone", d);
  },
  CHANNEL_OVERRIDE_UPDATE: (s, d) => s.emit("overwrites:" + d.channel_id, d),
  SERVER_CREATE: (s, d) => s.addServer(d),
  SERVER_UPDATE: (s, d) => {
    updateServer(s, d.id, (server) => Object.assign(server, { ...d, channels: server.channels, roles: server.roles }));
    s.emit("servers");
    s.emit("channels:" + d.id);
  },
  SERVER_DELETE: (s, d) => {
    s.servers.delete(d.id);
    s.members.delete(d.id);
    s.emit("servers");
    s.emit("server-gone", d);
  },
  SERVER_MEMBER_ADD: (s, d) => {
    const members = s.members.get(d.server_id);
    if (members) members.set(d.user.id, { server_id: d.server_id, user_id: d.user.id, user: d.user, role_ids: d.role_ids || [], nickname: null, joined_at: d.joined_at, webhook: !!d.webhook });
    s.emit("members:" + d.server_id);
  },
  SERVER_MEMBER_REMOVE: (s, d) => {
    s.members.get(d.server_id)?.delete(d.user_id);
    s.emit("members:" + d.server_id);
  },
  ROLE_CREATE: (s, d) => {
    updateServer(s, d.server_id, (server) => {
      server.roles = server.roles.filter((r) => r.id !== d.id).concat([d]).sort((a, b) => a.position - b.position);
    });
    s.emit("roles:" + d.server_id);
    s.emit("members:" + d.server_id);
  },
  ROLE_UPDATE: (s, d) => DISPATCH.ROLE_CREATE(s, d),
  ROLE_DELETE: (s, d) => {
    updateServer(s, d.server_id, (server) => {
      server.roles = server.roles.filter((r) => r.id !== d.role_id);
    });
    s.emit("roles:" + d.server_id);
    s.emit("members:" + d.server_id);
  },
  MEMBER_ROLE_UPDATE: (s, d) => {
    const member = s.members.get(d.server_id)?.get(d.user_id);
    if (member) member.role_ids = d.role_ids;
    s.emit("members:" + d.server_id);
    s.emit("roles:" + d.server_id);
  },
  PRESENCE_UPDATE: (s, d) => {
    s.presence.set(d.user_id, { status: d.status, custom_status: d.custom_status });
    if (d.user_id === s.me?.id) s.emit("me");
    s.emit("presence", d);
  },
  MESSAGE_ACK: (s, d) => s.markRead(d.channel_id, d.message_id),
  VOICE_STATE_UPDATE: (s, d) => s.applyVoiceState(d),
  RELATIONSHIP_UPDATE: (s, d) => {
    if (d.rel_type) {
      const old = s.relationships.get(d.target_id);
      s.relationships.set(d.target_id, { user_id: d.target_id, type: d.rel_type, user: d.user || old?.user || { id: d.target_id } });
    } else {
      s.relationships.delete(d.target_id);
    }
    s.emit("relationships");
  },
  DM_CHANNEL_CREATE: (s, d) => {
    s.dms.set(d.id, d);
    s.emit("dms");
  },
};

function reaction(store, d, delta) {
  const message = store.findMessage(d.channel_id, d.message_id);
  if (!message) return;
  const reactions = (message.reactions || []).map((r) => ({ ...r }));
  let entry = reactions.find((r) => r.key === d.emoji);
  const mine = d.user_id === store.me?.id;
  if (!entry && delta > 0) {
    entry = { key: d.emoji, count: 0, me: false };
    reactions.push(entry);
  }
  if (!entry) return;
  entry.count = Math.max(0, entry.count + delta);
  if (mine) entry.me = delta > 0;
  store.upsertMessage({ ...message, reactions: reactions.filter((r) => r.count > 0) }, "update");
}

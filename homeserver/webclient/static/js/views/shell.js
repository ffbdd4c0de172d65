// The signed-in app: server rail, sidebar, the open channel / DM / friends view, member
// list and thread panel; routing between them, keyboard shortcuts, the connection banner,
// presence (idle detection) and notifications.

import { icon } from "../icons.js";
import { enc } from "../api.js";
import { h, replace } from "../dom.js";
import { IdleWatcher } from "../idle.js";
import { watchNotifications } from "../notifications.js";
import { FriendsView } from "./friends.js";
import { MemberList, openUserMenu } from "./member_list.js";
import { MessagePane } from "./message_pane.js";
import { openModal, toast } from "./modal.js";
import { ServerRail } from "./server_rail.js";
import { Sidebar } from "./sidebar.js";
import { openSwitcher } from "./switcher.js";
import { ThreadPanel } from "./thread_panel.js";
import { calendarTime } from "../time.js";

const LAST_CHANNEL_KEY = "drocsid.lastChannel";
const SHORTCUTS = [["Ctrl/⌘ + K", "Quick switcher"], ["Ctrl + \\", "Toggle the channel list"], ["Ctrl + B", "Toggle the member list"],
  ["Ctrl + /", "This list"], ["Enter", "Send message"], ["Shift + Enter", "New line"], ["↑ in an empty box", "Edit your last message"],
  ["Escape", "Cancel editing / close dialogs and panels"], ["↑ ↓ (quick switcher)", "Move through results"]];

export class Shell {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.route = { home: true };
    this.ready = false;
    this.view = null;
    this.members = null;
    this.threads = null;
    this.showMembers = localStorage.getItem("drocsid.members") !== "off";
    this.myStatus = localStorage.getItem("drocsid.status") || "online";
    this.lastChannel = JSON.parse(localStorage.getItem(LAST_CHANNEL_KEY) || "{}");
    this.banner = h("div", { class: "connection-status", "data-testid": "connection-status", role: "status", hidden: true });
    this.main = h("main", { class: "main", id: "main" });
    this.rail = new ServerRail(ctx);
    this.sidebar = new Sidebar(ctx);
    this.layout = h("div", { class: "app-shell" }, h("a", { href: "#main", class: "skip-link" }, "Skip to content"), this.rail.el, this.sidebar.el, this.main);
    this.off = [];
    this.off.push(ctx.store.on("ready", () => this._onReady()));
    this.off.push(ctx.store.on("server-gone", (d) => { if (this.route.serverId === d.id) ctx.navigate("/channels/@me"); }));
    this.off.push(ctx.store.on("channel-gone", (d) => { if (this.route.channelId === d.id) this.openServer(d.server_id); }));
    this.off.push(watchNotifications(ctx));
    this._gatewayState = (ev) => this._showConnection(ev.detail);
    ctx.gateway.addEventListener("state", this._gatewayState);
    this._keys = (ev) => this._shortcut(ev);
    document.addEventListener("keydown", this._keys);
    // Never idle while in a voice channel (as the original).
    this.idle = new IdleWatcher((status) => {
      if (this.myStatus === "online" && !(status === "idle" && ctx.voice?.connected)) ctx.gateway.setPresence(status);
    });
    replace(root, h("div", { class: "loading-screen", role: "status" }, h("img", { src: "/icons/icon.svg", alt: "", width: 64, height: 64 }), h("p", {}, "Connecting…")), this.banner);
  }

  destroy() {
    this.view?.destroy?.();
    this.members?.destroy();
    this.threads?.destroy();
    this.rail.destroy();
    this.sidebar.destroy();
    this.off.forEach((off) => off());
    this.idle.stop();
    this.ctx.gateway?.removeEventListener("state", this._gatewayState);
    document.removeEventListener("keydown", this._keys);
  }

  _onReady() {
    const first = !this.ready;
    this.ready = true;
    if (first) {
      replace(this.root, this.layout, this.banner);
      // A status chosen by hand outlives the session; the gateway's IDENTIFY set "online".
      if (this.myStatus !== "online") this.ctx.gateway.setPresence(this.myStatus);
      window.dispatchEvent(new CustomEvent("drocsid:ready"));
    }
    this.show(location.pathname, true);
  }

  _showConnection(state) {
    const text = { connecting: "Connecting…", resuming: "Reconnecting…", disconnected: "Connection lost. Reconnecting…", failed: "Disconnected." }[state];
    this.banner.hidden = !text;
    this.banner.textContent = text || "";
    this.banner.dataset.state = state;
  }

  // --- routing ------------------------------------------------------------------------------

  parse(path) {
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== "channels" || parts[1] === "@me" || !parts[1]) return { home: true, dmId: parts[2] || null };
    return { home: false, serverId: parts[1], channelId: parts[2] || null };
  }

  show(path, force = false) {
    if (!this.ready) {
      // A shell made after READY (the session started on another page, e.g. an invite)
      // starts at once; otherwise READY starts it.
      if (this.ctx.store.me && this.ctx.gateway.state === "connected") this._onReady();
      return;
    }
    const route = this.parse(path);
    const { store } = this.ctx;
    if (!route.home) {
      const server = store.server(route.serverId);
      if (!server) {
        toast("You are not a member of that server.");
        this.ctx.navigate("/channels/@me", { replace: true });
        return;
      }
      if (!store.permissions.has(server.id)) store.loadPermissions(server.id);
      const channel = route.channelId && server.channels.find((c) => c.id === route.channelId && c.type === "text");
      if (!channel) {
        const fallback = this._defaultChannel(server);
        if (fallback) {
          this.ctx.navigate(`/channels/${enc(server.id)}/${enc(fallback.id)}`, { replace: true });
          return;
        }
        route.channelId = null;
      }
    }
    if (route.dmId && !store.dms.has(route.dmId)) route.dmId = null;
    const same = !force && this.view && JSON.stringify(route) === JSON.stringify(this.route);
    this.route = route;
    store.current = { serverId: route.serverId || null, channelId: route.channelId || route.dmId || null };
    this.rail.render();
    this.sidebar.render();
    if (same) return;
    if (!force || !this.view || this._viewKey !== JSON.stringify(route)) this._renderMain();
  }

  _defaultChannel(server) {
    const text = server.channels.filter((c) => c.type === "text");
    return text.find((c) => c.id === this.lastChannel[server.id]) || text[0];
  }

  openServer(serverId) {
    const server = this.ctx.store.server(serverId);
    const channel = server && this._defaultChannel(server);
    this.ctx.navigate(`/channels/${enc(serverId)}${channel ? "/" + enc(channel.id) : ""}`);
  }

  _renderMain() {
    this.view?.destroy?.();
    this.members?.destroy();
    this.threads?.destroy();
    this.view = this.members = this.threads = null;
    this._viewKey = JSON.stringify(this.route);
    const { store } = this.ctx;
    const route = this.route;
    if (route.home && !route.dmId) {
      this.view = new FriendsView(this.ctx);
      replace(this.main, this.view.el);
      document.title = "Friends · Drocsid";
      return;
    }
    if (route.home) return this._renderDm(store.dms.get(route.dmId));
    const server = store.server(route.serverId);
    const channel = server.channels.find((c) => c.id === route.channelId);
    if (!channel) {
      replace(this.main, h("div", { class: "empty-state" }, h("h2", {}, server.name), h("p", { class: "muted" }, "There are no text channels you can see here yet.")));
      return;
    }
    this.lastChannel[server.id] = channel.id;
    localStorage.setItem(LAST_CHANNEL_KEY, JSON.stringify(this.lastChannel));
    document.title = `#${channel.name} · ${server.name} · Drocsid`;
    const body = h("div", { class: "channel-body" });
    this.view = new MessagePane(this.ctx, { channelId: channel.id, serverId: server.id, title: `#${channel.name}`, onOpenThread: (t) => this.openThreads(t) });
    body.append(this.view.el);
    this.members = new MemberList(this.ctx, server.id);
    this.members.el.hidden = !this.showMembers;
    body.append(this.members.el);
    const header = h("header", { class: "channel-header" },
      h("h1", {}, h("span", { class: "channel-icon", "aria-hidden": "true" }, icon(channel.private ? "lock" : "hash")), channel.name),
      channel.topic ? h("p", { class: "channel-topic", title: channel.topic }, channel.topic) : null,
      h("div", { class: "header-actions" },
        h("button", { type: "button", class: "icon-button", "aria-label": "Threads", title: "Threads", "data-testid": "threads-button", onclick: () => this.openThreads() }, icon("thread")),
        h("button", { type: "button", class: "icon-button", "aria-label": "Pinned messages", title: "Pinned messages", onclick: () => this.openPins(channel) }, icon("pin")),
        h("button", { type: "button", class: "icon-button", "aria-label": "Member list", title: "Member list (Ctrl+B)", "aria-pressed": this.showMembers ? "true" : "false",
          "data-testid": "members-toggle", onclick: () => this.toggleMembers() }, icon("members"))));
    replace(this.main, h("section", { class: "channel-view", "aria-label": `#${channel.name}` }, header, body));
    this._channelBody = body;
    queueMicrotask(() => this.view?.composer.focus());
  }

  _renderDm(dm) {
    const { store } = this.ctx;
    const name = store.dmName(dm);
    document.title = `${name} · Drocsid`;
    const others = (dm.recipients || []).filter((r) => r.id !== store.me.id);
    this.view = new MessagePane(this.ctx, { channelId: dm.id, title: dm.type === "dm" ? `@${name}` : name });
    const profile = others.length === 1 ? h("button", { type: "button", class: "icon-button", "aria-label": `Options for ${name}`, onclick: (ev) => openUserMenu(this.ctx, others[0].id, ev.currentTarget) }, icon("more")) : null;
    const call = h("button", { type: "button", class: "icon-button", "aria-label": "Start a voice call", title: "Start a voice call", "data-testid": "dm-call",
      onclick: () => this.ctx.voice.join(dm.id).catch((err) => toast(err.message, "error")) }, icon("mic"));
    const add = dm.type === "group_dm" ? h("button", { type: "button", class: "icon-button", "aria-label": "Add people to this group", onclick: () => this.openNewDm(dm) }, icon("plus")) : null;
    const recipients = dm.type === "group_dm" ? h("aside", { class: "member-list", "aria-label": "Members" }, h("h3", { class: "member-group-title" }, `Members — ${dm.recipients.length}`),
      h("ul", { role: "list" }, dm.recipients.map((r) => h("li", { class: "member" }, h("span", { class: `status-dot inline ${store.statusOf(r.id)}`, "aria-hidden": "true" }), r.display_name || r.id)))) : null;
    replace(this.main, h("section", { class: "channel-view", "aria-label": name },
      h("header", { class: "channel-header" }, h("h1", {}, h("span", { class: "channel-icon", "aria-hidden": "true" }, icon("at")), name), h("div", { class: "header-actions" }, call, add, profile)),
      h("div", { class: "channel-body" }, this.view.el, recipients)));
    queueMicrotask(() => this.view?.composer.focus());
  }

  // --- panels and dialogs -------------------------------------------------------------------

  toggleMembers() {
    this.showMembers = !this.showMembers;
    localStorage.setItem("drocsid.members", this.showMembers ? "on" : "off");
    if (this.members) this.members.el.hidden = !this.showMembers;
    this.main.querySelector('[data-testid="members-toggle"]')?.setAttribute("aria-pressed", this.showMembers ? "true" : "false");
  }

  openThreads(thread = null) {
    if (!this._channelBody || this.route.home) return;
    if (!this.threads) {
      this.threads = new ThreadPanel(this.ctx, { serverId: this.route.serverId, channelId: this.route.channelId, onClose: () => this.closeThreads() });
      this._channelBody.insertBefore(this.threads.el, this.members?.el || null);
    }
    if (thread) this.threads.showThread(thread);
    else this.threads.showList();
  }

  closeThreads() {
    this.threads?.destroy();
    this.threads?.el.remove();
    this.threads = null;
    this.view?.composer.focus();
  }

  async openPins(channel) {
    const list = h("ul", { class: "pin-list", role: "list" }, h("li", { class: "muted" }, "Loading…"));
    const modal = openModal(`Pinned messages in #${channel.name}`, list);
    try {
      const pins = await this.ctx.api.get(`/channels/${enc(channel.id)}/pins`);
      replace(list, pins.length ? pins.map((m) => h("li", { class: "pin" },
        h("div", {}, h("strong", {}, this.ctx.store.displayName(m.author?.id, channel.server_id)), " ", h("span", { class: "muted small" }, calendarTime(m.created_at))),
        h("div", {}, m.content), h("button", { type: "button", class: "link-button", onclick: () => { modal.close(); this.view?.jumpTo(m.id); } }, "Jump")))
        : h("li", { class: "muted" }, "This channel doesn't have any pinned messages… yet."));
    } catch (err) {
      replace(list, h("li", { class: "form-error" }, err.message));
    }
  }

  openSwitcher() {
    openSwitcher(this.ctx);
  }

  // A new DM or group DM with friends (or anyone by user ID); with `dm`, add people to it.
  openNewDm(dm = null) {
    const { store, api } = this.ctx;
    const friends = [...store.relationships.values()].filter((r) => r.type === "friend");
    const boxes = friends.map((r) => h("label", { class: "field checkbox" }, h("input", { type: "checkbox", value: r.user_id }), h("span", {}, r.user?.display_name || r.user_id)));
    const other = h("input", { placeholder: "@someone:server", "aria-label": "Or a user ID" });
    const error = h("p", { class: "form-error", role: "alert" });
    const form = h("form", { class: "form" }, friends.length ? h("fieldset", {}, h("legend", {}, "Friends"), boxes) : h("p", { class: "muted" }, "Add friends to pick them here, or type a user ID."),
      h("label", { class: "field" }, h("span", {}, "Or a user ID"), other), error,
      h("div", { class: "modal-actions" }, h("button", { class: "button", type: "submit" }, dm ? "Add" : "Create DM")));
    const modal = openModal(dm ? "Add people" : "Select friends", form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const ids = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      if (other.value.trim()) ids.push(other.value.trim());
      if (!ids.length) { error.textContent = "Pick someone."; return; }
      try {
        let target;
        if (dm) {
          for (const id of ids) await api.put(`/dms/${enc(dm.id)}/recipients/${enc(id)}`);
          target = await api.get(`/dms/${enc(dm.id)}`);
        } else {
          target = ids.length === 1 ? await api.post("/dms", { recipient_id: ids[0] }) : await api.post("/dms/group", { recipient_ids: ids });
        }
        store.dms.set(target.id, target);
        store.emit("dms");
        modal.close();
        this.ctx.navigate(`/channels/@me/${enc(target.id)}`);
      } catch (err) {
        error.textContent = err.message;
      }
    });
  }

  async setStatus(status, customStatus) {
    this.myStatus = status;
    localStorage.setItem("drocsid.status", status);
    const body = { status };
    if (customStatus !== undefined) body.custom_status = customStatus;
    try {
      const me = await this.ctx.api.patch("/users/@me", body);
      this.ctx.store.me = { ...this.ctx.store.me, ...me };
      this.ctx.store.presence.set(me.id, { status: status === "invisible" ? "offline" : status, custom_status: me.custom_status });
      this.ctx.store.emit("me");
    } catch (err) {
      toast(err.message, "error");
    }
  }

  openShortcuts() {
    openModal("Keyboard shortcuts", h("table", { class: "shortcuts" }, h("tbody", {}, SHORTCUTS.map(([keys, what]) => h("tr", {}, h("th", { scope: "row" }, h("kbd", {}, keys)), h("td", {}, what))))));
  }

  _shortcut(ev) {
    const mod = ev.ctrlKey || ev.metaKey;
    if (mod && ev.key.toLowerCase() === "k") {
      ev.preventDefault();
      this.openSwitcher();
    } else if (mod && ev.key === "\\") {
      ev.preventDefault();
      this.sidebar.el.hidden = !this.sidebar.el.hidden;
    } else if (mod && ev.key.toLowerCase() === "b" && !ev.target.closest?.("textarea, input")) {
      ev.preventDefault();
      this.toggleMembers();
    } else if (mod && (ev.key === "/" || ev.key === "?")) {
      ev.preventDefault();
      this.openShortcuts();
    } else if (ev.key === "Escape" && this.threads && !document.querySelector("dialog[open]")) {
      this.closeThreads();
    }
  }
}

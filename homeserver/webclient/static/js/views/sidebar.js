// The second column: a server's channels (categories, unread and mention badges, the
// server menu) or, at Home, Friends and the DM list; the user panel at the bottom.

import { icon } from "../icons.js";
import { enc } from "../api.js";
import { h, replace } from "../dom.js";
import { avatar } from "./message_row.js";
import { openModal, promptModal, toast } from "./modal.js";

const STATUS_LABEL = { online: "Online", idle: "Idle", dnd: "Do Not Disturb", invisible: "Invisible", offline: "Offline" };

export class Sidebar {
  constructor(ctx) {
    this.ctx = ctx;
    this.list = h("div", { class: "sidebar-scroll" });
    this.header = h("div", { class: "sidebar-header" });
    this.panel = h("div", { class: "user-panel" });
    this.voicePanel = h("div", { class: "voice-panel", "data-testid": "voice-panel", hidden: true, role: "region", "aria-label": "Voice connection" });
    this.el = h("aside", { class: "sidebar", "aria-label": "Channels" }, this.header, this.list, this.voicePanel, this.panel);
    this.collapsed = new Set(JSON.parse(localStorage.getItem("drocsid.collapsed") || "[]"));
    this.voiceLoaded = new Set();
    this.off = [];
    const s = ctx.store;
    this.off.push(s.on("*", (topic) => {
      const serverId = this.ctx.shell?.route?.serverId;
      if (topic === "unread" || topic === "dms" || topic === "servers" || (serverId && (topic === "channels:" + serverId || topic === "permissions:" + serverId))) this.render();
      if (topic === "me" || topic === "presence") this.renderPanel();
      if (topic === "voice" || topic === "voice-local") {
        if (!this.ctx.shell?.route?.home) this.render();
        this.renderVoicePanel();
      }
    }));
    this.renderPanel();
  }

  destroy() {
    this.off.forEach((off) => off());
  }

  render() {
    const route = this.ctx.shell.route;
    if (route.home) this.renderHome(route);
    else this.renderServer(route);
  }

  // --- server -------------------------------------------------------------------------------

  renderServer(route) {
    const { store } = this.ctx;
    const server = store.server(route.serverId);
    if (!server) return;
    const menuButton = h("button", { type: "button", class: "server-menu-button", "aria-haspopup": "menu", "aria-expanded": "false", "data-testid": "server-menu" },
      h("span", { class: "server-name" }, server.name), icon("chevron", 18));
    menuButton.addEventListener("click", () => this.openServerMenu(server, menuButton));
    replace(this.header, menuButton);
    const channels = server.channels;
    const categories = channels.filter((c) => c.type === "category");
    const loose = channels.filter((c) => c.type !== "category" && !categories.some((cat) => cat.id === c.parent_id));
    const canManage = store.can(server.id, "MANAGE_CHANNELS");
    const groups = [h("ul", { class: "channel-group", role: "list" }, loose.map((c) => this.channelItem(server, c, route)))];
    for (const cat of categories) {
      const children = channels.filter((c) => c.parent_id === cat.id && c.type !== "category");
      const collapsed = this.collapsed.has(cat.id);
      const toggle = h("button", { type: "button", class: "category-toggle", "aria-expanded": collapsed ? "false" : "true",
        onclick: () => {
          if (collapsed) this.collapsed.delete(cat.id); else this.collapsed.add(cat.id);
          localStorage.setItem("drocsid.collapsed", JSON.stringify([...this.collapsed]));
          this.render();
        } }, h("span", { "aria-hidden": "true" }, collapsed ? "▸ " : "▾ "), cat.name.toUpperCase());
      const add = canManage ? h("button", { type: "button", class: "icon-button small", "aria-label": `Create channel in ${cat.name}`, title: "Create channel", onclick: () => createChannel(this.ctx, server, cat.id) }, icon("plus", 16)) : null;
      const visible = collapsed ? children.filter((c) => c.id === route.channelId || store.unread(c.id).unread_count) : children;
      groups.push(h("div", { class: "category", role: "group", "aria-label": cat.name }, h("div", { class: "category-header" }, toggle, add),
        h("ul", { class: "channel-group", role: "list" }, visible.map((c) => this.channelItem(server, c, route)))));
    }
    replace(this.list, groups);
  }

  channelItem(server, channel, route) {
    const { store } = this.ctx;
    const rs = store.unread(channel.id);
    const active = route.channelId === channel.id;
    const kind = channel.type === "voice" ? "speaker" : channel.private ? "lock" : "hash";
    const link = h("a", {
      href: `/channels/${enc(server.id)}/${enc(channel.id)}`, class: "channel-link" + (active ? " active" : "") + (rs.unread_count ? " unread" : ""),
      "data-testid": "channel-link", "data-channel-id": channel.id, "data-name": channel.name, "aria-current": active ? "page" : null,
      onclick: (ev) => {
        ev.preventDefault();
        if (channel.type === "voice") this.ctx.voice.join(channel.id).catch((err) => toast(err.message, "error"));
        else this.ctx.navigate(`/channels/${enc(server.id)}/${enc(channel.id)}`);
      },
    }, h("span", { class: "channel-icon", "aria-hidden": "true" }, icon(kind)), h("span", { class: "channel-name" }, channel.name),
      channel.private ? h("span", { class: "visually-hidden" }, " (private)") : null,
      rs.mention_count ? h("span", { class: "badge", "data-testid": "mention-badge", "aria-label": `${rs.mention_count} mentions` }, String(rs.mention_count))
        : rs.unread_count ? h("span", { class: "visually-hidden" }, " (unread)") : null);
    const canEdit = store.can(server.id, "MANAGE_CHANNELS", channel.id) || store.can(server.id, "MANAGE_ROLES", channel.id);
    const gear = canEdit ? h("button", { type: "button", class: "icon-button small channel-gear", "aria-label": `Edit channel ${channel.name}`, title: "Edit channel",
      onclick: () => import("./channel_settings.js").then((m) => m.openChannelSettings(this.ctx, channel.id)) }, icon("gear", 16)) : null;
    if (channel.type !== "voice") return h("li", { class: "channel-item" }, link, gear);
    if (!this.voiceLoaded.has(channel.id)) {
      this.voiceLoaded.add(channel.id);
      store.loadVoiceStates(channel.id);
    }
    const inVoice = [...(store.voice.get(channel.id)?.values() || [])];
    const speaking = this.ctx.voice?.speaking || new Set();
    return h("li", { class: "channel-item voice" }, h("div", { class: "channel-row" }, link, gear),
      inVoice.length ? h("ul", { class: "voice-members", "aria-label": `In ${channel.name}`, "data-testid": "voice-members" },
        inVoice.map((v) => h("li", { class: "voice-member" + (speaking.has(v.user_id) ? " speaking" : ""), "data-user-id": v.user_id },
          avatar(this.ctx, store.displayName(v.user_id, server.id), null, v.user_id),
          h("span", {}, store.displayName(v.user_id, server.id)),
          v.mute || v.self_mute ? h("span", { class: "voice-flag", title: v.mute ? "Server muted" : "Muted", "aria-label": v.mute ? "server muted" : "muted" }, icon("micOff", 14)) : null,
          v.deaf || v.self_deaf ? h("span", { class: "voice-flag", title: v.deaf ? "Server deafened" : "Deafened", "aria-label": v.deaf ? "server deafened" : "deafened" }, icon("headphonesOff", 14)) : null,
          v.streaming ? h("span", { class: "live-tag" }, "LIVE") : null))) : null);
  }

  openServerMenu(server, button) {
    const { store } = this.ctx;
    const owner = server.owner_id === store.me.id;
    const items = [
      store.can(server.id, "CREATE_INSTANT_INVITE") && ["Invite people", () => openInvite(this.ctx, server)],
      ["Server settings", () => import("./server_settings.js").then((m) => m.openServerSettings(this.ctx, server.id))],
      store.can(server.id, "MANAGE_CHANNELS") && ["Create channel", () => createChannel(this.ctx, server, null)],
      store.can(server.id, "MANAGE_CHANNELS") && ["Create category", () => createChannel(this.ctx, server, null, "category")],
      !owner && ["Leave server", () => leaveServer(this.ctx, server)],
    ].filter(Boolean);
    openMenu(button, items);
  }

  // --- home ---------------------------------------------------------------------------------

  renderHome(route) {
    const { store } = this.ctx;
    replace(this.header, h("button", { type: "button", class: "search-button", onclick: () => this.ctx.shell.openSwitcher() }, "Find or start a conversation"));
    const friends = h("a", { href: "/channels/@me", class: "channel-link big" + (!route.dmId ? " active" : ""), "data-testid": "friends-link",
      onclick: (ev) => { ev.preventDefault(); this.ctx.navigate("/channels/@me"); } }, h("span", { class: "channel-icon", "aria-hidden": "true" }, icon("friends")), "Friends",
      pendingCount(store) ? h("span", { class: "badge", "aria-label": `${pendingCount(store)} pending requests` }, String(pendingCount(store))) : null);
    const dms = [...store.dms.values()];
    const addDm = h("button", { type: "button", class: "icon-button small", "aria-label": "Create DM", title: "Create DM", onclick: () => this.ctx.shell.openNewDm() }, icon("plus", 16));
    replace(this.list, friends,
      h("div", { class: "category-header" }, h("span", { class: "category-title" }, "DIRECT MESSAGES"), addDm),
      h("ul", { class: "channel-group", role: "list", "aria-label": "Direct messages" }, dms.map((dm) => {
        const rs = store.unread(dm.id);
        const name = store.dmName(dm);
        const other = (dm.recipients || []).find((r) => r.id !== store.me.id);
        const status = dm.type === "dm" && other ? store.statusOf(other.id) : null;
        return h("li", { class: "channel-item" }, h("a", {
          href: `/channels/@me/${enc(dm.id)}`, class: "channel-link dm" + (route.dmId === dm.id ? " active" : "") + (rs.unread_count ? " unread" : ""),
          "data-testid": "dm-link", "data-channel-id": dm.id, "data-name": name,
          onclick: (ev) => { ev.preventDefault(); this.ctx.navigate(`/channels/@me/${enc(dm.id)}`); },
        }, h("span", { class: "avatar-wrap" }, avatar(this.ctx, name, null, other?.id || dm.id), status ? h("span", { class: `status-dot ${status}`, "aria-hidden": "true" }) : null),
        h("span", { class: "channel-name" }, name), dm.type === "group_dm" ? h("span", { class: "muted small" }, ` ${dm.recipients.length} members`) : null,
        rs.unread_count ? h("span", { class: "badge", "aria-label": `${rs.unread_count} unread` }, String(rs.unread_count)) : null),
        h("button", { type: "button", class: "icon-button small channel-gear", "aria-label": `Close conversation with ${name}`, onclick: async () => {
          await this.ctx.api.del(`/dms/${enc(dm.id)}`).catch((err) => toast(err.message, "error"));
          store.dms.delete(dm.id);
          store.emit("dms");
          if (route.dmId === dm.id) this.ctx.navigate("/channels/@me");
        } }, icon("close", 16)));
      })));
  }

  // --- voice panel --------------------------------------------------------------------------

  renderVoicePanel() {
    const voice = this.ctx.voice;
    this.voicePanel.hidden = !voice?.connected;
    if (!voice?.connected) return;
    const channel = this.ctx.store.channel(voice.channelId);
    const server = channel ? this.ctx.store.server(channel.server_id) : null;
    const toggle = (label, pressed, name, fn) => h("button", { type: "button", class: "icon-button" + (pressed ? " active" : ""), "aria-label": label,
      "aria-pressed": pressed ? "true" : "false", title: label, onclick: () => fn().catch((err) => toast(err.message, "error")) }, icon(name));
    replace(this.voicePanel,
      h("div", { class: "voice-status" }, h("strong", { class: "voice-connected" }, voice.room ? "Voice Connected" : "Connecting…"),
        h("span", { class: "muted small" }, channel ? `${channel.name} / ${server?.name || ""}` : "Call")),
      h("div", { class: "voice-controls" },
        toggle("Mute", voice.selfMute, voice.selfMute ? "micOff" : "mic", () => voice.toggleMute()),
        toggle("Deafen", voice.selfDeaf, voice.selfDeaf ? "headphonesOff" : "headphones", () => voice.toggleDeafen()),
        toggle("Share your screen", voice.streaming, "screen", () => voice.toggleScreenShare()),
        h("button", { type: "button", class: "icon-button danger", "aria-label": "Disconnect", title: "Disconnect", onclick: () => voice.leave() }, icon("hangup"))));
  }

  // --- user panel ---------------------------------------------------------------------------

  renderPanel() {
    const { store } = this.ctx;
    const me = store.me;
    if (!me) return;
    const status = store.presence.get(me.id)?.status || this.ctx.shell?.myStatus || "online";
    const custom = store.presence.get(me.id)?.custom_status;
    const statusButton = h("button", { type: "button", class: "user-panel-main", "aria-label": `Set status (now ${STATUS_LABEL[status] || status})`, "data-testid": "status-button" },
      h("span", { class: "avatar-wrap" }, avatar(this.ctx, me.display_name, me.avatar_url, me.id), h("span", { class: `status-dot ${status}`, "aria-hidden": "true" })),
      h("span", { class: "user-panel-names" }, h("strong", {}, me.display_name), h("span", { class: "muted small" }, custom || STATUS_LABEL[status] || status)));
    statusButton.addEventListener("click", () => openMenu(statusButton, [
      ["Online", () => this.ctx.shell.setStatus("online")],
      ["Idle", () => this.ctx.shell.setStatus("idle")],
      ["Do Not Disturb", () => this.ctx.shell.setStatus("dnd")],
      ["Invisible", () => this.ctx.shell.setStatus("invisible")],
      ["Set a custom status", async () => {
        const answer = await promptModal("Set a custom status", [{ name: "custom", label: "Custom status", maxLength: 128, value: custom || "" }]);
        if (answer) this.ctx.shell.setStatus(status === "offline" ? "online" : status, answer.custom);
      }],
    ]));
    replace(this.panel, statusButton,
      h("button", { type: "button", class: "icon-button", "aria-label": "User settings", title: "User settings", "data-testid": "user-settings",
        onclick: () => import("./user_settings.js").then((m) => m.openUserSettings(this.ctx)) }, icon("gear")));
  }
}

function pendingCount(store) {
  return [...store.relationships.values()].filter((r) => r.type === "pending_incoming").length;
}

// A small popup menu (role=menu) under `anchor`; items are [label, action].
export function openMenu(anchor, items) {
  document.querySelector(".popup-menu")?.remove();
  const buttons = items.map(([label, action]) => h("button", { type: "button", role: "menuitem", class: "menu-item" + (/leave|delete|ban|kick/i.test(label) ? " danger" : ""), tabIndex: -1,
    onclick: () => { close(); action(); } }, label));
  const menu = h("div", { class: "popup-menu", role: "menu" }, buttons);
  const close = () => {
    menu.remove();
    anchor.setAttribute("aria-expanded", "false");
    document.removeEventListener("mousedown", outside, true);
  };
  const outside = (ev) => {
    if (!menu.contains(ev.target) && !anchor.contains(ev.target)) close();
  };
  menu.addEventListener("keydown", (ev) => {
    const i = buttons.indexOf(document.activeElement);
    if (ev.key === "ArrowDown") { ev.preventDefault(); buttons[(i + 1) % buttons.length].focus(); }
    if (ev.key === "ArrowUp") { ev.preventDefault(); buttons[(i - 1 + buttons.length) % buttons.length].focus(); }
    if (ev.key === "Escape" || ev.key === "Tab") { ev.preventDefault(); close(); anchor.focus(); }
  });
  document.body.append(menu);
  const rect = anchor.getBoundingClientRect();
  const below = rect.bottom + 4 + menu.offsetHeight < innerHeight;
  menu.style.left = `${Math.min(rect.left, innerWidth - menu.offsetWidth - 8)}px`;
  menu.style.top = below ? `${rect.bottom + 4}px` : `${Math.max(8, rect.top - menu.offsetHeight - 4)}px`;
  anchor.setAttribute("aria-expanded", "true");
  document.addEventListener("mousedown", outside, true);
  buttons[0]?.focus();
}

export async function createChannel(ctx, server, parentId, type = "text") {
  const fields = [
    { name: "name", label: type === "category" ? "Category name" : "Channel name", required: true, maxLength: 100 },
  ];
  if (type !== "category") {
    fields.push({ name: "type", label: "Channel type", options: [["text", "Text"], ["voice", "Voice"]], value: "text" });
    const categories = server.channels.filter((c) => c.type === "category");
    if (categories.length) fields.push({ name: "parent_id", label: "Category", options: [["", "No category"], ...categories.map((c) => [c.id, c.name])], value: parentId || "" });
    fields.push({ name: "private", label: "Private channel (only chosen roles and members can view it)", type: "checkbox" });
  }
  const answer = await promptModal(type === "category" ? "Create category" : "Create channel", fields, type === "category" ? "Create category" : "Create channel");
  if (!answer) return;
  try {
    const body = { name: answer.name.trim(), type: answer.type || type };
    if (answer.parent_id) body.parent_id = answer.parent_id;
    if (answer.private) body.private = true;
    const channel = await ctx.api.post(`/servers/${enc(server.id)}/channels`, body);
    ctx.store.apply("CHANNEL_CREATE", channel);
    if (channel.type === "text") ctx.navigate(`/channels/${enc(server.id)}/${enc(channel.id)}`);
  } catch (err) {
    toast(err.message, "error");
  }
}

export async function openInvite(ctx, server) {
  try {
    const invite = await ctx.api.post(`/servers/${enc(server.id)}/invites`, { max_age_secs: 7 * 24 * 3600 });
    const link = `${location.origin}/invite/${invite.code}`;
    const input = h("input", { readOnly: true, value: link, "aria-label": "Invite link", "data-testid": "invite-link" });
    const copy = h("button", { type: "button", class: "button", onclick: async () => {
      try {
        await navigator.clipboard.writeText(link);
        copy.textContent = "Copied";
      } catch {
        input.select();
      }
    } }, "Copy");
    openModal(`Invite friends to ${server.name}`, h("div", { class: "form" }, h("p", {}, "Send a server invite link to a friend (expires in 7 days)."), h("div", { class: "copy-row" }, input, copy)));
    input.select();
  } catch (err) {
    toast(err.message, "error");
  }
}

async function leaveServer(ctx, server) {
  const { confirmModal } = await import("./modal.js");
  if (!(await confirmModal(`Leave '${server.name}'`, `Are you sure you want to leave ${server.name}? You won't be able to rejoin unless you are re-invited.`, "Leave Server"))) return;
  try {
    await ctx.api.del(`/servers/${enc(server.id)}/members/@me`);
    ctx.store.apply("SERVER_DELETE", { id: server.id });
    ctx.navigate("/channels/@me");
  } catch (err) {
    toast(err.message, "error");
  }
}

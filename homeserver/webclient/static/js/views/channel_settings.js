// Channel settings: name and topic, and the channel's permission overwrites for roles and
// members (each bit denied, inherited or allowed).

import { enc } from "../api.js";
import { h, replace, intColour } from "../dom.js";
import { PERMISSIONS, toBits } from "../permissions.js";
import { confirmModal, toast } from "./modal.js";
import { tabbedSettings, errorBox, setError, busy, field, section, nextId, openSettingsModal } from "./settings_common.js";

const CHANNEL_PERMISSIONS = PERMISSIONS.filter((p) => p.scope !== "server");
const EVERYONE = ""; // @everyone's role ID; written "@everyone" in paths

export async function openChannelSettings(ctx, channelId) {
  const store = ctx.store;
  const channel = store.channel(channelId);
  if (!channel) {
    toast("That channel is not available.", "error");
    return null;
  }
  const serverId = channel.server_id;
  const server = store.server(serverId);
  if (!store.permissions.get(serverId) && server?.owner_id !== store.me?.id) await store.loadPermissions(serverId);
  const modalRef = {};
  const tabs = [
    store.can(serverId, "MANAGE_CHANNELS", channelId) && { id: "overview", label: "Overview", render: (p, c) => overviewTab(ctx, channelId, p, c, modalRef) },
    store.can(serverId, "MANAGE_ROLES", channelId) && { id: "permissions", label: "Permissions", render: (p, c) => permissionsTab(ctx, channelId, p, c) },
  ].filter(Boolean);
  if (!tabs.length) {
    toast("You may not change this channel's settings.", "error");
    return null;
  }
  const settings = tabbedSettings({ tabs, label: `#${channel.name} settings`, testid: "channel-settings" });
  const prefix = channel.type === "category" ? "" : channel.type === "voice" ? "🔊 " : "#";
  const modal = openSettingsModal(store, `${prefix}${channel.name} — Channel Settings`, settings,
    { goneTopic: "channel-gone", goneId: channelId, modalRef });
  return modal;
}

// Shown at once, as the gateway's CHANNEL_UPDATE will show it again.
function upsertChannel(store, channel) {
  if (channel?.server_id) store.apply("CHANNEL_UPDATE", channel);
}

// --- Overview ----------------------------------------------------------------------------------

function overviewTab(ctx, channelId, panel, onCleanup, modalRef) {
  const store = ctx.store;
  const channel = store.channel(channelId);
  const error = errorBox();
  const name = h("input", { type: "text", value: channel.name, maxLength: 100, required: true, "data-testid": "channel-name-input" });
  const topic = h("textarea", { rows: 3, maxLength: 1024, "data-testid": "channel-topic-input" }, channel.topic || "");
  const save = h("button", { class: "button", type: "submit", "data-testid": "save-channel" }, "Save changes");
  const form = h("form", { class: "settings-form" },
    field("Channel name", name),
    channel.type === "category" ? null : field("Channel topic", topic),
    error, h("div", { class: "settings-actions" }, save));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, error, async () => {
      const body = { name: name.value.trim() };
      if (channel.type !== "category") body.topic = topic.value;
      const answer = await ctx.api.patch(`/channels/${enc(channelId)}`, body);
      upsertChannel(store, { ...channel, ...answer });
      toast("Channel updated");
    });
  });
  const delError = errorBox();
  const del = h("button", { class: "button danger", type: "button", "data-testid": "delete-channel" }, "Delete channel");
  del.addEventListener("click", async () => {
    const current = store.channel(channelId) || channel;
    if (!(await confirmModal("Delete channel", `Delete “${current.name}”? Its messages go with it. This cannot be undone.`, "Delete channel"))) return;
    await busy(del, delError, async () => {
      await ctx.api.del(`/channels/${enc(channelId)}`);
      const server = store.server(channel.server_id);
      if (server) server.channels = server.channels.filter((c) => c.id !== channelId);
      modalRef.close?.();
      store.emit("channels:" + channel.server_id);
      if (store.current?.channelId === channelId) ctx.navigate(`/channels/${enc(channel.server_id)}`);
    });
  });
  panel.append(form, section("Danger zone", del, delError));
}

// --- Permissions -------------------------------------------------------------------------------

const targetKey = (type, id) => `${type}:${id}`;
const targetPath = (channelId, type, id) =>
  `/channels/${enc(channelId)}/overwrites/${type}/${type === "role" && id === EVERYONE ? "@everyone" : enc(id)}`;

function permissionsTab(ctx, channelId, panel, onCleanup) {
  const store = ctx.store;
  const channel = store.channel(channelId);
  const serverId = channel.server_id;
  const error = errorBox();
  const list = h("ul", { class: "settings-role-list", "aria-label": "Roles and members with overwrites", "data-testid": "overwrite-targets" });
  const editor = h("div", { class: "settings-role-editor", "data-testid": "overwrite-editor" });
  const add = h("select", { "aria-label": "Add role or member", "data-testid": "overwrite-add" });
  let overwrites = new Map(); // key -> {target_type, target_id, allow, deny}
  let pending = new Map(); // targets added here but not saved yet
  let selected = targetKey("role", EVERYONE);
  let dirty = false;

  const label = (type, id) => {
    if (type === "role") {
      if (id === EVERYONE) return "@everyone";
      return store.server(serverId)?.roles.find((r) => r.id === id)?.name || `Unknown role ${id}`;
    }
    return store.displayName(id, serverId) || id;
  };

  const targets = () => {
    const all = new Map([[targetKey("role", EVERYONE), { target_type: "role", target_id: EVERYONE, allow: "0", deny: "0" }]]);
    for (const [k, v] of pending) all.set(k, v);
    for (const [k, v] of overwrites) all.set(k, v);
    const roles = store.server(serverId)?.roles || [];
    const rank = (t) => (t.target_type === "role" ? (roles.find((r) => r.id === t.target_id)?.position ?? 0) : -1);
    return [...all.values()].sort((a, b) => (a.target_type === b.target_type ? rank(b) - rank(a) : a.target_type === "role" ? -1 : 1));
  };

  const drawList = () => {
    replace(list, targets().map((t) => {
      const key = targetKey(t.target_type, t.target_id);
      const role = t.target_type === "role" ? store.server(serverId)?.roles.find((r) => r.id === t.target_id) : null;
      return h("li", {}, h("button", {
        type: "button", class: "settings-role-item" + (key === selected ? " selected" : ""),
        "aria-pressed": key === selected ? "true" : "false",
        dataset: { targetType: t.target_type, targetId: t.target_id },
        onclick: () => { selected = key; dirty = false; drawList(); drawEditor(); },
      },
      t.target_type === "role"
        ? h("span", { class: "settings-role-dot", style: { background: intColour(role?.color) || "var(--text-muted)" }, "aria-hidden": "true" })
        : h("span", { class: "settings-member-mark", "aria-hidden": "true" }, "@"),
      label(t.target_type, t.target_id),
      pending.has(key) && !overwrites.has(key) ? h("span", { class: "muted" }, " (unsaved)") : null));
    }));
    drawAdd();
  };

  const drawAdd = () => {
    const taken = new Set(targets().map((t) => targetKey(t.target_type, t.target_id)));
    const roles = (store.server(serverId)?.roles || []).filter((r) => r.id !== EVERYONE && r.position !== 0 && !taken.has(targetKey("role", r.id)))
      .sort((a, b) => b.position - a.position);
    const members = [...(store.members.get(serverId)?.values() || [])].filter((m) => !taken.has(targetKey("member", m.user_id)))
      .sort((a, b) => (store.displayName(a.user_id, serverId) || "").localeCompare(store.displayName(b.user_id, serverId) || ""));
    replace(add,
      h("option", { value: "" }, "Add role or member…"),
      roles.length ? h("optgroup", { label: "Roles" }, roles.map((r) => h("option", { value: targetKey("role", r.id) }, r.name))) : null,
      members.length ? h("optgroup", { label: "Members" }, members.map((m) => h("option", { value: targetKey("member", m.user_id) }, store.displayName(m.user_id, serverId) || m.user_id))) : null);
  };

  add.addEventListener("change", () => {
    const value = add.value;
    if (!value) return;
    const cut = value.indexOf(":");
    const type = value.slice(0, cut);
    const id = value.slice(cut + 1);
    pending.set(value, { target_type: type, target_id: id, allow: "0", deny: "0" });
    selected = value;
    dirty = false;
    drawList();
    drawEditor();
    editor.querySelector("input")?.focus();
  });

  const drawEditor = () => {
    const target = targets().find((t) => targetKey(t.target_type, t.target_id) === selected) || targets()[0];
    selected = targetKey(target.target_type, target.target_id);
    replace(editor, overwriteEditor(ctx, channelId, target, label(target.target_type, target.target_id), {
      exists: overwrites.has(selected),
      onDirty: () => { dirty = true; },
      onSaved: (answer) => {
        dirty = false;
        pending.delete(selected);
        overwrites.set(selected, answer);
        drawList();
        drawEditor();
      },
      onRemoved: () => {
        dirty = false;
        overwrites.delete(selected);
        pending.delete(selected);
        selected = targetKey("role", EVERYONE);
        drawList();
        drawEditor();
      },
    }));
  };

  const load = async () => {
    try {
      const answer = await ctx.api.get(`/channels/${enc(channelId)}/overwrites`);
      overwrites = new Map(answer.map((o) => [targetKey(o.target_type, o.target_id), o]));
      drawList();
      if (!dirty) drawEditor();
    } catch (err) {
      setError(error, err);
    }
  };

  onCleanup(store.on("overwrites:" + channelId, load));
  onCleanup(store.on("roles:" + serverId, drawList));
  onCleanup(store.on("members:" + serverId, drawList));
  panel.append(
    h("p", { class: "muted" }, "Overwrites change what a role or member may do in this channel only. Deny wins over allow for the same target; a member's own overwrite wins over their roles'."),
    error,
    h("div", { class: "settings-split" }, h("div", { class: "settings-split-list" }, add, list), editor));
  drawList();
  drawEditor();
  load();
  if (!store.members.get(serverId)) store.loadMembers(serverId).catch(() => {});
}

function overwriteEditor(ctx, channelId, target, name, { exists, onDirty, onSaved, onRemoved }) {
  const error = errorBox();
  const allow = toBits(target.allow);
  const deny = toBits(target.deny);
  const group = nextId("ow");
  const rows = CHANNEL_PERMISSIONS.map((p) => {
    const state = (deny & p.bit) === p.bit ? "deny" : (allow & p.bit) === p.bit ? "allow" : "inherit";
    const radios = ["deny", "inherit", "allow"].map((value) => {
      const input = h("input", { type: "radio", name: `${group}-${p.key}`, value, checked: state === value, "aria-label": value[0].toUpperCase() + value.slice(1) });
      return h("label", { class: `settings-tri settings-tri-${value}`, title: value[0].toUpperCase() + value.slice(1) }, input,
        h("span", { "aria-hidden": "true" }, value === "deny" ? "✕" : value === "allow" ? "✓" : "/"),
        h("span", { class: "settings-tri-text" }, value[0].toUpperCase() + value.slice(1)));
    });
    return {
      p,
      el: h("div", { class: "settings-perm-row", dataset: { permission: p.key } },
        h("div", { class: "settings-perm-text" }, h("span", {}, p.label), h("span", { class: "muted settings-desc" }, p.description)),
        h("div", { class: "settings-tri-group", role: "radiogroup", "aria-label": p.label }, radios)),
    };
  });
  const save = h("button", { class: "button", type: "submit", "data-testid": "save-overwrite" }, "Save changes");
  const form = h("form", { class: "settings-form" },
    h("h4", { class: "settings-subheading" }, `${target.target_type === "role" ? "Role" : "Member"}: ${name}`),
    h("div", { class: "settings-perms" }, rows.map((r) => r.el)),
    error,
    h("div", { class: "settings-actions sticky" }, save));
  form.addEventListener("change", onDirty);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, error, async () => {
      // Bits this client has no row for are kept as they were.
      const shown = CHANNEL_PERMISSIONS.reduce((acc, p) => acc | p.bit, 0n);
      let newAllow = allow & ~shown;
      let newDeny = deny & ~shown;
      for (const { p, el } of rows) {
        const value = el.querySelector("input:checked")?.value;
        if (value === "allow") newAllow |= p.bit;
        else if (value === "deny") newDeny |= p.bit;
      }
      const answer = await ctx.api.put(targetPath(channelId, target.target_type, target.target_id),
        { allow: newAllow.toString(), deny: newDeny.toString() });
      toast("Permissions saved");
      onSaved(answer || { ...target, allow: newAllow.toString(), deny: newDeny.toString() });
    });
  });
  if (exists) {
    const remove = h("button", { class: "button danger", type: "button", "data-testid": "remove-overwrite" }, "Remove overwrite");
    remove.addEventListener("click", async () => {
      if (!(await confirmModal("Remove overwrite", `Remove this channel's overwrite for ${name}? The server-wide permissions apply again.`, "Remove"))) return;
      await busy(remove, error, async () => {
        await ctx.api.del(targetPath(channelId, target.target_type, target.target_id));
        onRemoved();
      });
    });
    form.querySelector(".settings-actions").append(remove);
  }
  return form;
}

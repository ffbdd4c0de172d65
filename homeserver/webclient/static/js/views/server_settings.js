// Server settings: overview, roles, members, invites, bans, audit log and webhooks.
// Every tab is offered only when the user's permissions allow it; the server checks again.

import { enc } from "../api.js";
import { h, replace, clear, intColour } from "../dom.js";
import { PERMISSIONS, toBits } from "../permissions.js";
import { confirmModal, promptModal, toast } from "./modal.js";
import { tabbedSettings, errorBox, setError, busy, field, checkboxField, copyField, section, when, openSettingsModal } from "./settings_common.js";

const MEMBER_RENDER_LIMIT = 200;
const AUDIT_PAGE = 50;
const AUDIT_ACTIONS = [
  ["server_update", "Server updated"], ["channel_create", "Channel created"], ["channel_update", "Channel updated"],
  ["channel_delete", "Channel deleted"], ["role_create", "Role created"], ["role_update", "Role updated"],
  ["role_delete", "Role deleted"], ["member_role_update", "Member roles updated"], ["overwrite_update", "Channel permissions updated"],
  ["member_kick", "Member kicked"], ["member_ban", "Member banned"], ["member_unban", "Member unbanned"],
  ["message_delete", "Message deleted"], ["message_pin", "Message pinned"], ["message_unpin", "Message unpinned"],
];
const ACTION_LABEL = Object.fromEntries(AUDIT_ACTIONS);

export async function openServerSettings(ctx, serverId, tab = "overview") {
  const store = ctx.store;
  const server = store.server(serverId);
  if (!server) {
    toast("That server is not available.", "error");
    return null;
  }
  if (!store.permissions.get(serverId) && server.owner_id !== store.me?.id) await store.loadPermissions(serverId);
  const can = (key) => store.can(serverId, key);
  const tabs = [
    can("MANAGE_SERVER") && { id: "overview", label: "Overview", render: (p, c) => overviewTab(ctx, serverId, p, c, modalRef) },
    can("MANAGE_ROLES") && { id: "roles", label: "Roles", render: (p, c) => rolesTab(ctx, serverId, p, c) },
    { id: "members", label: "Members", render: (p, c) => membersTab(ctx, serverId, p, c) },
    can("MANAGE_SERVER") && { id: "invites", label: "Invites", render: (p, c) => invitesTab(ctx, serverId, p, c) },
    can("BAN_MEMBERS") && { id: "bans", label: "Bans", render: (p, c) => bansTab(ctx, serverId, p, c) },
    can("VIEW_AUDIT_LOG") && { id: "audit-log", label: "Audit Log", render: (p, c) => auditTab(ctx, serverId, p, c) },
    can("MANAGE_WEBHOOKS") && { id: "webhooks", label: "Webhooks", render: (p, c) => webhooksTab(ctx, serverId, p, c) },
  ].filter(Boolean);
  const modalRef = {};
  const settings = tabbedSettings({ tabs, initial: tab, label: `${server.name} settings`, testid: "server-settings" });
  const modal = openSettingsModal(store, `${server.name} — Server Settings`, settings,
    { goneTopic: "server-gone", goneId: serverId, modalRef });
  return modal;
}

// --- helpers ---------------------------------------------------------------------------------

const isEveryone = (role) => role.id === "" || role.position === 0 || role.name === "@everyone";
const roleSegment = (role) => (role.id === "" ? "@everyone" : enc(role.id));

// The answers are shown at once, as the gateway's dispatches will show them again.
function upsertRole(store, serverId, role) {
  if (role) store.apply("ROLE_UPDATE", { server_id: serverId, ...role });
}

function upsertMember(store, serverId, member) {
  const map = store.members.get(serverId);
  if (map && member?.user_id) map.set(member.user_id, { ...(map.get(member.user_id) || {}), ...member });
  store.emit("members:" + serverId);
}

function serverPath(serverId, rest = "") {
  return `/servers/${enc(serverId)}${rest}`;
}

function colourInt(hex) {
  return parseInt(String(hex).replace("#", ""), 16) || 0;
}

// --- Overview ----------------------------------------------------------------------------------

function overviewTab(ctx, serverId, panel, onCleanup, modalRef) {
  const store = ctx.store;
  const server = store.server(serverId);
  const error = errorBox();
  const name = h("input", { type: "text", value: server.name || "", maxLength: 100, required: true, "data-testid": "server-name-input" });
  const description = h("textarea", { maxLength: 1024, rows: 3, "data-testid": "server-description-input" }, server.description || "");
  const save = h("button", { class: "button", type: "submit" }, "Save changes");
  const form = h("form", { class: "settings-form" },
    field("Server name", name), field("Description", description), error,
    h("div", { class: "settings-actions" }, save));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, error, async () => {
      const answer = await ctx.api.patch(serverPath(serverId), { name: name.value.trim(), description: description.value });
      applyServer(store, serverId, answer);
      toast("Server updated");
    });
  });

  // Icon: preview of the current one and a file input that uploads at once.
  const iconError = errorBox();
  const preview = h("div", { class: "settings-icon-preview", "aria-hidden": "true" });
  const showIcon = async () => {
    const current = store.server(serverId);
    clear(preview);
    if (!current?.icon_url) {
      preview.append(h("span", {}, (current?.name || "?").slice(0, 2).toUpperCase()));
      return;
    }
    try {
      preview.append(h("img", { src: await ctx.api.mediaUrl(current.icon_url), alt: "" }));
    } catch {
      preview.append(h("span", {}, "?"));
    }
  };
  showIcon();
  const file = h("input", { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp", "data-testid": "server-icon-input" });
  file.addEventListener("change", () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    busy(file, iconError, async () => {
      const answer = await ctx.api.request("POST", serverPath(serverId, "/icon"), { raw: chosen, contentType: chosen.type });
      applyServer(store, serverId, answer);
      await showIcon();
      toast("Icon updated");
    }).finally(() => { file.value = ""; });
  });

  panel.append(form, section("Server icon", h("div", { class: "settings-icon-row" }, preview, field("Upload icon", file)),
    h("p", { class: "muted" }, "PNG, JPEG, GIF or WebP, at most 5 MiB."), iconError));

  if (server.owner_id === store.me?.id) {
    const delError = errorBox();
    const del = h("button", { class: "button danger", type: "button", "data-testid": "delete-server" }, "Delete server");
    del.addEventListener("click", async () => {
      const current = store.server(serverId);
      const sure = await confirmModal("Delete server", `Delete “${current?.name}”? Every channel and message goes with it. This cannot be undone.`, "Delete server");
      if (!sure) return;
      await busy(del, delError, async () => {
        await ctx.api.del(serverPath(serverId));
        modalRef.close?.();
        ctx.navigate("/channels/@me");
      });
    });
    panel.append(section("Danger zone", h("p", { class: "muted" }, "Only the owner can delete the server."), del, delError));
  }
}

function applyServer(store, serverId, answer) {
  if (answer) store.apply("SERVER_UPDATE", { ...answer, id: serverId });
}

// --- Roles -------------------------------------------------------------------------------------

function rolesTab(ctx, serverId, panel, onCleanup) {
  const store = ctx.store;
  const listError = errorBox();
  const list = h("ul", { class: "settings-role-list", "aria-label": "Roles", "data-testid": "role-list" });
  const editor = h("div", { class: "settings-role-editor", "data-testid": "role-editor" });
  const create = h("button", { class: "button", type: "button", "data-testid": "create-role" }, "Create role");
  let selected = null;
  let dirty = false;

  const roles = () => (store.server(serverId)?.roles || []).slice().sort((a, b) => b.position - a.position);

  const drawList = () => {
    replace(list, roles().map((role) => h("li", {},
      h("button", {
        type: "button", class: "settings-role-item" + (role.id === selected ? " selected" : ""),
        "aria-pressed": role.id === selected ? "true" : "false", dataset: { roleId: role.id },
        onclick: () => {
          selected = role.id;
          dirty = false;
          drawList();
          drawEditor();
        },
      }, h("span", { class: "settings-role-dot", style: { background: intColour(role.color) || "var(--text-muted)" }, "aria-hidden": "true" }), role.name))));
  };

  const drawEditor = () => {
    const role = roles().find((r) => r.id === selected);
    if (!role) {
      selected = null;
      replace(editor, h("p", { class: "muted" }, "Choose a role to edit it, or create a new one."));
      return;
    }
    replace(editor, roleEditor(ctx, serverId, role, {
      onDirty: () => { dirty = true; },
      onSaved: (answer) => { dirty = false; selected = answer?.id ?? selected; },
      onDeleted: () => { selected = null; dirty = false; drawList(); drawEditor(); },
    }));
  };

  create.addEventListener("click", () => busy(create, listError, async () => {
    const role = await ctx.api.post(serverPath(serverId, "/roles"), { name: "new role" });
    selected = role.id;
    dirty = false;
    upsertRole(store, serverId, role);
  }));

  onCleanup(store.on("roles:" + serverId, () => {
    drawList();
    // Keep unsaved edits; redraw only when nothing was typed or the role is gone.
    const exists = roles().some((r) => r.id === selected);
    if (!dirty || !exists) drawEditor();
  }));

  drawList();
  drawEditor();
  panel.append(h("div", { class: "settings-split" },
    h("div", { class: "settings-split-list" }, create, listError, list),
    editor));
}

function roleEditor(ctx, serverId, role, { onDirty, onSaved, onDeleted }) {
  const everyone = isEveryone(role);
  const error = errorBox();
  const name = h("input", { type: "text", value: role.name, maxLength: 100, disabled: everyone, "data-testid": "role-name-input" });
  let colourTouched = false;
  let colourValue = role.color || 0;
  const colour = h("input", { type: "color", value: intColour(role.color) || "#99aab5", "data-testid": "role-color-input" });
  colour.addEventListener("input", () => { colourTouched = true; colourValue = colourInt(colour.value); onDirty(); });
  const resetColour = h("button", { class: "button secondary", type: "button" }, "No colour");
  resetColour.addEventListener("click", () => { colourTouched = true; colourValue = 0; colour.value = "#99aab5"; onDirty(); });
  const hoist = h("input", { type: "checkbox", checked: !!role.hoist, "data-testid": "role-hoist" });
  const mentionable = h("input", { type: "checkbox", checked: !!role.mentionable, "data-testid": "role-mentionable" });
  const bits = toBits(role.permissions);
  const boxes = PERMISSIONS.map((p) => ({
    p,
    input: h("input", { type: "checkbox", checked: (bits & p.bit) === p.bit, dataset: { permission: p.key } }),
  }));
  const save = h("button", { class: "button", type: "submit", "data-testid": "save-role" }, "Save changes");
  const form = h("form", { class: "settings-form" },
    h("h4", { class: "settings-subheading" }, `Edit role — ${role.name}`),
    field("Role name", name),
    everyone ? h("p", { class: "muted" }, "@everyone is every member of the server; only its permissions can change.") : null,
    everyone ? null : h("div", { class: "settings-colour-row" }, field("Role colour", colour), resetColour),
    everyone ? null : checkboxField("Display role members separately", hoist),
    everyone ? null : checkboxField("Allow anyone to @mention this role", mentionable),
    h("fieldset", { class: "settings-permissions" }, h("legend", {}, "Permissions"),
      boxes.map(({ p, input }) => checkboxField(p.label, input, p.description))),
    error,
    h("div", { class: "settings-actions sticky" }, save));
  form.addEventListener("input", onDirty);
  form.addEventListener("change", onDirty);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, error, async () => {
      let perms = 0n;
      // Bits the client does not know are kept as they were.
      const known = PERMISSIONS.reduce((acc, p) => acc | p.bit, 0n);
      perms = bits & ~known;
      for (const { p, input } of boxes) if (input.checked) perms |= p.bit;
      const body = { permissions: perms.toString() };
      if (!everyone) {
        body.name = name.value.trim();
        body.hoist = hoist.checked;
        body.mentionable = mentionable.checked;
        if (colourTouched) body.color = colourValue;
      }
      const answer = await ctx.api.patch(serverPath(serverId, `/roles/${roleSegment(role)}`), body);
      onSaved(answer);
      upsertRole(ctx.store, serverId, answer);
      toast("Role saved");
    });
  });
  if (!everyone) {
    const del = h("button", { class: "button danger", type: "button", "data-testid": "delete-role" }, "Delete role");
    del.addEventListener("click", async () => {
      if (!(await confirmModal("Delete role", `Delete the role “${role.name}”? Members lose it and its channel permissions go too.`, "Delete role"))) return;
      await busy(del, error, async () => {
        await ctx.api.del(serverPath(serverId, `/roles/${roleSegment(role)}`));
        ctx.store.apply("ROLE_DELETE", { server_id: serverId, role_id: role.id });
        onDeleted();
      });
    });
    form.querySelector(".settings-actions").append(del);
  }
  return form;
}

// --- Members -----------------------------------------------------------------------------------

function membersTab(ctx, serverId, panel, onCleanup) {
  const store = ctx.store;
  const manageRoles = store.can(serverId, "MANAGE_ROLES");
  const kick = store.can(serverId, "KICK_MEMBERS");
  const ban = store.can(serverId, "BAN_MEMBERS");
  const nicknames = store.can(serverId, "MANAGE_NICKNAMES");
  const error = errorBox();
  const search = h("input", { type: "search", placeholder: "Search members", "aria-label": "Search members", "data-testid": "member-search" });
  const list = h("ul", { class: "settings-list", "aria-label": "Members", "data-testid": "member-list" });
  const note = h("p", { class: "muted", role: "status" }, "Loading members…");

  const draw = () => {
    const server = store.server(serverId);
    const map = store.members.get(serverId);
    if (!server || !map) return;
    const q = search.value.trim().toLowerCase();
    const roles = server.roles.filter((r) => !isEveryone(r)).sort((a, b) => b.position - a.position);
    const all = [...map.values()].filter((m) => !q
      || (store.displayName(m.user_id, serverId) || "").toLowerCase().includes(q) || m.user_id.toLowerCase().includes(q));
    all.sort((a, b) => (store.displayName(a.user_id, serverId) || "").localeCompare(store.displayName(b.user_id, serverId) || ""));
    note.textContent = all.length > MEMBER_RENDER_LIMIT
      ? `Showing ${MEMBER_RENDER_LIMIT} of ${all.length} members; search to narrow the list.`
      : `${all.length} member${all.length === 1 ? "" : "s"}`;
    replace(list, all.slice(0, MEMBER_RENDER_LIMIT).map((m) => memberRow(ctx, serverId, m, roles, { manageRoles, kick, ban, nicknames })));
  };
  search.addEventListener("input", draw);
  onCleanup(store.on("members:" + serverId, draw));
  onCleanup(store.on("roles:" + serverId, draw));
  panel.append(search, note, error, list);
  if (store.members.get(serverId)) draw();
  store.loadMembers(serverId).catch((err) => setError(error, err));
}

function memberRow(ctx, serverId, member, roles, may) {
  const store = ctx.store;
  const server = store.server(serverId);
  const me = store.me?.id;
  const isOwner = member.user_id === server.owner_id;
  const name = store.displayName(member.user_id, serverId);
  const error = errorBox();
  const roleBoxes = roles.map((role) => {
    const input = h("input", {
      type: "checkbox", checked: (member.role_ids || []).includes(role.id), disabled: !may.manageRoles,
      dataset: { roleId: role.id },
    });
    input.addEventListener("change", async () => {
      const on = input.checked;
      input.disabled = true;
      setError(error, null);
      try {
        const path = serverPath(serverId, `/members/${enc(member.user_id)}/roles/${enc(role.id)}`);
        const answer = on ? await ctx.api.put(path) : await ctx.api.del(path);
        if (answer?.user_id) upsertMember(store, serverId, answer);
      } catch (err) {
        input.checked = !on;
        setError(error, err);
      } finally {
        input.disabled = !may.manageRoles;
      }
    });
    return h("label", { class: "settings-chip" }, input, h("span", { style: { color: intColour(role.color) || "" } }, role.name));
  });

  const actions = h("div", { class: "settings-row-actions" });
  if (may.nicknames || member.user_id === me) {
    const nick = h("button", { class: "button secondary small", type: "button", "data-testid": "edit-nickname" }, "Nickname");
    nick.addEventListener("click", async () => {
      const answer = await promptModal(`Nickname for ${name}`, [{ name: "nickname", label: "Nickname (empty to clear)", value: member.nickname || "", maxLength: 32 }], "Save");
      if (!answer) return;
      await busy(nick, error, async () => {
        const updated = await ctx.api.patch(serverPath(serverId, `/members/${enc(member.user_id)}`), { nickname: answer.nickname.trim() || null });
        upsertMember(store, serverId, updated);
      });
    });
    actions.append(nick);
  }
  if (!isOwner && member.user_id !== me) {
    // Kick and ban: the same flow, with a reason, then the member leaves the list.
    const removal = (label, testid, done, send) => {
      const button = h("button", { class: "button danger small", type: "button", "data-testid": testid }, label);
      button.addEventListener("click", async () => {
        const answer = await promptModal(`${label} ${name}`, [{ name: "reason", label: "Reason (optional)", maxLength: 512 }], label);
        if (!answer) return;
        await busy(button, error, async () => {
          await send(answer.reason ? { reason: answer.reason } : {});
          store.members.get(serverId)?.delete(member.user_id);
          store.emit("members:" + serverId);
          toast(`${name} was ${done}`);
        });
      });
      actions.append(button);
    };
    if (may.kick) removal("Kick", "kick-member", "kicked", (body) => ctx.api.post(serverPath(serverId, `/kick/${enc(member.user_id)}`), body));
    if (may.ban) removal("Ban", "ban-member", "banned", (body) => ctx.api.put(serverPath(serverId, `/bans/${enc(member.user_id)}`), body));
  }
  return h("li", { class: "settings-member", "data-testid": "member-row", dataset: { userId: member.user_id } },
    h("div", { class: "settings-member-head" },
      h("div", { class: "settings-member-name" },
        h("strong", {}, name), isOwner ? h("span", { class: "settings-badge", title: "Server owner" }, "Owner") : null,
        h("span", { class: "muted" }, member.user_id)),
      actions),
    roles.length ? h("div", { class: "settings-chips", role: "group", "aria-label": `Roles of ${name}` }, roleBoxes) : null,
    error);
}

// --- Invites -----------------------------------------------------------------------------------

function invitesTab(ctx, serverId, panel) {
  const error = errorBox();
  const maxUses = h("select", { "data-testid": "invite-max-uses" },
    [["0", "No limit"], ["1", "1 use"], ["5", "5 uses"], ["10", "10 uses"], ["25", "25 uses"], ["100", "100 uses"]]
      .map(([v, t]) => h("option", { value: v }, t)));
  const maxAge = h("select", { "data-testid": "invite-max-age" },
    [["1800", "30 minutes"], ["3600", "1 hour"], ["21600", "6 hours"], ["43200", "12 hours"], ["86400", "1 day"], ["604800", "7 days"], ["0", "Never"]]
      .map(([v, t]) => h("option", { value: v, selected: v === "604800" }, t)));
  const create = h("button", { class: "button", type: "submit", "data-testid": "create-invite" }, "Create invite");
  const result = h("div", { class: "settings-result" });
  const form = h("form", { class: "settings-form settings-inline-form" },
    field("Max number of uses", maxUses), field("Expire after", maxAge), h("div", { class: "settings-actions" }, create));
  const list = h("ul", { class: "settings-list", "aria-label": "Invites", "data-testid": "invite-list" });

  const load = async () => {
    setError(error, null);
    try {
      const invites = await ctx.api.get(serverPath(serverId, "/invites"));
      if (!invites.length) {
        replace(list, h("li", { class: "muted" }, "No invites yet."));
        return;
      }
      replace(list, invites.slice().reverse().map((inv) => inviteRow(ctx, serverId, inv, load, error)));
    } catch (err) {
      setError(error, err);
    }
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(create, error, async () => {
      const invite = await ctx.api.post(serverPath(serverId, "/invites"), {
        max_uses: Number(maxUses.value), max_age_secs: Number(maxAge.value),
      });
      replace(result, copyField("Invite link", `${location.origin}/invite/${invite.code}`, "invite-link"));
      result.querySelector("input")?.focus();
      await load();
    });
  });
  panel.append(section("Create an invite", form, result), error, section("Active invites", list));
  load();
}

function inviteRow(ctx, serverId, inv, reload, error) {
  const store = ctx.store;
  const expired = inv.expires_at && new Date(inv.expires_at) < new Date();
  const usedUp = inv.max_uses && inv.uses >= inv.max_uses;
  const del = h("button", { class: "button danger small", type: "button", "aria-label": `Delete invite ${inv.code}` }, "Delete");
  del.addEventListener("click", () => busy(del, error, async () => {
    await ctx.api.del(serverPath(serverId, `/invites/${enc(inv.code)}`));
    await reload();
  }));
  return h("li", { class: "list-row settings-row", "data-testid": "invite-row", dataset: { code: inv.code } },
    h("div", { class: "settings-row-main" },
      h("code", {}, inv.code),
      h("span", { class: "muted" }, `Uses ${inv.uses}/${inv.max_uses ? inv.max_uses : "∞"}`),
      h("span", { class: "muted" }, inv.expires_at ? `${expired ? "Expired" : "Expires"} ${when(inv.expires_at)}` : "Never expires"),
      h("span", { class: "muted" }, `by ${store.displayName(inv.creator_id, serverId) || inv.creator_id}`),
      expired || usedUp ? h("span", { class: "settings-badge" }, expired ? "expired" : "used up") : null),
    del);
}

// --- Bans --------------------------------------------------------------------------------------

function bansTab(ctx, serverId, panel) {
  const error = errorBox();
  const list = h("ul", { class: "settings-list", "aria-label": "Bans", "data-testid": "ban-list" });
  const load = async () => {
    try {
      const bans = await ctx.api.get(serverPath(serverId, "/bans"));
      if (!bans.length) {
        replace(list, h("li", { class: "muted" }, "Nobody is banned."));
        return;
      }
      replace(list, bans.map((ban) => {
        const revoke = h("button", { class: "button secondary small", type: "button", "aria-label": `Revoke ban of ${ban.user_id}` }, "Revoke ban");
        revoke.addEventListener("click", () => busy(revoke, error, async () => {
          await ctx.api.del(serverPath(serverId, `/bans/${enc(ban.user_id)}`));
          toast("Ban revoked");
          await load();
        }));
        return h("li", { class: "list-row settings-row", "data-testid": "ban-row", dataset: { userId: ban.user_id } },
          h("div", { class: "settings-row-main" },
            h("strong", {}, ban.user_id),
            h("span", { class: "muted" }, ban.reason ? `Reason: ${ban.reason}` : "No reason given"),
            ban.banned_by ? h("span", { class: "muted" }, `by ${ctx.store.displayName(ban.banned_by, serverId) || ban.banned_by}`) : null,
            ban.created_at ? h("span", { class: "muted" }, when(ban.created_at)) : null),
          revoke);
      }));
    } catch (err) {
      setError(error, err);
    }
  };
  panel.append(error, list);
  load();
}

// --- Audit log ---------------------------------------------------------------------------------

function auditTab(ctx, serverId, panel) {
  const store = ctx.store;
  const error = errorBox();
  const filter = h("select", { "data-testid": "audit-action-filter" },
    h("option", { value: "" }, "All actions"), AUDIT_ACTIONS.map(([v, t]) => h("option", { value: v }, t)));
  const list = h("ol", { class: "settings-list settings-audit", "aria-label": "Audit log entries", "data-testid": "audit-list" });
  const more = h("button", { class: "button secondary", type: "button", hidden: true, "data-testid": "audit-load-more" }, "Load more");
  let last = null;
  let generation = 0;

  const load = async (reset) => {
    const mine = reset ? ++generation : generation;
    if (reset) {
      last = null;
      replace(list, h("li", { class: "muted" }, "Loading…"));
    }
    const q = new URLSearchParams({ limit: String(AUDIT_PAGE) });
    if (filter.value) q.set("action", filter.value);
    if (last) q.set("before", last);
    await busy(more, error, async () => {
      const entries = await ctx.api.get(serverPath(serverId, `/audit-log?${q}`));
      if (mine !== generation) return;
      if (reset) clear(list);
      for (const e of entries) list.append(auditRow(store, serverId, e));
      if (!list.children.length) list.append(h("li", { class: "muted" }, "Nothing here yet."));
      last = entries.length ? entries[entries.length - 1].id : last;
      // A page may be short when the scan limit is hit, so any full page offers more.
      more.hidden = entries.length < AUDIT_PAGE;
    });
  };
  filter.addEventListener("change", () => load(true));
  more.addEventListener("click", () => load(false));
  panel.append(h("div", { class: "settings-toolbar" }, field("Filter by action", filter)), error, list, more);
  load(true);
}

function describeTarget(store, serverId, entry) {
  const id = entry.target_id;
  if (id === null || id === undefined) return "";
  const server = store.server(serverId);
  if (entry.action.startsWith("role_")) {
    const role = server?.roles.find((r) => r.id === id);
    return role ? `@${role.name.replace(/^@/, "")}` : id === "" ? "@everyone" : `role ${id}`;
  }
  if (entry.action.startsWith("channel_") || entry.action === "overwrite_update") {
    const channel = store.channel(id);
    return channel ? `#${channel.name}` : id;
  }
  if (id === serverId) return server?.name || id;
  if (id.startsWith("@")) return store.displayName(id, serverId) || id;
  return id;
}

function formatChange(c) {
  const show = (v) => (v === null || v === undefined || v === "" ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));
  if (c.key === "$add") return `added ${show(c.new)}`;
  if (c.key === "$remove") return `removed ${show(c.new ?? c.old)}`;
  return `${c.key}: ${show(c.old)} → ${show(c.new)}`;
}

function auditRow(store, serverId, e) {
  const actor = store.displayName(e.user_id, serverId) || e.user_id;
  const target = describeTarget(store, serverId, e);
  const changes = (e.changes || []).map(formatChange);
  return h("li", { class: "settings-audit-entry", "data-testid": "audit-entry", dataset: { action: e.action, id: e.id } },
    h("div", {}, h("strong", {}, actor), " ", h("span", {}, ACTION_LABEL[e.action] || e.action),
      target ? [" ", h("span", { class: "settings-audit-target" }, target)] : null),
    changes.length ? h("div", { class: "muted settings-audit-changes" }, changes.join("; ")) : null,
    e.reason ? h("div", { class: "muted" }, `Reason: ${e.reason}`) : null,
    h("time", { class: "muted settings-audit-time", dateTime: e.created_at }, when(e.created_at)));
}

// --- Webhooks ----------------------------------------------------------------------------------

function webhooksTab(ctx, serverId, panel, onCleanup) {
  const store = ctx.store;
  const error = errorBox();
  const name = h("input", { type: "text", value: "Captain Hook", maxLength: 80, required: true, "data-testid": "webhook-name-input" });
  const channel = h("select", { "data-testid": "webhook-channel" });
  const fillChannels = () => {
    const keep = channel.value;
    const texts = (store.server(serverId)?.channels || []).filter((c) => (c.type || "text") === "text"
      && store.can(serverId, "MANAGE_WEBHOOKS", c.id));
    replace(channel, texts.map((c) => h("option", { value: c.id, selected: c.id === keep }, `#${c.name}`)));
  };
  fillChannels();
  onCleanup(store.on("channels:" + serverId, fillChannels));
  const create = h("button", { class: "button", type: "submit", "data-testid": "create-webhook" }, "Create webhook");
  const result = h("div", { class: "settings-result" });
  const form = h("form", { class: "settings-form settings-inline-form" },
    field("Webhook name", name), field("Channel", channel), h("div", { class: "settings-actions" }, create));
  const list = h("ul", { class: "settings-list", "aria-label": "Webhooks", "data-testid": "webhook-list" });

  const load = async () => {
    try {
      const hooks = await ctx.api.get(serverPath(serverId, "/webhooks"));
      if (!hooks.length) {
        replace(list, h("li", { class: "muted" }, "No webhooks yet."));
        return;
      }
      replace(list, hooks.map((hook) => webhookRow(ctx, hook, load, error)));
    } catch (err) {
      setError(error, err);
    }
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!channel.value) {
      setError(error, new Error("Choose a text channel for the webhook."));
      return;
    }
    busy(create, error, async () => {
      const hook = await ctx.api.post(`/channels/${enc(channel.value)}/webhooks`, { name: name.value.trim() });
      replace(result,
        copyField("Webhook URL", `${location.origin}/api/v1/webhooks/${enc(hook.id)}/${hook.token}`, "webhook-url"),
        h("p", { class: "muted" }, "Copy it now: the token is shown only once. Anyone with this URL can post in the channel."));
      result.querySelector("input")?.focus();
      await load();
    });
  });
  panel.append(section("Create a webhook", form, result), error, section("Webhooks", list));
  load();
}

function webhookRow(ctx, hook, reload, error) {
  const channel = ctx.store.channel(hook.channel_id);
  const rename = h("button", { class: "button secondary small", type: "button", "aria-label": `Rename webhook ${hook.name}` }, "Rename");
  rename.addEventListener("click", async () => {
    const answer = await promptModal("Rename webhook", [{ name: "name", label: "Webhook name", value: hook.name, required: true, maxLength: 80 }], "Save");
    if (!answer) return;
    await busy(rename, error, async () => {
      await ctx.api.patch(`/webhooks/${enc(hook.id)}`, { name: answer.name.trim() });
      await reload();
    });
  });
  const del = h("button", { class: "button danger small", type: "button", "aria-label": `Delete webhook ${hook.name}` }, "Delete");
  del.addEventListener("click", async () => {
    if (!(await confirmModal("Delete webhook", `Delete the webhook “${hook.name}”? Its URL stops working at once.`, "Delete"))) return;
    await busy(del, error, async () => {
      await ctx.api.del(`/webhooks/${enc(hook.id)}`);
      await reload();
    });
  });
  return h("li", { class: "list-row settings-row", "data-testid": "webhook-row", dataset: { webhookId: hook.id } },
    h("div", { class: "settings-row-main" },
      h("strong", {}, hook.name),
      h("span", { class: "muted" }, channel ? `#${channel.name}` : hook.channel_id),
      hook.created_at ? h("span", { class: "muted" }, `created ${when(hook.created_at)}`) : null),
    h("div", { class: "settings-row-actions" }, rename, del));
}


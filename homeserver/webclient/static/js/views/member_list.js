// The member sidebar: online members under their highest hoisted role, the rest under
// "Online", then "Offline"; names in their role colour, presence dots.

import { enc } from "../api.js";
import { h, replace } from "../dom.js";
import { avatar } from "./message_row.js";
import { openMenu } from "./sidebar.js";
import { toast } from "./modal.js";

const ORDER = { online: 0, idle: 1, dnd: 2 };
const LABEL = { online: "Online", idle: "Idle", dnd: "Do Not Disturb", offline: "Offline" };

export function groupMembers(store, serverId) {
  const server = store.server(serverId);
  const members = [...(store.members.get(serverId)?.values() || [])].filter((m) => !m.webhook);
  const hoisted = (server?.roles || []).filter((r) => r.hoist && r.position > 0).sort((a, b) => b.position - a.position);
  const name = (m) => store.displayName(m.user_id, serverId).toLowerCase();
  const online = members.filter((m) => store.statusOf(m.user_id) !== "offline")
    .sort((a, b) => (ORDER[store.statusOf(a.user_id)] ?? 3) - (ORDER[store.statusOf(b.user_id)] ?? 3) || name(a).localeCompare(name(b)));
  const offline = members.filter((m) => store.statusOf(m.user_id) === "offline").sort((a, b) => name(a).localeCompare(name(b)));
  const groups = hoisted.map((role) => ({ title: role.name, members: [] }));
  const rest = { title: "Online", members: [] };
  for (const m of online) {
    const index = hoisted.findIndex((role) => m.role_ids.includes(role.id));
    (index >= 0 ? groups[index] : rest).members.push(m);
  }
  return [...groups, rest, { title: "Offline", members: offline }].filter((g) => g.members.length);
}

export class MemberList {
  constructor(ctx, serverId) {
    this.ctx = ctx;
    this.serverId = serverId;
    this.el = h("aside", { class: "member-list", "aria-label": "Members" });
    const s = ctx.store;
    this.off = [s.on("members:" + serverId, () => this.render()), s.on("presence", () => this.render()), s.on("roles:" + serverId, () => this.render())];
    if (!s.members.has(serverId)) s.loadMembers(serverId).catch(() => {});
    this.render();
  }

  destroy() {
    this.off.forEach((off) => off());
  }

  render() {
    const { store } = this.ctx;
    const groups = groupMembers(store, this.serverId);
    replace(this.el, groups.map((group) => h("section", { class: "member-group", "aria-label": `${group.title}, ${group.members.length}` },
      h("h3", { class: "member-group-title" }, `${group.title} — ${group.members.length}`),
      h("ul", { role: "list" }, group.members.map((m) => this.row(m))))));
  }

  row(member) {
    const { store } = this.ctx;
    const status = store.statusOf(member.user_id);
    const name = store.displayName(member.user_id, this.serverId);
    const colour = store.roleColour(this.serverId, member.user_id);
    const custom = store.presence.get(member.user_id)?.custom_status;
    const button = h("button", { type: "button", class: "member" + (status === "offline" ? " offline" : ""), "data-testid": "member", "data-user-id": member.user_id,
      "aria-label": `${name}, ${LABEL[status] || status}${custom ? ", " + custom : ""}` },
    h("span", { class: "avatar-wrap" }, avatar(this.ctx, name, null, member.user_id), h("span", { class: `status-dot ${status}`, "aria-hidden": "true" })),
    h("span", { class: "member-names" }, h("span", { class: "member-name", style: colour ? { color: colour } : null }, name),
      custom ? h("span", { class: "muted small" }, custom) : null));
    button.addEventListener("click", () => openUserMenu(this.ctx, member.user_id, button));
    return h("li", {}, button);
  }
}

// Message, add friend or block someone (from the member list or a DM header).
export function openUserMenu(ctx, userId, anchor) {
  const { store, api } = ctx;
  if (userId === store.me.id) return;
  const rel = store.relationships.get(userId)?.type;
  openMenu(anchor, [
    ["Message", async () => {
      try {
        const dm = await api.post("/dms", { recipient_id: userId });
        store.dms.set(dm.id, dm);
        store.emit("dms");
        ctx.navigate(`/channels/@me/${enc(dm.id)}`);
      } catch (err) {
        toast(err.message, "error");
      }
    }],
    rel !== "friend" && rel !== "blocked" && ["Add Friend", () => api.put(`/relationships/${enc(userId)}`).then(() => toast("Friend request sent")).catch((err) => toast(err.message, "error"))],
    rel === "friend" && ["Remove Friend", () => api.del(`/relationships/${enc(userId)}`).catch((err) => toast(err.message, "error"))],
    rel === "blocked" ? ["Unblock", () => api.del(`/relationships/${enc(userId)}/block`).catch((err) => toast(err.message, "error"))]
      : ["Block", () => api.put(`/relationships/${enc(userId)}/block`).then(() => toast("Blocked")).catch((err) => toast(err.message, "error"))],
  ].filter(Boolean));
}

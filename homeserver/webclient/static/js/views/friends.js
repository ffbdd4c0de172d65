// Home: friends (online, all, pending, blocked) and "Add Friend" by user ID or name.

import { icon } from "../icons.js";
import { enc } from "../api.js";
import { h, replace } from "../dom.js";
import { avatar } from "./message_row.js";
import { toast } from "./modal.js";

const TABS = [["online", "Online"], ["all", "All"], ["pending", "Pending"], ["blocked", "Blocked"], ["add", "Add Friend"]];

export class FriendsView {
  constructor(ctx) {
    this.ctx = ctx;
    this.tab = "online";
    this.body = h("div", { class: "friends-body" });
    this.tabs = h("div", { class: "tabs horizontal", role: "tablist", "aria-label": "Friends" });
    this.el = h("section", { class: "friends-view", "aria-label": "Friends" },
      h("header", { class: "channel-header" }, h("h1", {}, h("span", { class: "channel-icon", "aria-hidden": "true" }, icon("friends")), "Friends"), this.tabs), this.body);
    this.off = [ctx.store.on("relationships", () => this.render()), ctx.store.on("presence", () => this.render())];
    this.render();
  }

  destroy() {
    this.off.forEach((off) => off());
  }

  render() {
    const { store } = this.ctx;
    const buttons = TABS.map(([key, label]) => h("button", { type: "button", role: "tab", class: "tab" + (key === "add" ? " add" : ""), "aria-selected": this.tab === key ? "true" : "false",
      tabIndex: this.tab === key ? 0 : -1, onclick: () => { this.tab = key; this.render(); buttons[TABS.findIndex(([k]) => k === key)]?.focus(); } }, label));
    this.tabs.addEventListener("keydown", this._keys ||= (ev) => {
      const i = TABS.findIndex(([k]) => k === this.tab);
      const d = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
      if (!d) return;
      this.tab = TABS[(i + d + TABS.length) % TABS.length][0];
      this.render();
      this.tabs.querySelector('[aria-selected="true"]')?.focus();
    });
    replace(this.tabs, buttons);
    if (this.tab === "add") return this.renderAdd();
    const rels = [...store.relationships.values()].filter((r) => {
      if (this.tab === "online") return r.type === "friend" && store.statusOf(r.user_id) !== "offline";
      if (this.tab === "all") return r.type === "friend";
      if (this.tab === "pending") return r.type === "pending_incoming" || r.type === "pending_outgoing";
      return r.type === "blocked";
    });
    const title = { online: "ONLINE", all: "ALL FRIENDS", pending: "PENDING", blocked: "BLOCKED" }[this.tab];
    replace(this.body, h("h2", { class: "list-title" }, `${title} — ${rels.length}`),
      rels.length ? h("ul", { class: "friend-list", role: "list" }, rels.map((r) => this.row(r)))
        : h("p", { class: "muted empty" }, this.tab === "pending" ? "There are no pending friend requests." : this.tab === "blocked" ? "You haven't blocked anyone." : "No one's around to play with."));
  }

  row(rel) {
    const { api, store } = this.ctx;
    const name = rel.user?.display_name || rel.user_id;
    const status = store.statusOf(rel.user_id);
    const act = (label, fn, cls = "") => h("button", { type: "button", class: "button small " + cls, "aria-label": `${label} ${name}`, onclick: () => fn().catch((err) => toast(err.message, "error")) }, label);
    const u = enc(rel.user_id);
    const actions = {
      friend: [act("Message", async () => {
        const dm = await api.post("/dms", { recipient_id: rel.user_id });
        store.dms.set(dm.id, dm);
        store.emit("dms");
        this.ctx.navigate(`/channels/@me/${enc(dm.id)}`);
      }), act("Remove", () => api.del(`/relationships/${u}`), "secondary")],
      pending_incoming: [act("Accept", () => api.post(`/relationships/${u}/accept`)), act("Ignore", () => api.post(`/relationships/${u}/decline`), "secondary")],
      pending_outgoing: [act("Cancel", () => api.del(`/relationships/${u}`), "secondary")],
      blocked: [act("Unblock", () => api.del(`/relationships/${u}/block`), "secondary")],
    }[rel.type] || [];
    const sub = { pending_incoming: "Incoming Friend Request", pending_outgoing: "Outgoing Friend Request", blocked: "Blocked" }[rel.type] || status;
    return h("li", { class: "friend-row", "data-testid": "friend", "data-user-id": rel.user_id },
      h("span", { class: "avatar-wrap" }, avatar(this.ctx, name, null, rel.user_id), rel.type === "friend" ? h("span", { class: `status-dot ${status}`, "aria-hidden": "true" }) : null),
      h("span", { class: "friend-names" }, h("strong", {}, name), h("span", { class: "muted small" }, `${rel.user_id} · ${sub}`)),
      h("span", { class: "friend-actions" }, actions));
  }

  renderAdd() {
    const input = h("input", { placeholder: "@username:server or a name", "aria-label": "Username", autocomplete: "off" });
    const results = h("ul", { class: "friend-list", role: "list", "aria-label": "Search results" });
    const status = h("p", { role: "status", class: "muted" });
    const form = h("form", { class: "add-friend" }, h("h2", {}, "ADD FRIEND"),
      h("p", { class: "muted" }, "You can add friends with their Matrix user ID, on this server or another, or search by name."),
      h("div", { class: "copy-row" }, input, h("button", { class: "button", type: "submit" }, "Send Friend Request")), status, results);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      try {
        if (value.startsWith("@") && value.includes(":")) {
          await this.ctx.api.put(`/relationships/${enc(value)}`);
          status.textContent = `Success! Your friend request to ${value} was sent.`;
          input.value = "";
          return;
        }
        const found = await this.ctx.api.get(`/users/search?q=${enc(value)}`);
        const users = found.results || found;
        replace(results, (users || []).map((u) => h("li", { class: "friend-row" }, avatar(this.ctx, u.display_name, u.avatar_url, u.id),
          h("span", { class: "friend-names" }, h("strong", {}, u.display_name || u.id), h("span", { class: "muted small" }, u.id)),
          h("button", { type: "button", class: "button small", "aria-label": `Add ${u.display_name || u.id} as a friend`,
            onclick: () => this.ctx.api.put(`/relationships/${enc(u.id)}`).then(() => { status.textContent = `Friend request sent to ${u.display_name || u.id}.`; }).catch((err) => { status.textContent = err.message; }) }, "Add"))));
        status.textContent = users?.length ? "" : "Nobody by that name.";
      } catch (err) {
        status.textContent = err.message;
      }
    });
    replace(this.body, form);
    input.focus();
  }
}

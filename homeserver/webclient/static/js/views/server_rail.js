// The column of server icons: Home (friends and DMs), each server with its unread dot
// and mention count, and "Add a server" (create, or join by invite link).

import { icon } from "../icons.js";
import { enc } from "../api.js";
import { colourOf, h, initials, replace } from "../dom.js";
import { openModal } from "./modal.js";

export class ServerRail {
  constructor(ctx) {
    this.ctx = ctx;
    this.el = h("nav", { class: "server-rail", "aria-label": "Servers" });
    const store = ctx.store;
    this.off = [store.on("servers", () => this.render()), store.on("unread", () => this.render()), store.on("dms", () => this.render())];
    this.render();
  }

  destroy() {
    this.off.forEach((off) => off());
  }

  render() {
    const { store } = this.ctx;
    const active = this.ctx.shell?.route || {};
    let dmMentions = 0;
    for (const id of store.dms.keys()) dmMentions += store.unread(id).unread_count;
    const home = h("button", { type: "button", class: "rail-icon home" + (active.home ? " active" : ""), "data-testid": "home",
      "aria-label": "Home", title: "Direct messages", "aria-current": active.home ? "page" : null,
      onclick: () => this.ctx.navigate("/channels/@me") }, h("img", { src: "/icons/icon.svg", alt: "" }),
      dmMentions ? h("span", { class: "badge", "aria-label": `${dmMentions} unread direct messages` }, String(dmMentions)) : null);
    const servers = [...store.servers.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    replace(this.el, home, h("div", { class: "rail-separator", role: "separator" }),
      servers.map((server) => this.icon(server, active.serverId === server.id)),
      h("button", { type: "button", class: "rail-icon add", "data-testid": "add-server", "aria-label": "Add a server", title: "Add a server", onclick: () => openAddServer(this.ctx) }, icon("plus", 24)));
  }

  icon(server, active) {
    const { store } = this.ctx;
    const { unread, mentions } = store.serverUnread(server.id);
    const button = h("button", {
      type: "button", class: "rail-icon" + (active ? " active" : "") + (unread ? " unread" : ""), "data-testid": "server-icon",
      "data-server-id": server.id, "aria-label": server.name, title: server.name, "aria-current": active ? "page" : null,
      style: { background: server.icon_url ? null : colourOf(server.id) },
      onclick: () => this.ctx.shell.openServer(server.id),
    }, h("span", { "aria-hidden": "true" }, initials(server.name)));
    if (server.icon_url) {
      this.ctx.api.mediaUrl(server.icon_url).then((src) => replace(button, h("img", { src, alt: "" }), badge())).catch(() => {});
    }
    function badge() {
      return mentions ? h("span", { class: "badge", "data-testid": "server-mentions", "aria-label": `${mentions} mentions` }, String(mentions)) : null;
    }
    const b = badge();
    if (b) button.append(b);
    return h("div", { class: "rail-item" }, unread ? h("span", { class: "pill", "aria-hidden": "true" }) : null, button);
  }
}

export function openAddServer(ctx) {
  const error = h("p", { class: "form-error", role: "alert" });
  const name = h("input", { name: "name", required: true, maxLength: 100, value: `${ctx.store.me.display_name}'s server` });
  const invite = h("input", { name: "invite", placeholder: `${location.origin}/invite/hTKzmak`, required: true });
  let modal;
  const create = h("form", { class: "form", "aria-label": "Create a server" },
    h("h3", {}, "Create your own"),
    h("label", { class: "field" }, h("span", {}, "Server name"), name),
    h("div", { class: "modal-actions" }, h("button", { class: "button", type: "submit" }, "Create")));
  const join = h("form", { class: "form", "aria-label": "Join a server" },
    h("h3", {}, "Have an invite already?"),
    h("label", { class: "field" }, h("span", {}, "Invite link or code"), invite),
    h("div", { class: "modal-actions" }, h("button", { class: "button secondary", type: "submit" }, "Join server")));
  create.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const server = await ctx.api.post("/servers", { name: name.value.trim() });
      ctx.store.addServer(server);
      modal.close();
      ctx.shell.openServer(server.id);
    } catch (err) {
      error.textContent = err.message;
    }
  });
  join.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const code = invite.value.trim().replace(/^.*\/invite\//, "").replace(/[/?#].*$/, "");
    try {
      const server = await ctx.api.post(`/invites/${enc(code)}`);
      ctx.store.addServer(server);
      modal.close();
      ctx.shell.openServer(server.id);
    } catch (err) {
      error.textContent = err.status === 404 ? "That invite is invalid or has expired." : err.message;
    }
  });
  modal = openModal("Add a server", h("div", { class: "add-server" }, create, join, error));
  name.select();
}

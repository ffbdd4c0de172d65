// The quick switcher (Ctrl/Cmd+K): servers, text channels (with their server) and DMs,
// case-insensitive substring match, top 20, ↑/↓ to move, Enter to go, Escape to close.

import { enc } from "../api.js";
import { h, replace } from "../dom.js";
import { openModal } from "./modal.js";

export function switcherItems(store) {
  const items = [];
  for (const server of store.servers.values()) {
    const first = server.channels.find((c) => c.type === "text");
    items.push({ kind: "server", label: server.name, sublabel: "Server", path: `/channels/${enc(server.id)}${first ? "/" + enc(first.id) : ""}`, unread: store.serverUnread(server.id).unread });
    for (const channel of server.channels.filter((c) => c.type === "text")) {
      items.push({ kind: "channel", label: channel.name, sublabel: server.name, path: `/channels/${enc(server.id)}/${enc(channel.id)}`, unread: store.unread(channel.id).unread_count });
    }
  }
  for (const dm of store.dms.values()) {
    items.push({ kind: "dm", label: store.dmName(dm), sublabel: dm.type === "group_dm" ? "Group DM" : "Direct message", path: `/channels/@me/${enc(dm.id)}`, unread: store.unread(dm.id).unread_count });
  }
  return items;
}

export function filterItems(items, query) {
  const q = query.trim().toLowerCase().replace(/^[#@*]/, "");
  const matches = q ? items.filter((i) => i.label.toLowerCase().includes(q) || i.sublabel.toLowerCase().includes(q)) : items.slice().sort((a, b) => (b.unread || 0) - (a.unread || 0));
  return matches.slice(0, 20);
}

const ICON = { server: "🏠", channel: "#", dm: "@" };

export function openSwitcher(ctx) {
  if (document.querySelector('dialog[open] [data-testid="quick-switcher"]')) return;
  const all = switcherItems(ctx.store);
  let shown = [];
  let active = 0;
  const input = h("input", { class: "switcher-input", "aria-label": "Where would you like to go?", placeholder: "Where would you like to go?", role: "combobox",
    "aria-expanded": "true", "aria-controls": "switcher-results", "aria-autocomplete": "list", autocomplete: "off" });
  const list = h("ul", { class: "switcher-results", id: "switcher-results", role: "listbox", "aria-label": "Results" });
  const body = h("div", { class: "switcher", "data-testid": "quick-switcher" }, input, list,
    h("p", { class: "muted small" }, "↑↓ to navigate · Enter to select · Esc to close"));
  const modal = openModal("Quick switcher", body, { label: "Quick switcher" });
  modal.dialog.classList.add("switcher-dialog");

  const go = (item) => {
    if (!item) return;
    modal.close();
    ctx.navigate(item.path);
  };
  const render = () => {
    shown = filterItems(all, input.value);
    active = Math.min(active, Math.max(0, shown.length - 1));
    replace(list, shown.length ? shown.map((item, i) => h("li", {
      role: "option", id: `switcher-option-${i}`, class: "switcher-option" + (i === active ? " active" : ""), "aria-selected": i === active ? "true" : "false",
      "data-kind": item.kind, onmousedown: (ev) => { ev.preventDefault(); go(item); },
    }, h("span", { class: "switcher-icon", "aria-hidden": "true" }, ICON[item.kind]), h("span", { class: "switcher-label" }, item.label),
    h("span", { class: "muted small switcher-sublabel" }, item.sublabel), item.unread ? h("span", { class: "badge" }, String(item.unread)) : null))
      : h("li", { class: "muted", role: "presentation" }, "No results"));
    input.setAttribute("aria-activedescendant", shown.length ? `switcher-option-${active}` : "");
    list.querySelector(".active")?.scrollIntoView({ block: "nearest" });
  };
  input.addEventListener("input", () => { active = 0; render(); });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown") { ev.preventDefault(); active = (active + 1) % Math.max(1, shown.length); render(); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); active = (active - 1 + shown.length) % Math.max(1, shown.length); render(); }
    else if (ev.key === "Enter") { ev.preventDefault(); go(shown[active]); }
  });
  render();
  input.focus();
}

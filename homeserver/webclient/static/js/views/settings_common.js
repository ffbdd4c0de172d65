// Shared pieces of the settings dialogs: a vertical tab list with its panel, labelled
// fields, inline errors and a copyable read-only value.

import { h, replace } from "../dom.js";
import { openModal } from "./modal.js";

let uid = 0;
export function nextId(prefix = "s") {
  uid += 1;
  return `${prefix}-${uid}`;
}

// tabs: [{id, label, render(panel, onCleanup)}]. Only one panel lives at a time; what a
// render subscribes to is released through onCleanup when another tab is chosen.
export function tabbedSettings({ tabs, initial, label, testid, footer }) {
  const base = nextId("settings");
  const panel = h("div", { class: "settings-panel", role: "tabpanel", tabIndex: 0, "data-testid": "settings-panel" });
  let cleanups = [];
  const release = () => {
    for (const fn of cleanups.splice(0)) {
      try { fn(); } catch { /* a listener already gone */ }
    }
  };
  const buttons = tabs.map((tab) => h("button", {
    class: "settings-tab", type: "button", role: "tab", id: `${base}-tab-${tab.id}`,
    "aria-selected": "false", "aria-controls": `${base}-panel`, tabIndex: -1,
    "data-testid": `settings-tab-${tab.id}`, dataset: { tab: tab.id },
    onclick: () => select(tab.id),
  }, tab.label));
  panel.id = `${base}-panel`;
  const list = h("div", { class: "settings-tablist", role: "tablist", "aria-orientation": "vertical", "aria-label": label || "Settings sections" }, buttons);
  list.addEventListener("keydown", (ev) => {
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    let next = null;
    if (ev.key === "ArrowDown" || ev.key === "ArrowRight") next = (index + 1) % buttons.length;
    else if (ev.key === "ArrowUp" || ev.key === "ArrowLeft") next = (index - 1 + buttons.length) % buttons.length;
    else if (ev.key === "Home") next = 0;
    else if (ev.key === "End") next = buttons.length - 1;
    if (next === null) return;
    ev.preventDefault();
    select(tabs[next].id);
    buttons[next].focus();
  });
  let current = null;
  function select(id) {
    const index = Math.max(0, tabs.findIndex((t) => t.id === id));
    const tab = tabs[index];
    if (!tab) return;
    current = tab.id;
    buttons.forEach((b, i) => {
      b.setAttribute("aria-selected", i === index ? "true" : "false");
      b.tabIndex = i === index ? 0 : -1;
    });
    panel.setAttribute("aria-labelledby", buttons[index].id);
    release();
    replace(panel, h("h3", { class: "settings-heading" }, tab.label));
    try {
      const out = tab.render(panel, (fn) => cleanups.push(fn));
      if (out && typeof out.catch === "function") out.catch((err) => panel.append(errorBox(err.message)));
    } catch (err) {
      panel.append(errorBox(err.message));
    }
  }
  const side = h("nav", { class: "settings-side" }, list, footer || null);
  const root = h("div", { class: "settings-layout", "data-testid": testid }, side, panel);
  if (tabs.length) select(initial && tabs.some((t) => t.id === initial) ? initial : tabs[0].id);
  return { root, select, destroy: release, get current() { return current; }, focusTab: () => buttons.find((b) => b.tabIndex === 0)?.focus() };
}

// An element for an error message, announced when its text changes.
export function errorBox(text = "") {
  return h("p", { class: "form-error", role: "alert" }, text);
}

export function setError(box, err) {
  box.textContent = err ? (err.message || String(err)) : "";
}

// Runs fn with the button disabled; an error lands in `box` instead of an alert().
export async function busy(button, box, fn) {
  if (button) button.disabled = true;
  setError(box, null);
  try {
    return await fn();
  } catch (err) {
    setError(box, err);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function field(labelText, control, extraClass = "") {
  return h("label", { class: "field" + (extraClass ? " " + extraClass : "") }, h("span", {}, labelText), control);
}

export function checkboxField(labelText, input, description) {
  return h("label", { class: "field checkbox settings-check" }, input,
    h("span", { class: "settings-check-text" }, h("span", {}, labelText),
      description ? h("span", { class: "muted settings-desc" }, description) : null));
}

// A read-only value with a Copy button; falls back to selecting the text.
export function copyField(labelText, value, testid) {
  const input = h("input", { type: "text", readOnly: true, value, class: "settings-copy-input", "data-testid": testid });
  const status = h("span", { class: "muted settings-copy-status", role: "status", "aria-live": "polite" });
  const button = h("button", { class: "button", type: "button" }, "Copy");
  button.addEventListener("click", async () => {
    try {
      if (!navigator.clipboard) throw new Error("no clipboard");
      await navigator.clipboard.writeText(value);
      status.textContent = "Copied!";
    } catch {
      input.focus();
      input.select();
      status.textContent = "Press Ctrl+C to copy";
    }
  });
  input.addEventListener("focus", () => input.select());
  return h("div", { class: "settings-copy" }, field(labelText, h("div", { class: "settings-copy-row" }, input, button)), status);
}

export function section(title, ...children) {
  return h("section", { class: "settings-section" }, title ? h("h4", { class: "settings-subheading" }, title) : null, ...children);
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

// Shows tabbed settings in a wide dialog that closes itself when the store says the thing
// being edited is gone (`goneTopic` emitted with `{id: goneId}`); fills modalRef.close.
export function openSettingsModal(store, title, settings, { goneTopic, goneId, modalRef }) {
  const offGone = store.on(goneTopic, (d) => { if (d?.id === goneId) modalRef.close?.(); });
  const modal = openModal(title, settings.root, {
    wide: true,
    onClose: () => { settings.destroy(); offGone(); },
  });
  modal.dialog.classList.add("settings-modal");
  modalRef.close = modal.close;
  settings.focusTab();
  return modal;
}

// Dialogs on <dialog>: showModal() traps focus, Escape closes, focus returns to the opener.

import { icon } from "../icons.js";
import { h } from "../dom.js";

export function openModal(title, body, { wide = false, onClose, label } = {}) {
  const opener = document.activeElement;
  const heading = h("h2", { class: "modal-title", id: "modal-" + Math.random().toString(36).slice(2) }, title);
  const close = h("button", { class: "icon-button modal-close", type: "button", "aria-label": "Close" }, icon("close"));
  const dialog = h("dialog", { class: "modal" + (wide ? " wide" : ""), "aria-labelledby": heading.id, ...(label ? { "aria-label": label } : {}) },
    h("div", { class: "modal-header" }, heading, close), h("div", { class: "modal-body" }, body));
  const done = () => {
    if (dialog.open) dialog.close();
  };
  close.addEventListener("click", done);
  dialog.addEventListener("close", () => {
    dialog.remove();
    onClose?.();
    if (opener && document.contains(opener)) opener.focus();
  });
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) done();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector("[autofocus], input, textarea, select, button:not(.modal-close)");
  first?.focus();
  return { dialog, close: done };
}

// A yes/no question; resolves true when confirmed.
export function confirmModal(title, text, confirmLabel = "Confirm", danger = true) {
  return new Promise((resolve) => {
    let answer = false;
    const yes = h("button", { class: danger ? "button danger" : "button", type: "button" }, confirmLabel);
    const no = h("button", { class: "button secondary", type: "button" }, "Cancel");
    const modal = openModal(title, h("div", {}, h("p", {}, text), h("div", { class: "modal-actions" }, no, yes)),
      { onClose: () => resolve(answer) });
    yes.addEventListener("click", () => { answer = true; modal.close(); });
    no.addEventListener("click", () => modal.close());
    yes.focus();
  });
}

// A form in a dialog: fields [{name, label, type?, value?, required?, options?}], resolves the values or null.
export function promptModal(title, fields, submitLabel = "Save") {
  return new Promise((resolve) => {
    let answer = null;
    const inputs = {};
    const error = h("p", { class: "form-error", role: "alert" });
    const form = h("form", { class: "form" },
      fields.map((f) => {
        const input = f.options
          ? h("select", { name: f.name }, f.options.map(([value, text]) => h("option", { value, selected: value === f.value }, text)))
          : f.type === "textarea"
            ? h("textarea", { name: f.name, required: f.required, maxLength: f.maxLength }, f.value || "")
            : h("input", { name: f.name, type: f.type || "text", value: f.value ?? "", required: f.required, maxLength: f.maxLength, min: f.min, checked: f.type === "checkbox" ? !!f.value : undefined });
        inputs[f.name] = input;
        return h("label", { class: f.type === "checkbox" ? "field checkbox" : "field" }, h("span", {}, f.label), input);
      }),
      error,
      h("div", { class: "modal-actions" }, h("button", { class: "button", type: "submit" }, submitLabel)));
    const modal = openModal(title, form, { onClose: () => resolve(answer) });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      answer = {};
      for (const [name, input] of Object.entries(inputs)) answer[name] = input.type === "checkbox" ? input.checked : input.value;
      modal.close();
    });
  });
}

// A short message at the bottom of the screen (announced to screen readers).
export function toast(text, kind = "info") {
  let host = document.getElementById("toasts");
  if (!host) {
    host = h("div", { id: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(host);
  }
  const item = h("div", { class: "toast " + kind }, text);
  host.append(item);
  setTimeout(() => item.remove(), 4000);
}

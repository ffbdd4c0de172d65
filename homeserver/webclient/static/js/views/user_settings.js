// User settings: account, status, appearance, notifications and blocked users, plus log out.

import { enc } from "../api.js";
import { h, replace, clear, initials, colourOf } from "../dom.js";
import { applyTheme, currentTheme } from "../theme.js";
import { openModal, toast } from "./modal.js";
import { tabbedSettings, errorBox, setError, busy, field, section, nextId } from "./settings_common.js";

const NOTIFY_KEY = "drocsid.notifications";
const STATUSES = [
  ["online", "Online", ""],
  ["idle", "Idle", ""],
  ["dnd", "Do Not Disturb", "You will not get desktop notifications."],
  ["invisible", "Invisible", "You will appear offline, but can still use Drocsid."],
];

export function openUserSettings(ctx, tab = "account") {
  const modalRef = {};
  const logout = h("button", { class: "button danger settings-logout", type: "button", "data-testid": "log-out" }, "Log out");
  logout.addEventListener("click", () => {
    modalRef.close?.();
    ctx.signOut();
  });
  const tabs = [
    { id: "account", label: "My Account", render: (p, c) => accountTab(ctx, p, c) },
    { id: "status", label: "Status", render: (p) => statusTab(ctx, p) },
    { id: "appearance", label: "Appearance", render: (p) => appearanceTab(p) },
    { id: "notifications", label: "Notifications", render: (p) => notificationsTab(p) },
    { id: "privacy", label: "Privacy", render: (p, c) => privacyTab(ctx, p, c) },
  ];
  const settings = tabbedSettings({ tabs, initial: tab, label: "User settings", testid: "user-settings", footer: logout });
  const modal = openModal("User Settings", settings.root, { wide: true, onClose: () => settings.destroy() });
  modal.dialog.classList.add("settings-modal");
  modalRef.close = modal.close;
  settings.focusTab();
  return modal;
}

// The answer of PATCH /users/@me (or the avatar upload) becomes the store's `me`.
function applyMe(ctx, user) {
  if (!user) return;
  ctx.store.me = { ...(ctx.store.me || {}), ...user };
  ctx.store.emit("me");
}

// --- My Account ------------------------------------------------------------------------------

function accountTab(ctx, panel, onCleanup) {
  const me = ctx.store.me || {};
  const error = errorBox();
  const avatar = h("div", { class: "settings-avatar", "aria-hidden": "true" });
  const drawAvatar = async () => {
    const current = ctx.store.me || {};
    clear(avatar);
    avatar.style.background = current.avatar_url ? "" : colourOf(current.id || "");
    if (current.avatar_url) {
      try {
        avatar.append(h("img", { src: await ctx.api.mediaUrl(current.avatar_url), alt: "" }));
        return;
      } catch { /* fall back to the initials */ }
    }
    avatar.append(h("span", {}, initials(current.display_name || current.username)));
  };
  drawAvatar();
  onCleanup(ctx.store.on("me", drawAvatar));

  const name = h("input", { type: "text", value: me.display_name || "", maxLength: 32, required: true, "data-testid": "display-name-input" });
  const save = h("button", { class: "button", type: "submit", "data-testid": "save-account" }, "Save changes");
  const form = h("form", { class: "settings-form" }, field("Display name", name), error, h("div", { class: "settings-actions" }, save));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, error, async () => {
      applyMe(ctx, await ctx.api.patch("/users/@me", { display_name: name.value.trim() }));
      toast("Profile saved");
    });
  });

  const avatarError = errorBox();
  const file = h("input", { type: "file", accept: "image/png,image/jpeg,image/gif,image/webp", "data-testid": "avatar-input" });
  file.addEventListener("change", () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    busy(file, avatarError, async () => {
      applyMe(ctx, await ctx.api.request("POST", "/users/@me/avatar", { raw: chosen, contentType: chosen.type }));
      toast("Avatar updated");
    }).finally(() => { file.value = ""; });
  });
  const removeAvatar = h("button", { class: "button secondary", type: "button" }, "Remove avatar");
  removeAvatar.addEventListener("click", () => busy(removeAvatar, avatarError, async () => {
    applyMe(ctx, await ctx.api.patch("/users/@me", { avatar_url: null }));
  }));

  const userId = h("input", { type: "text", readOnly: true, value: me.id || "", "data-testid": "user-id" });
  panel.append(
    h("div", { class: "settings-profile" }, avatar,
      h("div", {}, h("strong", { class: "settings-profile-name" }, me.display_name || me.username || ""),
        h("div", { class: "muted" }, me.username ? `@${me.username}` : ""))),
    form,
    section("Avatar", field("Upload avatar", file), h("p", { class: "muted" }, "PNG, JPEG, GIF or WebP, at most 5 MiB."), removeAvatar, avatarError),
    section("User ID", field("Your user ID", userId)),
    emailSection(ctx));
}

// The address password-reset links go to (docs/email.md): changing it needs the password,
// and it counts once the link mailed to it is followed.
function emailSection(ctx) {
  const status = h("p", { class: "muted", "data-testid": "email-status" }, "Loading…");
  const address = h("input", { type: "email", autocomplete: "email", maxLength: 254, required: true, "data-testid": "email-input" });
  const password = h("input", { type: "password", autocomplete: "current-password", required: true, "data-testid": "email-password" });
  const error = errorBox();
  const save = h("button", { class: "button", type: "submit", "data-testid": "save-email" }, "Save email");
  const form = h("form", { class: "settings-form" }, field("Email", address), field("Current password", password), error,
    h("div", { class: "settings-actions" }, save));
  const show = (answer) => {
    address.value = answer?.email || "";
    status.textContent = !answer?.email ? "No email address: add one to be able to reset your password."
      : answer.verified ? "Verified." : "Not verified yet: follow the link we mailed you.";
  };
  ctx.api.get("/users/@me/email").then(show).catch(() => show(null));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, error, async () => {
      show(await ctx.api.put("/users/@me/email", { email: address.value.trim(), password: password.value }));
      password.value = "";
      toast("Check your inbox to confirm the address");
    });
  });
  return section("Email", status, form);
}

// --- Status ----------------------------------------------------------------------------------

function statusTab(ctx, panel) {
  const me = ctx.store.me || {};
  const known = ctx.store.presence.get(me.id) || {};
  const currentStatus = me.status || known.status || "online";
  const currentCustom = me.custom_status ?? known.custom_status ?? "";
  const group = nextId("status");
  const error = errorBox();
  const radios = STATUSES.map(([value, label, hint]) => {
    const input = h("input", { type: "radio", name: group, value, checked: value === (currentStatus === "offline" ? "invisible" : currentStatus) });
    return h("label", { class: "field checkbox settings-check" }, input,
      h("span", { class: "settings-check-text" }, h("span", {}, h("span", { class: `settings-status-dot status-${value}`, "aria-hidden": "true" }), label),
        hint ? h("span", { class: "muted settings-desc" }, hint) : null));
  });
  const custom = h("input", { type: "text", value: currentCustom || "", maxLength: 128, placeholder: "What's happening?", "data-testid": "custom-status-input" });
  const save = h("button", { class: "button", type: "submit", "data-testid": "save-status" }, "Save status");
  const form = h("form", { class: "settings-form" },
    h("fieldset", { class: "settings-fieldset", role: "radiogroup", "aria-label": "Status" }, h("legend", {}, "Status"), radios),
    field("Custom status", custom), error, h("div", { class: "settings-actions" }, save));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(save, error, async () => {
      const status = form.querySelector(`input[name="${group}"]:checked`)?.value || "online";
      const text = custom.value.trim();
      const answer = await ctx.api.patch("/users/@me", { status, custom_status: text });
      applyMe(ctx, { status, custom_status: text, ...(answer || {}) });
      ctx.store.presence.set(me.id, { status: answer?.status || status, custom_status: answer?.custom_status ?? text });
      ctx.store.emit("presence", { user_id: me.id, status, custom_status: text });
      try {
        ctx.gateway?.setPresence(status, text);
      } catch { /* the gateway reconnects and READY carries the new status */ }
      toast("Status saved");
    });
  });
  panel.append(form);
}

// --- Appearance ------------------------------------------------------------------------------

function appearanceTab(panel) {
  const group = nextId("theme");
  const chosen = currentTheme();
  const radios = [["dark", "Dark"], ["light", "Light"], ["system", "Sync with computer"]].map(([value, label]) => {
    const input = h("input", { type: "radio", name: group, value, checked: value === chosen, "data-testid": `theme-${value}` });
    input.addEventListener("change", () => { if (input.checked) applyTheme(value); });
    return h("label", { class: "field checkbox settings-check settings-theme-choice", dataset: { theme: value } }, input, h("span", {}, label));
  });
  panel.append(h("fieldset", { class: "settings-fieldset", role: "radiogroup", "aria-label": "Theme" }, h("legend", {}, "Theme"), radios));
}

// --- Notifications ---------------------------------------------------------------------------

function notificationsTab(panel) {
  const status = h("p", { class: "muted", role: "status" });
  const supported = typeof Notification !== "undefined";
  const input = h("input", { type: "checkbox", checked: localStorage.getItem(NOTIFY_KEY) === "on", "data-testid": "desktop-notifications" });
  const describe = () => {
    if (!supported) status.textContent = "This browser does not support desktop notifications.";
    else if (Notification.permission === "denied") status.textContent = "The browser blocks notifications for this site; allow them in its site settings.";
    else status.textContent = "";
  };
  input.addEventListener("change", async () => {
    localStorage.setItem(NOTIFY_KEY, input.checked ? "on" : "off");
    if (input.checked && supported && Notification.permission === "default") {
      try {
        await Notification.requestPermission();
      } catch { /* older browsers take a callback; the choice is still stored */ }
    }
    describe();
  });
  describe();
  panel.append(h("label", { class: "field checkbox settings-check" }, input,
    h("span", { class: "settings-check-text" }, h("span", {}, "Desktop notifications for mentions and DMs"),
      h("span", { class: "muted settings-desc" }, "Shown while Drocsid is open in a background tab."))), status);
}

// --- Privacy ---------------------------------------------------------------------------------

function privacyTab(ctx, panel, onCleanup) {
  const error = errorBox();
  const list = h("ul", { class: "settings-list", "aria-label": "Blocked users", "data-testid": "blocked-list" });
  const draw = () => {
    const blocked = [...ctx.store.relationships.values()].filter((r) => r.type === "blocked");
    if (!blocked.length) {
      replace(list, h("li", { class: "muted" }, "You have not blocked anyone."));
      return;
    }
    replace(list, blocked.map((rel) => {
      const name = rel.user?.display_name || rel.user_id;
      const unblock = h("button", { class: "button secondary small", type: "button", "aria-label": `Unblock ${name}` }, "Unblock");
      unblock.addEventListener("click", () => busy(unblock, error, async () => {
        await ctx.api.del(`/relationships/${enc(rel.user_id)}/block`);
        ctx.store.relationships.delete(rel.user_id);
        ctx.store.emit("relationships");
      }));
      return h("li", { class: "list-row settings-row", "data-testid": "blocked-row", dataset: { userId: rel.user_id } },
        h("div", { class: "settings-row-main" }, h("strong", {}, name), h("span", { class: "muted" }, rel.user_id)), unblock);
    }));
  };
  onCleanup(ctx.store.on("relationships", draw));
  draw();
  panel.append(section("Blocked users", h("p", { class: "muted" }, "Blocked users cannot message you or send friend requests, and their messages are hidden."), error, list));
  setError(error, null);
}

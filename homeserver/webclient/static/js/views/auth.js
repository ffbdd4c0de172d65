// Sign-in and registration pages.

import { Api, withExpiry } from "../api.js";
import { h, replace } from "../dom.js";

export function renderAuth(root, ctx, mode, { inviteCode = null, onDone = null } = {}) {
  const register = mode === "register";
  const error = h("p", { class: "form-error", role: "alert" });
  const username = h("input", { name: "username", autocomplete: "username", required: true, minLength: 2, maxLength: 32, autofocus: true });
  const password = h("input", { name: "password", type: "password", autocomplete: register ? "new-password" : "current-password", required: true });
  const displayName = h("input", { name: "display_name", autocomplete: "nickname", maxLength: 32 });
  const submit = h("button", { class: "button wide", type: "submit" }, register ? "Create account" : "Log in");
  const form = h("form", { class: "auth-form", "aria-label": register ? "Create an account" : "Log in" },
    h("h1", {}, register ? "Create an account" : "Welcome back!"),
    h("p", { class: "muted" }, register ? "Join your community on this server." : "We're so excited to see you again!"),
    h("label", { class: "field" }, h("span", {}, "Username"), username),
    register ? h("label", { class: "field" }, h("span", {}, "Display name (optional)"), displayName) : null,
    h("label", { class: "field" }, h("span", {}, "Password"), password),
    error, submit,
    register ? null : h("p", { class: "muted" }, h("a", { href: "/reset-password", "data-testid": "forgot-password", onclick: (ev) => {
      ev.preventDefault();
      import("./reset_password.js").then((m) => m.renderForgotPassword(root, ctx));
    } }, "Forgot your password?")),
    h("p", { class: "muted" }, register ? "Already have an account? " : "Need an account? ",
      h("a", { href: register ? "/login" : "/register", onclick: (ev) => { ev.preventDefault(); onDone ? renderAuth(root, ctx, register ? "login" : "register", { inviteCode, onDone }) : ctx.navigate(register ? "/login" + location.search : "/register" + location.search); } },
        register ? "Log in" : "Register")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const body = { username: username.value.trim(), password: password.value, device_name: "Drocsid web" };
      if (register && displayName.value.trim()) body.display_name = displayName.value.trim();
      if (register && inviteCode) body.invite_code = inviteCode;
      const answer = await Api.anonymous("POST", register ? "/auth/register" : "/auth/login", body);
      ctx.signedIn(withExpiry(answer));
      if (onDone) onDone(answer);
      else ctx.navigate(new URLSearchParams(location.search).get("next") || "/channels/@me");
    } catch (err) {
      error.textContent = err.message || "Something went wrong";
      submit.disabled = false;
    }
  });
  replace(root, h("main", { class: "auth-page" }, h("div", { class: "auth-card" }, h("div", { class: "brand" }, h("img", { src: "/icons/icon.svg", alt: "", width: 48, height: 48 }), h("span", {}, "Drocsid")), form)));
  username.focus();
}

// Password reset and email verification pages (docs/email.md):
// /forgot-password (asked from the login page), /reset-password?token=…, /verify-email?token=….

import { Api } from "../api.js";
import { h, replace } from "../dom.js";

function page(root, ...content) {
  replace(root, h("main", { class: "auth-page" }, h("div", { class: "auth-card" },
    h("div", { class: "brand" }, h("img", { src: "/icons/icon.svg", alt: "", width: 48, height: 48 }), h("span", {}, "Drocsid")),
    ...content)));
}

function link(ctx, path, text) {
  return h("a", { href: path, onclick: (ev) => { ev.preventDefault(); ctx.navigate(path); } }, text);
}

// The token is in the address bar only until the page has read it: it should not linger
// in the history or be shown to someone looking over the shoulder.
function askAgain(root, ctx, text) {
  return h("a", { href: "/forgot-password", onclick: (ev) => { ev.preventDefault(); renderForgotPassword(root, ctx); } }, text);
}

function forgetToken(path) {
  if (location.search.includes("token=")) history.replaceState(history.state, "", path);
}

export function renderForgotPassword(root, ctx) {
  const error = h("p", { class: "form-error", role: "alert" });
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true, maxLength: 254, autofocus: true });
  const submit = h("button", { class: "button wide", type: "submit" }, "Send a reset link");
  const form = h("form", { class: "auth-form", "aria-label": "Forgot your password?" },
    h("h1", {}, "Forgot your password?"),
    h("p", { class: "muted" }, "Enter the email address of your account. We'll send you a link to choose a new password."),
    h("label", { class: "field" }, h("span", {}, "Email"), email),
    error, submit,
    h("p", { class: "muted" }, link(ctx, "/login", "Back to log in")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      await Api.anonymous("POST", "/auth/forgot-password", { email: email.value.trim() });
      // The server answers the same whether or not the address has an account; so do we.
      page(root, h("h1", {}, "Check your email"),
        h("p", { class: "muted" }, "If an account has this address, a link is on its way. It works once, for a limited time."),
        h("p", { class: "muted" }, link(ctx, "/login", "Back to log in")));
    } catch (err) {
      error.textContent = err.status === 429 ? "Too many requests. Please wait a while and try again." : (err.message || "Something went wrong");
      submit.disabled = false;
    }
  });
  page(root, form);
  email.focus();
}

export function renderResetPassword(root, ctx, token) {
  forgetToken("/reset-password");
  if (!token) {
    page(root, h("h1", {}, "This link is incomplete"),
      h("p", { class: "muted" }, "Open the link from the email again, or ", askAgain(root, ctx, "ask for a new one"), "."));
    return;
  }
  const error = h("p", { class: "form-error", role: "alert" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minLength: 8, autofocus: true });
  const again = h("input", { name: "password_again", type: "password", autocomplete: "new-password", required: true, minLength: 8 });
  const submit = h("button", { class: "button wide", type: "submit" }, "Change password");
  const form = h("form", { class: "auth-form", "aria-label": "Choose a new password" },
    h("h1", {}, "Choose a new password"),
    h("p", { class: "muted" }, "Every device signed in to your account will be logged out."),
    h("label", { class: "field" }, h("span", {}, "New password"), password),
    h("label", { class: "field" }, h("span", {}, "New password again"), again),
    error, submit);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    if (password.value !== again.value) {
      error.textContent = "The passwords do not match.";
      return;
    }
    submit.disabled = true;
    try {
      await Api.anonymous("POST", "/auth/reset-password", { token, password: password.value });
      page(root, h("h1", {}, "Password changed"),
        h("p", { class: "muted" }, "Your password has been changed and every session has been logged out."),
        h("p", {}, link(ctx, "/login", "Log in")));
    } catch (err) {
      if (err.errcode === "M_INVALID_PARAM") {
        page(root, h("h1", {}, "This link has expired"),
          h("p", { class: "muted" }, "Reset links work once, for a limited time. ", askAgain(root, ctx, "Ask for a new one"), "."));
        return;
      }
      error.textContent = err.message || "Something went wrong";
      submit.disabled = false;
    }
  });
  page(root, form);
  password.focus();
}

export async function renderVerifyEmail(root, ctx, token) {
  forgetToken("/verify-email");
  if (!token) {
    page(root, h("h1", {}, "This link is incomplete"), h("p", { class: "muted" }, "Open the link from the email again."));
    return;
  }
  page(root, h("h1", {}, "Confirming your email…"));
  const onward = ctx.api ? link(ctx, "/channels/@me", "Continue to Drocsid") : link(ctx, "/login", "Log in");
  try {
    await Api.anonymous("POST", "/auth/verify-email", { token });
    page(root, h("h1", {}, "Email confirmed"),
      h("p", { class: "muted" }, "You can now reset your password by email if you ever need to."), h("p", {}, onward));
  } catch (err) {
    const message = err.errcode === "M_THREEPID_IN_USE"
      ? "This address has changed since the mail was sent, or another account confirmed it first."
      : "This link has expired or was already used. Set your address again in your settings to get a new one.";
    page(root, h("h1", {}, "Could not confirm this email"), h("p", { class: "muted" }, message), h("p", {}, onward));
  }
}

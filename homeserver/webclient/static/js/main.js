// Boot: restore the session, route between the sign-in pages and the app, start the gateway.

import { Api } from "./api.js";
import { h, replace } from "./dom.js";
import { Gateway } from "./gateway.js";
import { loadSession, saveSession } from "./session.js";
import { Store } from "./store.js";
import { VoiceClient } from "./voice.js";
import { applyTheme } from "./theme.js";
import { renderAuth } from "./views/auth.js";
import { renderInvite } from "./views/invite.js";
import { renderResetPassword, renderVerifyEmail } from "./views/reset_password.js";
import { Shell } from "./views/shell.js";

const root = document.getElementById("app");
const ctx = { api: null, store: null, gateway: null, shell: null, navigate };
// Exposed for the browser tests and for debugging from the console.
window.drocsid = ctx;

applyTheme();

function navigate(path, { replace: replaceState = false } = {}) {
  if (location.pathname + location.search !== path) {
    history[replaceState ? "replaceState" : "pushState"]({}, "", path);
  }
  route();
}

window.addEventListener("popstate", () => route());
navigator.serviceWorker?.addEventListener("message", (ev) => {
  if (ev.data?.type === "navigate") navigate(ev.data.url);
});

export function signedIn(session) {
  saveSession(session);
  startSession(session);
}

function startSession(session) {
  stopSession();
  ctx.api = new Api(session, { onSessionEnded: () => { stopSession(); navigate("/login", { replace: true }); } });
  ctx.store = new Store(ctx.api);
  ctx.store.me = session.user;
  ctx.gateway = new Gateway(ctx.api);
  ctx.voice = new VoiceClient(ctx);
  ctx.gateway.addEventListener("dispatch", (ev) => ctx.store.apply(ev.detail.t, ev.detail.d));
  ctx.gateway.addEventListener("fatal", () => ctx.api.end());
  ctx.gateway.start();
}

function stopSession() {
  ctx.voice?.leave().catch(() => {});
  ctx.gateway?.stop();
  ctx.shell?.destroy();
  ctx.shell = null;
  ctx.gateway = ctx.store = ctx.api = ctx.voice = null;
}

export async function signOut() {
  try {
    await ctx.api?.post("/auth/logout");
  } catch {
    // Signed out locally whatever the server says.
  }
  saveSession(null);
  stopSession();
  navigate("/login");
}
ctx.signOut = signOut;
ctx.signedIn = signedIn;

function route() {
  const path = location.pathname;
  root.removeAttribute("aria-busy");
  // Links from mail: they work signed in or not.
  const token = new URLSearchParams(location.search).get("token");
  if (path === "/reset-password" || path === "/verify-email") {
    ctx.shell?.destroy();
    ctx.shell = null;
    (path === "/reset-password" ? renderResetPassword : renderVerifyEmail)(root, ctx, token || "");
    return;
  }
  if (!ctx.api) {
    const session = loadSession();
    if (session) startSession(session);
  }
  const invite = path.match(/^\/invite\/([^/]+)$/);
  if (invite) {
    ctx.shell?.destroy();
    ctx.shell = null;
    renderInvite(root, ctx, decodeURIComponent(invite[1]));
    return;
  }
  if (!ctx.api) {
    ctx.shell = null;
    const mode = path === "/register" ? "register" : "login";
    if (path !== "/login" && path !== "/register") {
      history.replaceState({}, "", "/login" + (path !== "/" ? "?next=" + encodeURIComponent(path) : ""));
    }
    renderAuth(root, ctx, mode);
    return;
  }
  if (path === "/" || path === "/login" || path === "/register" || !path.startsWith("/channels/")) {
    history.replaceState({}, "", "/channels/@me");
  }
  if (!ctx.shell) {
    replace(root, h("p", { class: "boot" }, "Connecting…"));
    ctx.shell = new Shell(root, ctx);
  }
  ctx.shell.show(location.pathname);
}

route();

if ("serviceWorker" in navigator && location.protocol !== "file:") {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
}

// Spoilers reveal on click or Enter/Space, wherever they are.
document.addEventListener("click", (ev) => ev.target.closest?.(".spoiler")?.classList.toggle("revealed"));
document.addEventListener("keydown", (ev) => {
  if ((ev.key === "Enter" || ev.key === " ") && ev.target.classList?.contains("spoiler")) {
    ev.preventDefault();
    ev.target.classList.toggle("revealed");
  }
});

// /invite/<code>: the server's preview, then join (signing in or registering first if needed).

import { Api, enc } from "../api.js";
import { h, replace } from "../dom.js";
import { renderAuth } from "./auth.js";

export async function renderInvite(root, ctx, code) {
  replace(root, h("main", { class: "auth-page" }, h("div", { class: "auth-card" }, h("p", {}, "Loading invite…"))));
  let preview;
  try {
    preview = await Api.anonymous("GET", `/invites/${enc(code)}`);
  } catch (err) {
    replace(root, h("main", { class: "auth-page" }, h("div", { class: "auth-card", role: "alert" },
      h("h1", {}, "Invite invalid"), h("p", {}, err.status === 404 ? "This invite may be expired, or you might not have permission to join." : err.message),
      h("button", { class: "button", onclick: () => ctx.navigate("/channels/@me") }, "Continue to Drocsid"))));
    return;
  }
  const server = preview.server;
  const accept = async (button) => {
    button.disabled = true;
    try {
      const joined = await ctx.api.post(`/invites/${enc(code)}`);
      // Known at once: the gateway's SERVER_CREATE may come after the page opens.
      ctx.store.addServer(joined);
      ctx.navigate(`/channels/${enc(joined.id)}/${enc(firstText(joined))}`);
    } catch (err) {
      button.disabled = false;
      error.textContent = err.message;
    }
  };
  const error = h("p", { class: "form-error", role: "alert" });
  const card = h("div", { class: "auth-card invite-card" },
    h("p", { class: "muted" }, "You've been invited to join"),
    h("h1", {}, server.name),
    server.description ? h("p", {}, server.description) : null,
    h("p", { class: "muted" }, `${server.member_count} member${server.member_count === 1 ? "" : "s"}`),
    error);
  if (ctx.api) {
    const button = h("button", { class: "button wide" }, "Accept invite");
    button.addEventListener("click", () => accept(button));
    card.append(button);
    replace(root, h("main", { class: "auth-page" }, card));
    button.focus();
    return;
  }
  // Not signed in: register with the code (which also joins), or log in and then accept.
  const holder = h("div");
  card.append(holder);
  replace(root, h("main", { class: "auth-page" }, card));
  renderAuth(holder, ctx, "register", {
    inviteCode: code,
    onDone: async () => {
      try {
        const joined = await ctx.api.post(`/invites/${enc(code)}`);
        ctx.navigate(`/channels/${enc(joined.id)}/${enc(firstText(joined))}`);
      } catch {
        ctx.navigate("/channels/@me");
      }
    },
  });
}

function firstText(server) {
  return (server.channels || []).find((c) => c.type === "text")?.id || "";
}

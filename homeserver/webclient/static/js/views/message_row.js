// One message row: author header (unless grouped), reply preview, content with mention
// pills and spoilers, attachments, reactions, thread summary and the hover toolbar.

import { icon } from "../icons.js";
import { colourOf, h, initials } from "../dom.js";
import { sanitizedFragment } from "../sanitize.js";
import { calendarTime, fullTime, shortTime } from "../time.js";

// A role <@&id>, a user ID (the server's mention syntax), @everyone / @here, ||spoiler||.
const MENTION = /<@&([^>\s]+)>|(?<![\w@])(@[a-z0-9._=\/+-]+:[A-Za-z0-9.-]+(?::\d{1,5})?)|@(everyone|here)\b|\|\|(.+?)\|\|/g;

const GIF_LINK = /^https:\/\/(media\d?|i)\.giphy\.com\/[^\s]+$/;

function isGifLink(content) {
  return typeof content === "string" && GIF_LINK.test(content.trim());
}

export function renderRow(pane, item) {
  if (item.kind === "start") return renderStart(pane);
  if (item.kind === "divider") return h("div", { class: "new-divider", role: "separator", "aria-label": "New messages" }, h("span", {}, "New"));
  return renderMessage(pane, item);
}

function renderStart(pane) {
  return h("div", { class: "channel-start", "data-testid": "channel-start" },
    h("div", { class: "channel-start-icon", "aria-hidden": "true" }, icon(pane.threadId ? "thread" : "hash", 40)),
    h("h2", {}, pane.threadId ? "The start of this thread" : `Welcome to ${pane.title()}!`),
    h("p", { class: "muted" }, pane.threadId ? "" : `This is the start of ${pane.title()}.`));
}

export function messageSignature(pane, item) {
  if (item.kind !== "message") return item.kind;
  const m = item.message;
  const thread = pane.threadFor(m.id);
  return [m.id, m.edited_at, m.content, m.pending ? 1 : 0, m.failed ? 1 : 0, m.pinned ? 1 : 0, item.grouped ? 1 : 0,
    JSON.stringify(m.reactions || []), thread ? thread.message_count : "", pane.editingId === m.id ? "e" : "",
    pane.metaVersion, pane.highlightId === m.id ? "h" : ""].join("|");
}

function renderMessage(pane, item) {
  const { ctx } = pane;
  const m = item.message;
  const author = m.author || {};
  const name = pane.displayName(author.id) || author.display_name || author.id;
  const mine = author.id === ctx.store.me?.id;
  const classes = ["message"];
  if (item.grouped) classes.push("grouped");
  if (m.pending) classes.push("pending");
  if (m.failed) classes.push("failed");
  if (pane.mentionsMe(m)) classes.push("mentioned");
  if (pane.highlightId === m.id) classes.push("highlight");
  if (m.reply_to) classes.push("has-reply");
  const row = h("div", {
    class: classes.join(" "), "data-testid": "message", "data-message-id": m.id, role: "article", tabIndex: -1,
    "aria-label": `${name}, ${calendarTime(m.created_at)}`,
  });
  if (m.reply_to) row.append(replyPreview(pane, m.reply_to));
  const body = h("div", { class: "message-body" });
  if (item.grouped) {
    row.append(h("time", { class: "message-hover-time", dateTime: m.created_at, title: fullTime(m.created_at) }, shortTime(m.created_at)));
  } else {
    const colour = pane.roleColour(author.id);
    row.append(avatar(ctx, name, author.avatar_url, author.id));
    body.append(h("div", { class: "message-header" },
      h("span", { class: "message-author", style: colour ? { color: colour } : null }, name),
      author.bot ? h("span", { class: "bot-tag" }, "BOT") : null,
      h("time", { class: "message-time", dateTime: m.created_at, title: fullTime(m.created_at) }, calendarTime(m.created_at))));
  }
  if (pane.editingId === m.id) {
    body.append(editor(pane, m));
  } else if (isGifLink(m.content)) {
    // A message that is only a GIF link shows the GIF (the CSP allows the provider's media hosts).
    body.append(h("div", { class: "message-content gif" }, h("img", { class: "gif-embed", "data-testid": "gif-embed", src: m.content.trim(), alt: "GIF", loading: "lazy" })));
  } else if (m.content || m.html) {
    const content = h("div", { class: "message-content" });
    content.append(decorate(pane, m.html ? sanitizedFragment(m.html) : document.createTextNode(m.content)));
    if (m.edited_at) content.append(h("span", { class: "edited", title: fullTime(m.edited_at) }, " (edited)"));
    body.append(content);
  }
  for (const file of m.attachments || []) body.append(attachment(pane, file));
  if (m.failed) body.append(h("div", { class: "form-error" }, "Not sent. ", h("button", { class: "link-button", onclick: () => pane.retry(m) }, "Retry")));
  if ((m.reactions || []).length) body.append(reactions(pane, m));
  const thread = pane.threadFor(m.id);
  if (thread && !pane.threadId) {
    body.append(h("button", { class: "thread-summary", "data-testid": "thread-summary", onclick: () => pane.openThread(thread) },
      icon("thread", 16), h("strong", {}, thread.name), ` · ${thread.message_count} ${thread.message_count === 1 ? "reply" : "replies"}`));
  }
  row.append(body);
  if (!m.pending) row.append(toolbar(pane, m, mine));
  return row;
}

export function avatar(ctx, name, url, key) {
  const el = h("div", { class: "avatar", "aria-hidden": "true", style: { background: colourOf(key || name) } }, initials(name));
  if (url) {
    ctx.api.mediaUrl(url).then((src) => {
      el.textContent = "";
      el.append(h("img", { src, alt: "" }));
    }).catch(() => {});
  }
  return el;
}

function replyPreview(pane, id) {
  const target = pane.findMessage(id);
  const who = target ? pane.displayName(target.author?.id) : null;
  const text = target ? (target.content || (target.attachments?.length ? "Attachment" : "")) : "Original message was deleted or not loaded";
  return h("button", { class: "reply-preview", type: "button", "aria-label": `Reply to ${who || "a message"}: ${text.slice(0, 80)}`, onclick: () => pane.jumpTo(id) },
    h("span", { class: "reply-spine", "aria-hidden": "true" }),
    who ? h("strong", {}, who) : null, h("span", { class: "reply-text" }, text.slice(0, 120)));
}

// Mentions become pills with names, ||text|| becomes a spoiler, in text nodes only.
function decorate(pane, fragment) {
  const walker = document.createTreeWalker(fragment, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) nodes.push(walker.currentNode);
  for (const node of nodes) {
    if (node.parentElement?.closest?.("code, pre")) continue;
    const text = node.textContent;
    MENTION.lastIndex = 0;
    if (!MENTION.test(text)) continue;
    MENTION.lastIndex = 0;
    const out = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(MENTION)) {
      out.append(text.slice(last, match.index));
      last = match.index + match[0].length;
      if (match[4] !== undefined) {
        const spoiler = h("span", { class: "spoiler", tabIndex: 0, role: "button", "aria-label": "Spoiler: press to reveal" }, match[4]);
        out.append(spoiler);
      } else if (match[3]) {
        out.append(h("span", { class: "mention" }, "@" + match[3]));
      } else if (match[1]) {
        const role = pane.role(match[1]);
        out.append(h("span", { class: "mention role", style: role?.color ? { color: "#" + Number(role.color).toString(16).padStart(6, "0") } : null }, "@" + (role?.name || "unknown-role")));
      } else {
        out.append(h("span", { class: "mention", title: match[2] }, "@" + (pane.displayName(match[2]) || match[2])));
      }
    }
    out.append(text.slice(last));
    node.replaceWith(out);
  }
  return fragment;
}

function attachment(pane, file) {
  const isImage = (file.content_type || "").startsWith("image/");
  if (isImage) {
    const w = file.width || 400, hgt = file.height || 300;
    const scale = Math.min(1, 400 / w, 300 / hgt);
    const img = h("img", { class: "attachment-image", "data-testid": "attachment-image", alt: file.filename, width: Math.round(w * scale), height: Math.round(hgt * scale) });
    pane.ctx.api.mediaUrl(file.url || file.id).then((src) => { img.src = src; }).catch(() => img.classList.add("broken"));
    return h("a", { class: "attachment", href: "#", "aria-label": `Open image ${file.filename}`, onclick: (ev) => { ev.preventDefault(); if (img.src) window.open(img.src, "_blank", "noopener"); } }, img);
  }
  const link = h("button", { class: "attachment-file", type: "button", onclick: async () => {
    const src = await pane.ctx.api.mediaUrl(file.url || file.id);
    const a = h("a", { href: src, download: file.filename });
    document.body.append(a);
    a.click();
    a.remove();
  } }, h("span", { "aria-hidden": "true" }, "📄 "), file.filename, h("span", { class: "muted" }, ` ${formatSize(file.size)}`));
  return link;
}

function formatSize(bytes) {
  if (!bytes && bytes !== 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function reactions(pane, m) {
  return h("div", { class: "reactions", role: "group", "aria-label": "Reactions" },
    (m.reactions || []).map((r) => h("button", {
      type: "button", class: "reaction" + (r.me ? " me" : ""), "data-testid": "reaction", "data-emoji": r.key,
      "aria-pressed": r.me ? "true" : "false", "aria-label": `${r.key} ${r.count} reaction${r.count === 1 ? "" : "s"}${r.me ? ", including yours" : ""}`,
      onclick: () => pane.toggleReaction(m, r.key, !r.me),
    }, h("span", { class: "reaction-emoji" }, r.key), h("span", { class: "reaction-count" }, String(r.count)))),
    h("button", { type: "button", class: "reaction add", "aria-label": "Add reaction", onclick: (ev) => pane.pickReaction(m, ev.currentTarget) }, icon("smile", 16)));
}

function toolbar(pane, m, mine) {
  const may = (key) => pane.may(key);
  const button = (label, icon, fn) => h("button", { type: "button", class: "icon-button", "aria-label": label, title: label, onclick: (ev) => fn(ev.currentTarget) }, icon);
  return h("div", { class: "message-actions", role: "toolbar", "aria-label": "Message actions" },
    may("ADD_REACTIONS") ? button("Add reaction", icon("smile"), (el) => pane.pickReaction(m, el)) : null,
    pane.canSend() ? button("Reply", icon("reply"), () => pane.startReply(m)) : null,
    !pane.threadId && !m.thread_id && !pane.threadFor(m.id) && pane.isServerChannel() && pane.canSend() ? button("Create thread", icon("thread"), () => pane.createThread(m)) : null,
    mine && (m.content !== undefined) ? button("Edit", icon("edit"), () => pane.startEdit(m)) : null,
    pane.isServerChannel() && may("MANAGE_MESSAGES") ? button(m.pinned ? "Unpin" : "Pin", icon("pin"), () => pane.togglePin(m)) : null,
    mine || may("MANAGE_MESSAGES") ? button("Delete", icon("trash"), () => pane.deleteMessage(m)) : null);
}

function editor(pane, m) {
  const input = h("textarea", { class: "edit-input", "aria-label": "Edit message", rows: 1 }, m.content || "");
  const save = () => pane.saveEdit(m, input.value);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      save();
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      pane.cancelEdit();
    }
  });
  queueMicrotask(() => {
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  });
  return h("div", { class: "edit-box" }, input,
    h("div", { class: "muted small" }, "escape to ", h("button", { type: "button", class: "link-button", onclick: () => pane.cancelEdit() }, "cancel"),
      " • enter to ", h("button", { type: "button", class: "link-button", onclick: save }, "save")));
}

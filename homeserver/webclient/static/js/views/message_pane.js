// A channel's (or a thread's) messages and composer: the virtualized list, loading older
// pages near the top, the unread divider and "jump" bars, typing, read acknowledgement,
// and every action on a message.

import { enc } from "../api.js";
import { debounce, h, replace } from "../dom.js";
import { resolveMentions } from "../mentions.js";
import { mentionsMe } from "../store.js";
import { GROUP_WINDOW_MS } from "../time.js";
import { Composer } from "./composer.js";
import { openEmojiPicker } from "./emoji_picker.js";
import { messageSignature, renderRow } from "./message_row.js";
import { confirmModal, promptModal, toast } from "./modal.js";
import { VirtualList } from "./virtual_list.js";

let nonceCounter = 0;

export class MessagePane {
  constructor(ctx, { channelId, threadId = null, serverId = null, title, onOpenThread }) {
    this.ctx = ctx;
    this.store = ctx.store;
    this.channelId = channelId;
    this.threadId = threadId;
    this.serverId = serverId;
    this._title = title;
    this.onOpenThread = onOpenThread;
    this.key = threadId || channelId;
    this.editingId = null;
    this.highlightId = null;
    this.metaVersion = 0;
    this.unsubscribe = [];
    const rs = this.store.unread(channelId);
    // Where the user stopped reading when they opened the channel: the "New" divider.
    this.lastReadAtOpen = !threadId && rs.unread_count > 0 ? rs.last_read_message_id : null;
    this.unreadAtOpen = threadId ? 0 : rs.unread_count;

    this.scroller = h("div", { class: "message-list", "data-testid": threadId ? "thread-message-list" : "message-list", role: "log",
      "aria-label": threadId ? "Thread messages" : `Messages in ${title}`, "aria-live": "polite", tabIndex: 0 });
    this.jumpPresent = h("button", { type: "button", class: "jump-bar bottom", hidden: true, onclick: () => this.list.scrollToBottom() }, "You're viewing older messages · Jump to present");
    this.jumpUnread = h("button", { type: "button", class: "jump-bar top", hidden: true, "data-testid": "jump-unread", onclick: () => this.jumpToUnread() });
    this.typingLine = h("div", { class: "typing", "aria-live": "polite" });
    this.composer = new Composer(this, { testid: threadId ? "thread-composer" : "composer", label: threadId ? "Reply in thread" : `Message ${title}` });
    this.dropHint = h("div", { class: "drop-hint", hidden: true }, `Drop files to upload to ${title}`);
    this.el = h("div", { class: "message-pane" }, this.jumpUnread, this.scroller, this.dropHint,
      h("div", { class: "composer-wrap" }, this.jumpPresent, this.composer.el, this.typingLine));
    this.list = new VirtualList(this.scroller, {
      key: (item) => item.key,
      signature: (item) => messageSignature(this, item),
      kind: (item) => item.kind === "message" ? (item.grouped ? "grouped" : item.message.attachments?.length ? "media" : item.message.reply_to ? "reply" : "header") : item.kind,
      estimate: (item) => item.kind === "start" ? 120 : item.kind === "divider" ? 24 : item.grouped ? 24 : 50 + (item.message.attachments?.length ? 200 : 0),
      render: (item) => renderRow(this, item),
      onScroll: ({ atTop, atBottom }) => {
        if (atTop) this.loadOlder();
        this.jumpPresent.hidden = atBottom;
        if (atBottom) this.ack();
      },
    });
    this._wireDrop();
    this._subscribe();
    this.refresh();
    this.updatePermissions();
    this.loadOlder();
    if (!threadId && this.isServerChannel()) this.loadThreads();
    if (this.unreadAtOpen > 0) {
      this.jumpUnread.hidden = false;
      this.jumpUnread.textContent = `${this.unreadAtOpen} new message${this.unreadAtOpen === 1 ? "" : "s"} · Jump to unread`;
    }
  }

  destroy() {
    this.destroyed = true;
    this.list.destroy();
    for (const off of this.unsubscribe) off();
  }

  title() { return this._title; }
  isServerChannel() { return !!this.serverId; }
  displayName(userId) { return this.store.displayName(userId, this.serverId); }
  roleColour(userId) { return this.serverId ? this.store.roleColour(this.serverId, userId) : null; }
  role(id) { return this.store.server(this.serverId)?.roles.find((r) => r.id === id); }
  mentionsMe(m) { return mentionsMe(this.store, m); }
  may(key) { return !this.serverId || this.store.can(this.serverId, key, this.channelId); }
  canSend() { return this.may("SEND_MESSAGES"); }
  findMessage(id) { return this.store.findMessage(this.channelId, id); }

  // Who "@" can name here: the server's members (or the DM's people), and @everyone /
  // @here where the user may ping them.
  mentionCandidates() {
    const me = this.store.me?.id;
    let people;
    if (this.serverId) {
      if (!this.store.members.has(this.serverId)) this.store.loadMembers(this.serverId).catch(() => {});
      people = [...(this.store.members.get(this.serverId)?.values() || [])].filter((m) => !m.webhook).map((m) => ({ id: m.user_id, display_name: this.displayName(m.user_id) }));
    } else {
      people = (this.store.dms.get(this.channelId)?.recipients || []).map((r) => ({ id: r.id, display_name: r.display_name }));
    }
    const out = people.filter((p) => p.id !== me).map((p) => ({ ...p, username: p.id.slice(1).split(":")[0] }));
    if (this.serverId && this.may("MENTION_EVERYONE")) {
      out.push({ id: null, username: "everyone", display_name: "@everyone", hint: "everyone in this channel" },
        { id: null, username: "here", display_name: "@here", hint: "everyone online here" });
    }
    return out;
  }
  threadFor(messageId) {
    return this.threadId ? null : (this.store.threadLists.get(this.channelId) || []).find((t) => t.id === messageId) || null;
  }

  _subscribe() {
    const on = (topic, fn) => this.unsubscribe.push(this.store.on(topic, fn));
    on("messages:" + this.key, () => this.refresh());
    on("typing:" + this.channelId, () => this.renderTyping());
    const meta = () => { this.metaVersion += 1; this.refresh(); };
    if (this.serverId) {
      on("members:" + this.serverId, meta);
      on("roles:" + this.serverId, meta);
      on("permissions:" + this.serverId, () => { this.updatePermissions(); meta(); });
      on("threads:" + this.channelId, meta);
      on("threads-unknown:" + this.channelId, () => this.loadThreads());
    }
    on("ready", () => {
      // After a fresh IDENTIFY the store dropped what it had: load the latest page again.
      this.loadOlder();
    });
    const visible = () => { if (document.visibilityState === "visible") this.ack(); };
    document.addEventListener("visibilitychange", visible);
    this.unsubscribe.push(() => document.removeEventListener("visibilitychange", visible));
  }

  updatePermissions() {
    const send = this.canSend();
    this.composer.setEnabled(send, "You do not have permission to send messages in this channel.");
    this.composer.attachButton.hidden = !this.may("ATTACH_FILES");
  }

  items() {
    const tl = this.store.timeline(this.channelId, this.threadId);
    const out = [];
    if (tl.loaded && !tl.hasMore) out.push({ kind: "start", key: "start" });
    let previous = null;
    let dividerPlaced = !this.lastReadAtOpen;
    for (const m of tl.messages) {
      const gap = previous ? new Date(m.created_at) - new Date(previous.created_at) : Infinity;
      let grouped = !!previous && previous.author?.id === m.author?.id && gap <= GROUP_WINDOW_MS && gap >= 0 && !m.reply_to;
      if (!dividerPlaced && previous && previous.id === this.lastReadAtOpen && m.author?.id !== this.store.me?.id) {
        out.push({ kind: "divider", key: "divider" });
        dividerPlaced = true;
        grouped = false;
      }
      out.push({ kind: "message", key: m.id, message: m, grouped });
      previous = m;
    }
    return out;
  }

  refresh() {
    this.list.setItems(this.items());
    if (this.list.stickToBottom) this.ack();
  }

  async loadOlder() {
    const tl = this.store.timeline(this.channelId, this.threadId);
    if (tl.loading || (tl.loaded && !tl.hasMore && !tl.stale)) return;
    try {
      await this.store.loadOlder(this.channelId, this.threadId);
    } catch (err) {
      toast(`Could not load messages: ${err.message}`, "error");
    }
  }

  // --- reading ------------------------------------------------------------------------------

  ack() {
    if (!this.destroyed) this._ackSoon();
  }

  _ackSoon = debounce(() => {
    if (this.destroyed || this.threadId || document.visibilityState !== "visible" || !this.list.stickToBottom) return;
    const tl = this.store.timeline(this.channelId);
    const last = [...tl.messages].reverse().find((m) => !m.pending);
    if (!last) return;
    const rs = this.store.unread(this.channelId);
    if (rs.last_read_message_id === last.id && !rs.unread_count && !rs.mention_count) return;
    this.store.markRead(this.channelId, last.id);
    this.ctx.api.put(`/channels/${enc(this.channelId)}/ack`, { message_id: last.id }).catch(() => {});
  }, 300);

  async jumpToUnread() {
    this.jumpUnread.hidden = true;
    const target = this.lastReadAtOpen;
    const tl = this.store.timeline(this.channelId);
    // Load older pages until the last read message is here (bounded: 20 pages).
    for (let i = 0; i < 20 && target && !tl.byId.has(target) && tl.hasMore; i++) await this.store.loadOlder(this.channelId);
    this.list.scrollToKey(tl.byId.has(target) ? "divider" : tl.messages[0]?.id, "top");
  }

  async jumpTo(messageId) {
    const tl = this.store.timeline(this.channelId, this.threadId);
    for (let i = 0; i < 20 && !tl.byId.has(messageId) && tl.hasMore; i++) await this.store.loadOlder(this.channelId, this.threadId);
    if (!tl.byId.has(messageId)) {
      toast("That message is not available.");
      return;
    }
    this.highlightId = messageId;
    this.list.scrollToKey(messageId);
    setTimeout(() => {
      this.highlightId = null;
      this.refresh();
    }, 2000);
  }

  renderTyping() {
    const users = this.store.typingIn(this.channelId).map((u) => this.displayName(u));
    if (!users.length) {
      this.typingLine.textContent = "";
      return;
    }
    const text = users.length === 1 ? `${users[0]} is typing…` : users.length <= 3 ? `${users.slice(0, -1).join(", ")} and ${users.at(-1)} are typing…` : "Several people are typing…";
    replace(this.typingLine, h("span", { class: "typing-dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")), text);
  }

  sendTyping() {
    this.ctx.api.post(`/channels/${enc(this.channelId)}/typing`).catch(() => {});
  }

  // --- sending ------------------------------------------------------------------------------

  async send({ content, files, replyTo }) {
    if (content) content = resolveMentions(content, this.mentionCandidates().filter((c) => c.id));
    const tl = this.store.timeline(this.channelId, this.threadId);
    const nonce = `web${Date.now().toString(36)}${(nonceCounter++).toString(36)}`;
    let pending = null;
    if (content && !files.length && tl.loaded) {
      // Shown at once, replaced by the server's copy (same nonce) when it answers.
      pending = { id: "pending:" + nonce, nonce, pending: true, channel_id: this.channelId, thread_id: this.threadId,
        author: { id: this.store.me.id, display_name: this.store.me.display_name }, content, html: null,
        created_at: new Date().toISOString(), reply_to: replyTo?.id || null, reactions: [], attachments: [] };
      tl.upsert(pending);
      this.list.stickToBottom = true;
      this.refresh();
    }
    try {
      const attachments = [];
      for (const file of files) {
        const uploaded = await this.ctx.api.request("POST", `/channels/${enc(this.channelId)}/attachments?filename=${enc(file.name)}`,
          { raw: file, contentType: file.type || "application/octet-stream" });
        attachments.push(uploaded.id);
      }
      const body = { nonce };
      if (content) body.content = content;
      if (attachments.length) body.attachments = attachments;
      if (replyTo) body.reply_to = replyTo.id;
      if (this.threadId) body.thread_id = this.threadId;
      const sent = await this.ctx.api.post(`/channels/${enc(this.channelId)}/messages`, body);
      sent.nonce = nonce;
      if (tl.loaded) tl.upsert(sent);
      this.list.stickToBottom = true;
      this.refresh();
    } catch (err) {
      if (pending) {
        pending.failed = true;
        pending.error = err.message;
        tl.version += 1;
        this.metaVersion += 1;
        this.refresh();
      }
      throw err;
    }
  }

  async retry(m) {
    this.store.timeline(this.channelId, this.threadId).remove(m.id);
    this.refresh();
    await this.send({ content: m.content, files: [], replyTo: m.reply_to ? { id: m.reply_to } : null }).catch((err) => toast(err.message, "error"));
  }

  startReply(m) {
    this.composer.setReply(m);
  }

  // --- editing ------------------------------------------------------------------------------

  editLast() {
    const tl = this.store.timeline(this.channelId, this.threadId);
    const mine = [...tl.messages].reverse().find((m) => m.author?.id === this.store.me.id && !m.pending);
    if (!mine) return false;
    this.startEdit(mine);
    return true;
  }

  startEdit(m) {
    this.editingId = m.id;
    this.refresh();
  }

  cancelEdit() {
    this.editingId = null;
    this.refresh();
    this.composer.focus();
  }

  async saveEdit(m, content) {
    const text = content.trim();
    if (!text) {
      this.editingId = null;
      this.refresh();
      return this.deleteMessage(m);
    }
    try {
      if (text !== m.content) {
        const edited = await this.ctx.api.patch(`/channels/${enc(this.channelId)}/messages/${enc(m.id)}`, { content: text });
        this.store.upsertMessage(edited, "update");
      }
      this.editingId = null;
      this.refresh();
      this.composer.focus();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async deleteMessage(m) {
    if (!(await confirmModal("Delete message", "Are you sure you want to delete this message?", "Delete"))) return;
    try {
      await this.ctx.api.del(`/channels/${enc(this.channelId)}/messages/${enc(m.id)}`);
      this.store.removeMessage(this.channelId, m.id);
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async togglePin(m) {
    try {
      await this.ctx.api.request(m.pinned ? "DELETE" : "PUT", `/channels/${enc(this.channelId)}/pins/${enc(m.id)}`, m.pinned ? {} : { body: {} });
      toast(m.pinned ? "Message unpinned" : "Message pinned");
    } catch (err) {
      toast(err.message, "error");
    }
  }

  // --- reactions ----------------------------------------------------------------------------

  pickReaction(m, anchor) {
    openEmojiPicker(anchor, (emoji) => {
      const existing = (m.reactions || []).find((r) => r.key === emoji);
      if (!existing?.me) this.toggleReaction(m, emoji, true);
    });
  }

  async toggleReaction(m, emoji, add) {
    try {
      const path = `/channels/${enc(this.channelId)}/messages/${enc(m.id)}/reactions/${enc(emoji)}`;
      if (add) await this.ctx.api.put(path);
      else await this.ctx.api.del(path);
    } catch (err) {
      toast(err.message, "error");
    }
  }

  // --- threads ------------------------------------------------------------------------------

  async loadThreads() {
    try {
      const threads = await this.ctx.api.get(`/channels/${enc(this.channelId)}/threads`);
      this.store.threadLists.set(this.channelId, threads);
      this.store.emit("threads:" + this.channelId);
    } catch {
      // No READ_MESSAGE_HISTORY: no threads shown.
    }
  }

  async createThread(m) {
    const answer = await promptModal("Create thread", [{ name: "name", label: "Thread name", required: true, maxLength: 100, value: (m.content || "").slice(0, 40) }], "Create thread");
    if (!answer) return;
    try {
      const thread = await this.ctx.api.post(`/channels/${enc(this.channelId)}/threads`, { name: answer.name, message_id: m.id });
      const list = this.store.threadLists.get(this.channelId) || [];
      this.store.threadLists.set(this.channelId, [thread, ...list.filter((t) => t.id !== thread.id)]);
      this.store.emit("threads:" + this.channelId);
      this.openThread(thread);
    } catch (err) {
      toast(err.message, "error");
    }
  }

  openThread(thread) {
    this.onOpenThread?.(thread);
  }

  // --- drag and drop ------------------------------------------------------------------------

  _wireDrop() {
    let depth = 0;
    const hasFiles = (ev) => [...(ev.dataTransfer?.types || [])].includes("Files");
    this.el.addEventListener("dragenter", (ev) => {
      if (!hasFiles(ev) || !this.may("ATTACH_FILES")) return;
      ev.preventDefault();
      depth += 1;
      this.dropHint.hidden = false;
    });
    this.el.addEventListener("dragover", (ev) => {
      if (hasFiles(ev)) ev.preventDefault();
    });
    this.el.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) this.dropHint.hidden = true;
    });
    this.el.addEventListener("drop", (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      depth = 0;
      this.dropHint.hidden = true;
      if (this.may("ATTACH_FILES")) this.composer.addFiles([...ev.dataTransfer.files]);
    });
  }
}

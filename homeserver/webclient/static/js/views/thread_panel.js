// The thread side panel: the threads of a channel, or one thread (its root message and
// replies) with its own composer.

import { icon } from "../icons.js";
import { h, replace } from "../dom.js";
import { calendarTime } from "../time.js";
import { MessagePane } from "./message_pane.js";

export class ThreadPanel {
  constructor(ctx, { serverId, channelId, onClose }) {
    this.ctx = ctx;
    this.serverId = serverId;
    this.channelId = channelId;
    this.onClose = onClose;
    this.pane = null;
    this.el = h("aside", { class: "thread-panel", "data-testid": "thread-panel", "aria-label": "Threads" });
    this.off = [ctx.store.on("threads:" + channelId, () => { if (!this.pane) this.showList(); })];
  }

  destroy() {
    this.pane?.destroy();
    this.off.forEach((off) => off());
  }

  header(title, back) {
    return h("header", { class: "panel-header" },
      back ? h("button", { type: "button", class: "icon-button", "aria-label": "All threads", onclick: back }, icon("back")) : null,
      h("h2", {}, title),
      h("button", { type: "button", class: "icon-button", "aria-label": "Close threads", onclick: () => this.onClose() }, icon("close")));
  }

  showList() {
    this.pane?.destroy();
    this.pane = null;
    const threads = this.ctx.store.threadLists.get(this.channelId) || [];
    replace(this.el, this.header("Threads"), h("ul", { class: "thread-list", role: "list" }, threads.length ? threads.map((t) => h("li", {},
      h("button", { type: "button", class: "thread-row", "data-testid": "thread-row", onclick: () => this.showThread(t) },
        h("strong", {}, t.name), h("span", { class: "muted small" }, `${t.message_count} ${t.message_count === 1 ? "reply" : "replies"} · ${calendarTime(t.last_activity_at || t.created_at)}`))))
      : h("li", { class: "muted empty" }, "No threads yet. Hover a message and choose “Create thread”.")));
  }

  showThread(thread) {
    this.pane?.destroy();
    this.thread = thread;
    this.pane = new MessagePane(this.ctx, { channelId: this.channelId, threadId: thread.id, serverId: this.serverId, title: thread.name });
    const root = this.ctx.store.findMessage(this.channelId, thread.message_id || thread.id);
    replace(this.el, this.header(thread.name, () => this.showList()),
      root ? h("div", { class: "thread-root" }, h("strong", {}, this.ctx.store.displayName(root.author?.id, this.serverId)), " ", h("span", {}, root.content)) : null,
      this.pane.el);
    this.pane.composer.focus();
  }
}

// The message box: Enter sends, Shift+Enter breaks the line, ↑ on an empty box edits
// one's last message, typing is announced at most every 5 s, files come from the button,
// drag and drop or paste, slash commands substitute text.

import { icon } from "../icons.js";
import { h, replace } from "../dom.js";
import { openEmojiPicker } from "./emoji_picker.js";
import { openGifPicker } from "./gif_picker.js";
import { matchCandidates, mentionQuery } from "../mentions.js";

const TYPING_EVERY_MS = 5_000;
const SLASH = {
  "/shrug": (rest) => `${rest} ¯\\\\_(ツ)_/¯`.trim(),
  "/tableflip": (rest) => `${rest} (╯°□°)╯︵ ┻━┻`.trim(),
  "/unflip": (rest) => `${rest} ┬─┬ノ( º _ ºノ)`.trim(),
  "/lenny": (rest) => `${rest} ( ͡° ͜ʖ ͡°)`.trim(),
  "/disapprove": (rest) => `${rest} ಠ_ಠ`.trim(),
  "/sparkles": (rest) => `✨ ${rest} ✨`,
  "/spoiler": (rest) => `||${rest}||`,
  "/me": (rest) => `*${rest}*`,
};

export function applySlashCommand(text) {
  const match = /^(\/\w+)(?:\s+([\s\S]*))?$/.exec(text);
  if (!match || !SLASH[match[1]]) return text;
  return SLASH[match[1]](match[2] || "");
}

export class Composer {
  // hooks: send({content, files, replyTo}) -> Promise, typing(), editLast(), placeholder
  constructor(pane, { testid = "composer", label }) {
    this.pane = pane;
    this.files = [];
    this.replyTo = null;
    this._lastTyping = 0;
    this.input = h("textarea", { class: "composer-input", "data-testid": testid, rows: 1, "aria-label": label, placeholder: label, maxLength: 4000 });
    this.fileInput = h("input", { type: "file", multiple: true, hidden: true, "data-testid": testid === "composer" ? "file-input" : "thread-file-input", "aria-label": "Upload a file" });
    this.attachButton = h("button", { type: "button", class: "icon-button composer-attach", "aria-label": "Upload a file", title: "Upload a file" }, icon("upload"));
    this.emojiButton = h("button", { type: "button", class: "icon-button", "aria-label": "Choose an emoji", title: "Emoji" }, icon("smile"));
    this.gifButton = h("button", { type: "button", class: "icon-button gif-button", "aria-label": "Send a GIF", title: "GIF", "data-testid": "gif-button" }, "GIF");
    this.replyBar = h("div", { class: "reply-bar", hidden: true });
    this.fileTray = h("div", { class: "file-tray", hidden: true, "aria-label": "Files to send", role: "list" });
    this.error = h("div", { class: "form-error", role: "alert" });
    this.suggestions = h("ul", { class: "mention-suggestions", role: "listbox", id: `mentions-${testid}`, "aria-label": "Members matching", hidden: true });
    this.suggested = [];
    this.suggestedIndex = 0;
    this.el = h("form", { class: "composer", "aria-label": "Send a message" },
      this.suggestions, this.replyBar, this.fileTray,
      h("div", { class: "composer-row" }, this.attachButton, this.fileInput, this.input, this.gifButton, this.emojiButton),
      this.error);
    this._wire();
  }

  _wire() {
    this.attachButton.addEventListener("click", () => this.fileInput.click());
    this.fileInput.addEventListener("change", () => {
      this.addFiles([...this.fileInput.files]);
      this.fileInput.value = "";
    });
    this.emojiButton.addEventListener("click", () => openEmojiPicker(this.emojiButton, (char) => this.insert(char)));
    // A GIF is sent as its link, as Discord does; clients show GIF links as images.
    this.gifButton.addEventListener("click", () => openGifPicker(this.pane.ctx, this.gifButton, (gif) =>
      this.pane.send({ content: gif.url, files: [], replyTo: this.replyTo }).then(() => this.setReply(null))
        .catch((err) => { this.error.textContent = err.message; })));
    this.input.addEventListener("input", () => {
      this._grow();
      this._suggest();
      if (this.input.value.trim() && Date.now() - this._lastTyping > TYPING_EVERY_MS && !this.input.value.startsWith("/")) {
        this._lastTyping = Date.now();
        this.pane.sendTyping();
      }
    });
    this.input.addEventListener("paste", (ev) => {
      const files = [...(ev.clipboardData?.files || [])];
      if (files.length) {
        ev.preventDefault();
        this.addFiles(files);
      }
    });
    this.input.addEventListener("keydown", (ev) => {
      if (this._suggestionKey(ev)) return;
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submit();
      } else if (ev.key === "ArrowUp" && !this.input.value) {
        if (this.pane.editLast()) ev.preventDefault();
      } else if (ev.key === "Escape" && (this.replyTo || this.files.length)) {
        ev.preventDefault();
        ev.stopPropagation();
        this.setReply(null);
      }
    });
    this.el.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
  }

  // --- @mention autocomplete ------------------------------------------------------------------

  _suggest() {
    const found = mentionQuery(this.input.value, this.input.selectionStart);
    this.suggested = found ? matchCandidates(this.pane.mentionCandidates(), found.query) : [];
    this.suggestedAt = found?.start;
    this.suggestedIndex = Math.min(this.suggestedIndex, Math.max(0, this.suggested.length - 1));
    this.suggestions.hidden = !this.suggested.length;
    this.input.setAttribute("aria-expanded", this.suggested.length ? "true" : "false");
    replace(this.suggestions, this.suggested.map((c, i) => h("li", {
      role: "option", id: `${this.suggestions.id}-${i}`, class: "mention-option" + (i === this.suggestedIndex ? " active" : ""),
      "aria-selected": i === this.suggestedIndex ? "true" : "false", onmousedown: (ev) => { ev.preventDefault(); this._complete(c); },
    }, h("strong", {}, c.display_name || c.username), h("span", { class: "muted small" }, c.id ? ` ${c.id}` : ` ${c.hint || ""}`))));
    if (this.suggested.length) this.input.setAttribute("aria-activedescendant", `${this.suggestions.id}-${this.suggestedIndex}`);
    else this.input.removeAttribute("aria-activedescendant");
  }

  _suggestionKey(ev) {
    if (!this.suggested.length) return false;
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const n = this.suggested.length;
      this.suggestedIndex = (this.suggestedIndex + (ev.key === "ArrowDown" ? 1 : n - 1)) % n;
      this._suggest();
      return true;
    }
    if (ev.key === "Enter" || ev.key === "Tab") {
      ev.preventDefault();
      this._complete(this.suggested[this.suggestedIndex]);
      return true;
    }
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      this.suggested = [];
      this.suggestions.hidden = true;
      return true;
    }
    return false;
  }

  _complete(candidate) {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, this.suggestedAt);
    const text = `@${candidate.username} `;
    this.input.value = before + text + this.input.value.slice(caret);
    const at = before.length + text.length;
    this.input.setSelectionRange(at, at);
    this.suggested = [];
    this.suggestions.hidden = true;
    this.input.focus();
  }

  setEnabled(enabled, why) {
    this.input.disabled = !enabled;
    this.attachButton.disabled = !enabled;
    this.input.placeholder = enabled ? this.input.getAttribute("aria-label") : why;
  }

  insert(text) {
    const { selectionStart: a, selectionEnd: b, value } = this.input;
    this.input.value = value.slice(0, a) + text + value.slice(b);
    this.input.setSelectionRange(a + text.length, a + text.length);
    this.input.focus();
    this._grow();
  }

  focus() {
    this.input.focus();
  }

  _grow() {
    this.input.style.height = "auto";
    this.input.style.height = Math.min(this.input.scrollHeight, 240) + "px";
  }

  setReply(message) {
    this.replyTo = message;
    this.replyBar.hidden = !message;
    if (message) {
      replace(this.replyBar, h("span", {}, "Replying to ", h("strong", {}, this.pane.displayName(message.author?.id))),
        h("button", { type: "button", class: "icon-button", "aria-label": "Cancel reply", onclick: () => this.setReply(null) }, icon("close", 16)));
      this.focus();
    }
  }

  addFiles(files) {
    this.files.push(...files.slice(0, 10 - this.files.length));
    this._renderFiles();
    this.focus();
  }

  _renderFiles() {
    this.fileTray.hidden = !this.files.length;
    replace(this.fileTray, this.files.map((file, i) => {
      const preview = file.type.startsWith("image/") ? h("img", { src: URL.createObjectURL(file), alt: "" }) : h("span", { class: "file-icon", "aria-hidden": "true" }, "📄");
      return h("div", { class: "file-chip", role: "listitem" }, preview, h("span", { class: "file-name" }, file.name),
        h("button", { type: "button", class: "icon-button", "aria-label": `Remove ${file.name}`, onclick: () => { this.files.splice(i, 1); this._renderFiles(); } }, icon("close", 14)));
    }));
  }

  async submit() {
    const content = applySlashCommand(this.input.value.trim());
    if (!content && !this.files.length) return;
    const files = this.files;
    const replyTo = this.replyTo;
    this.input.value = "";
    this.files = [];
    this._renderFiles();
    this.setReply(null);
    this._grow();
    this.error.textContent = "";
    try {
      await this.pane.send({ content, files, replyTo });
    } catch (err) {
      this.error.textContent = err.message;
      if (files.length) {
        this.files = files;
        this._renderFiles();
      }
    }
  }
}

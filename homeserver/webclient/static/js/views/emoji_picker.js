// The emoji picker: a searchable grid (arrow keys move, Enter picks, Escape closes),
// recently used first.

import { h, replace } from "../dom.js";
import { CATEGORIES, EMOJI } from "../emoji_data.js";
import { escapeCloses, moveInGrid } from "./grid_keys.js";

const RECENT_KEY = "drocsid.recentEmoji";
const COLUMNS = 8;

function recent() {
  try {
    return JSON.parse(localStorage.getItem(RECENT_KEY) || "[]");
  } catch {
    return [];
  }
}

function remember(char) {
  const list = [char, ...recent().filter((c) => c !== char)].slice(0, 16);
  localStorage.setItem(RECENT_KEY, JSON.stringify(list));
}

// Opens next to `anchor`; calls onPick(char). Returns a function that closes it.
export function openEmojiPicker(anchor, onPick) {
  document.querySelector(".emoji-picker")?.remove();
  const search = h("input", { type: "search", class: "emoji-search", placeholder: "Search emoji", "aria-label": "Search emoji" });
  const grid = h("div", { class: "emoji-grid", role: "grid", "aria-label": "Emoji" });
  const picker = h("div", { class: "emoji-picker", "data-testid": "emoji-picker", role: "dialog", "aria-label": "Emoji picker" }, search, grid);
  let buttons = [];

  const close = () => {
    picker.remove();
    document.removeEventListener("mousedown", outside, true);
    anchor?.focus?.();
  };
  const pick = (char) => {
    remember(char);
    onPick(char);
    close();
  };
  const outside = (ev) => {
    if (!picker.contains(ev.target) && ev.target !== anchor) close();
  };

  const render = () => {
    const query = search.value.trim().toLowerCase().replace(/:/g, "");
    const sections = [];
    if (!query) {
      const recents = recent().map((c) => EMOJI.find((e) => e.char === c) || { char: c, name: c });
      if (recents.length) sections.push(["Recently used", recents]);
      for (const category of CATEGORIES) sections.push([category, EMOJI.filter((e) => e.category === category)]);
    } else {
      sections.push(["Results", EMOJI.filter((e) => e.name.includes(query))]);
    }
    buttons = [];
    replace(grid, sections.map(([title, list]) => h("div", { class: "emoji-section", role: "rowgroup" },
      h("div", { class: "emoji-section-title", role: "presentation" }, title),
      h("div", { class: "emoji-row", role: "row" }, list.map((e) => {
        const b = h("button", { type: "button", class: "emoji-button", role: "gridcell", title: `:${e.name}:`, "aria-label": `:${e.name}:`, tabIndex: -1, onclick: () => pick(e.char) }, e.char);
        buttons.push(b);
        return b;
      })))));
    if (!buttons.length) grid.append(h("p", { class: "muted" }, "No emoji match."));
    if (buttons[0]) buttons[0].tabIndex = 0;
  };

  search.addEventListener("input", render);
  picker.addEventListener("keydown", (ev) => {
    if (escapeCloses(ev, close)) return;
    if (ev.key === "Enter" && document.activeElement === search && buttons[0]) {
      ev.preventDefault();
      buttons[0].click();
      return;
    }
    moveInGrid(ev, { buttons, search, columns: COLUMNS });
  });
  render();
  document.body.append(picker);
  const rect = anchor?.getBoundingClientRect?.() || { top: innerHeight / 2, left: innerWidth / 2, bottom: innerHeight / 2 };
  const top = Math.max(8, Math.min(rect.top - 360, innerHeight - 380));
  picker.style.top = `${top}px`;
  picker.style.left = `${Math.max(8, Math.min(rect.left - 300, innerWidth - 360))}px`;
  document.addEventListener("mousedown", outside, true);
  search.focus();
  return close;
}

// Keyboard for the pickers' grids (emoji, GIF): Escape closes, arrow keys move between
// the buttons (↓ from the search box enters the grid, ↑ from the first row goes back).

export function escapeCloses(ev, close) {
  if (ev.key !== "Escape") return false;
  ev.preventDefault();
  ev.stopPropagation();
  close();
  return true;
}

const MOVES = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: "down", ArrowUp: "up" };

// Returns the index focused, -1 when focus went back to the search box, null when the
// key was not a move here.
export function moveInGrid(ev, { buttons, search, columns }) {
  if (!(ev.key in MOVES) || !buttons.length) return null;
  const inSearch = document.activeElement === search;
  if (inSearch && ev.key !== "ArrowDown") return null;
  ev.preventDefault();
  const index = buttons.indexOf(document.activeElement);
  const step = MOVES[ev.key] === "down" ? columns : MOVES[ev.key] === "up" ? -columns : MOVES[ev.key];
  if (!inSearch && ev.key === "ArrowUp" && index - columns < 0) {
    search.focus();
    return -1;
  }
  const next = inSearch ? 0 : Math.max(0, Math.min(buttons.length - 1, index + step));
  buttons.forEach((b, i) => { b.tabIndex = i === next ? 0 : -1; });
  buttons[next].focus();
  buttons[next].scrollIntoView({ block: "nearest" });
  return next;
}

// The GIF picker: trending when the search box is empty, search results as one types
// (debounced), a grid of previews (arrow keys move, Enter picks, Escape closes), more
// results on scrolling to the end. Everything goes through the server's /api/v1/gifs
// proxy, so the provider's API key never reaches the browser; the images themselves
// come from the provider's media host (allowed by the CSP's img-src).

import { h, replace } from "../dom.js";
import { escapeCloses, moveInGrid } from "./grid_keys.js";

const PAGE = 25;
const MAX_OFFSET = 4999;
const DEBOUNCE_MS = 300;
const COLUMNS = 3;

function ensureStyles() {
  if (!document.querySelector('link[href="/gif.css"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "/gif.css" }));
  }
}

function errorText(err) {
  if (err?.status === 429) {
    const seconds = Math.max(1, Math.ceil((err.body?.retry_after_ms || 1000) / 1000));
    return `Too many GIF searches: try again in ${seconds} s.`;
  }
  if (err?.status === 404) return "GIF search is not available on this server.";
  if (err?.status === 502) return "The GIF service is not answering. Try again later.";
  return err?.message || "GIF search failed.";
}

// Opens next to `anchor`; calls onPick(gif) with {id, title, url, preview_url, width, height}.
// Returns a function that closes it.
export function openGifPicker(ctx, anchor, onPick) {
  ensureStyles();
  document.querySelector(".gif-picker")?.remove();
  const search = h("input", { type: "search", class: "gif-search", placeholder: "Search GIFs", "aria-label": "Search GIFs", maxLength: 100 });
  const heading = h("div", { class: "gif-heading", id: "gif-heading" }, "Trending");
  const grid = h("div", { class: "gif-grid", role: "grid", "aria-labelledby": "gif-heading", "aria-busy": "false" });
  const status = h("p", { class: "gif-status form-error", role: "alert", hidden: true });
  const footer = h("div", { class: "gif-attribution muted" });
  const picker = h("div", { class: "gif-picker", "data-testid": "gif-picker", role: "dialog", "aria-label": "GIF picker" },
    search, heading, status, grid, footer);
  let buttons = [];
  let query = "";
  let offset = 0;
  let exhausted = false;
  let loading = false;
  let generation = 0;  // answers to superseded requests are dropped
  let timer = null;
  let closed = false;

  const close = () => {
    closed = true;
    clearTimeout(timer);
    picker.remove();
    document.removeEventListener("mousedown", outside, true);
    anchor?.focus?.();
  };
  const outside = (ev) => {
    if (!picker.contains(ev.target) && ev.target !== anchor) close();
  };
  const pick = (gif) => {
    onPick(gif);
    close();
  };

  const showError = (text) => {
    status.textContent = text || "";
    status.hidden = !text;
  };

  const button = (gif) => {
    const label = gif.title?.trim() || "GIF";
    const img = h("img", { src: gif.preview_url, alt: "", loading: "lazy", decoding: "async", referrerPolicy: "no-referrer", draggable: false,
      onerror: () => img.classList.add("broken") });
    const b = h("button", { type: "button", class: "gif-button", role: "gridcell", title: label, "aria-label": label, tabIndex: -1, onclick: () => pick(gif) }, img);
    buttons.push(b);
    if (buttons.length === 1) b.tabIndex = 0;
    return b;
  };

  async function load(reset) {
    if (reset) {
      generation += 1;
      offset = 0;
      exhausted = false;
      buttons = [];
      replace(grid);
      grid.scrollTop = 0;
    } else if (loading || exhausted) {
      return;
    }
    const mine = generation;
    loading = true;
    grid.setAttribute("aria-busy", "true");
    const page = `limit=${PAGE}&offset=${offset}`;
    const path = query ? `/gifs/search?q=${encodeURIComponent(query)}&${page}` : `/gifs/trending?${page}`;
    try {
      const answer = await ctx.api.get(path);
      if (closed || mine !== generation) return;
      showError("");
      const results = answer?.results || [];
      offset += results.length;
      exhausted = results.length < PAGE || offset + PAGE > MAX_OFFSET;
      grid.append(...results.map(button));
      if (!buttons.length) grid.append(h("p", { class: "muted gif-empty" }, query ? "No GIFs match." : "No trending GIFs."));
      footer.textContent = answer?.provider === "giphy" ? "Powered by GIPHY" : "";
    } catch (err) {
      if (closed || mine !== generation) return;
      showError(errorText(err));
    } finally {
      if (mine === generation) {
        loading = false;
        grid.setAttribute("aria-busy", "false");
      }
    }
  }

  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const next = search.value.trim().slice(0, 100);
      if (next === query) return;
      query = next;
      heading.textContent = query ? `Results for “${query}”` : "Trending";
      load(true);
    }, DEBOUNCE_MS);
  });
  grid.addEventListener("scroll", () => {
    if (grid.scrollTop + grid.clientHeight >= grid.scrollHeight - 120) load(false);
  });
  picker.addEventListener("keydown", (ev) => {
    if (escapeCloses(ev, close)) return;
    if (ev.key === "Enter" && document.activeElement === search) {
      ev.preventDefault();
      clearTimeout(timer);
      const next = search.value.trim().slice(0, 100);
      if (next !== query) {
        query = next;
        heading.textContent = query ? `Results for “${query}”` : "Trending";
        load(true);
      } else {
        buttons[0]?.focus();
      }
      return;
    }
    const next = moveInGrid(ev, { buttons, search, columns: COLUMNS });
    if (next !== null && next >= buttons.length - COLUMNS) load(false);
  });

  document.body.append(picker);
  const rect = anchor?.getBoundingClientRect?.() || { top: innerHeight / 2, left: innerWidth / 2, bottom: innerHeight / 2 };
  picker.style.top = `${Math.max(8, Math.min(rect.top - 440, innerHeight - 450))}px`;
  picker.style.left = `${Math.max(8, Math.min(rect.left - 380, innerWidth - 430))}px`;
  document.addEventListener("mousedown", outside, true);
  search.focus();
  load(true);
  return close;
}

// A virtualized vertical list with rows of varying height: only the rows near the
// viewport are in the DOM, spacers stand in for the rest. Heights are measured once a
// row is shown (estimated before), the first visible row stays put when rows are added
// above or resize, and a list scrolled to the bottom stays at the bottom.

import { h } from "../dom.js";

const OVERSCAN_PX = 600;

export class VirtualList {
  // options: key(item), render(item) -> element, signature(item) (re-render when it
  // changes), estimate(item) -> px, onScroll({atTop, atBottom})
  constructor(scroller, options) {
    this.scroller = scroller;
    this.o = options;
    this.items = [];
    this.heights = new Map();
    this.averages = new Map(); // kind -> {total, count} of measured heights
    this.rendered = new Map(); // key -> {el, sig}
    this.offsets = [0];
    this.stickToBottom = true;
    this._frame = 0;
    this.top = h("div", { class: "vl-spacer", "aria-hidden": "true" });
    this.rows = h("div", { class: "vl-rows" });
    this.bottom = h("div", { class: "vl-spacer", "aria-hidden": "true" });
    // The filler keeps a short channel's messages at the bottom, as chat apps do; it has
    // no height once the rows overflow.
    this.fill = h("div", { class: "vl-fill", "aria-hidden": "true" });
    scroller.append(this.fill, this.top, this.rows, this.bottom);
    scroller.style.overflowAnchor = "none";
    this._resize = new ResizeObserver(() => this.schedule());
    this._resize.observe(scroller);
    this._onScroll = () => {
      this.stickToBottom = this.distanceFromBottom() < 4;
      this.schedule();
      this.o.onScroll?.({ atTop: scroller.scrollTop < 800, atBottom: this.stickToBottom });
    };
    scroller.addEventListener("scroll", this._onScroll, { passive: true });
  }

  destroy() {
    // Nothing may run after this: a late measurement would act (scroll, acknowledge) for
    // a list no longer on screen.
    this.destroyed = true;
    cancelAnimationFrame(this._frame);
    this._resize.disconnect();
    this._rowObserver?.disconnect();
    this.scroller.removeEventListener("scroll", this._onScroll);
  }

  distanceFromBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight;
  }

  setItems(items) {
    const anchor = this.stickToBottom ? null : this._anchor();
    this.items = items;
    this._layout(anchor);
  }

  scrollToBottom() {
    this.stickToBottom = true;
    this._layout(null);
  }

  scrollToKey(key, align = "center") {
    const index = this.items.findIndex((item) => this.o.key(item) === key);
    if (index < 0) return false;
    this.stickToBottom = false;
    this._offsets();
    const rowHeight = this._height(this.items[index]);
    const target = align === "center" ? this.offsets[index] - (this.scroller.clientHeight - rowHeight) / 2 : this.offsets[index];
    this.scroller.scrollTop = Math.max(0, target);
    this._layout(null, true);
    return true;
  }

  schedule() {
    if (this._frame || this.destroyed) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._layout(this.stickToBottom ? null : this._anchor());
    });
  }

  // A row not measured yet counts as the average of the measured rows of its kind (the
  // caller's estimate until there are some): with thousands of rows, a fixed guess a few
  // pixels off would put the bottom of the list thousands of pixels away from the truth.
  _estimate(item) {
    const kind = this.o.kind ? this.o.kind(item) : "row";
    const seen = this.averages.get(kind);
    return seen && seen.count ? seen.total / seen.count : this.o.estimate(item);
  }

  _measured(item, height) {
    const kind = this.o.kind ? this.o.kind(item) : "row";
    const seen = this.averages.get(kind) || { total: 0, count: 0 };
    const before = this.heights.get(this.o.key(item));
    if (before === undefined) {
      seen.total += height;
      seen.count += 1;
    } else {
      seen.total += height - before;
    }
    this.averages.set(kind, seen);
    this.heights.set(this.o.key(item), height);
  }

  _height(item) {
    return this.heights.get(this.o.key(item)) ?? this._estimate(item);
  }

  _offsets() {
    const offsets = new Array(this.items.length + 1);
    offsets[0] = 0;
    for (let i = 0; i < this.items.length; i++) offsets[i + 1] = offsets[i] + this._height(this.items[i]);
    this.offsets = offsets;
  }

  // The first row whose bottom is below the top of the viewport, and where it sits.
  _anchor() {
    const scrollTop = this.scroller.scrollTop;
    const base = this.top.offsetTop;
    for (const { el, key } of this._renderedInOrder()) {
      const top = el.offsetTop - base;
      if (top + el.offsetHeight > scrollTop) return { key, delta: top - scrollTop };
    }
    return null;
  }

  *_renderedInOrder() {
    for (const el of this.rows.children) yield { el, key: el.dataset.vlKey };
  }

  _indexOf(key) {
    return this.items.findIndex((item) => String(this.o.key(item)) === key);
  }

  _layout(anchor, keepScroll = false) {
    for (let pass = 0; pass < 3; pass++) {
      this._offsets();
      if (anchor && !keepScroll) {
        const index = this._indexOf(anchor.key);
        if (index >= 0) this.scroller.scrollTop = this.offsets[index] - anchor.delta;
      } else if (this.stickToBottom && !keepScroll) {
        this.scroller.scrollTop = this.offsets[this.items.length];
      }
      const changed = this._renderRange();
      if (!changed) break;
    }
    if (this.stickToBottom) this.scroller.scrollTop = this.scroller.scrollHeight;
    else if (this.distanceFromBottom() < 4) {
      // Measuring brought the bottom into view without a scroll event: say so.
      this.stickToBottom = true;
      this.o.onScroll?.({ atTop: this.scroller.scrollTop < 800, atBottom: true });
    }
  }

  // Puts the rows of the visible range in the DOM; returns whether a measured height
  // differed from what the layout assumed.
  _renderRange() {
    const n = this.items.length;
    const viewTop = this.scroller.scrollTop - OVERSCAN_PX;
    const viewBottom = this.scroller.scrollTop + this.scroller.clientHeight + OVERSCAN_PX;
    let start = lowerBound(this.offsets, viewTop) - 1;
    start = Math.max(0, Math.min(start, n - 1));
    let end = start;
    while (end < n && this.offsets[end] < viewBottom) end++;
    const wanted = new Set();
    const elements = [];
    for (let i = start; i < end; i++) {
      const item = this.items[i];
      const key = String(this.o.key(item));
      wanted.add(key);
      const sig = this.o.signature(item);
      let entry = this.rendered.get(key);
      if (!entry || entry.sig !== sig) {
        const el = this.o.render(item);
        el.dataset.vlKey = key;
        if (entry) entry.el.replaceWith(el);
        entry = { el, sig };
        this.rendered.set(key, entry);
      }
      elements.push(entry.el);
    }
    for (const [key, entry] of this.rendered) {
      if (!wanted.has(key)) {
        this._observer(entry.el, false);
        entry.el.remove();
        this.rendered.delete(key);
      }
    }
    // Put the wanted elements in order with as few moves as possible.
    let cursor = this.rows.firstChild;
    for (const el of elements) {
      if (el === cursor) {
        cursor = cursor.nextSibling;
      } else {
        this.rows.insertBefore(el, cursor);
        this._observer(el, true);
      }
    }
    this.top.style.height = (n ? this.offsets[start] : 0) + "px";
    this.bottom.style.height = (n ? this.offsets[n] - this.offsets[end] : 0) + "px";
    let changed = false;
    for (let i = start; i < end; i++) {
      const key = this.o.key(this.items[i]);
      const measured = this.rendered.get(String(key)).el.offsetHeight;
      if (measured && this.heights.get(key) !== measured) {
        if (Math.abs(this._height(this.items[i]) - measured) > 0.5) changed = true;
        this._measured(this.items[i], measured);
      }
    }
    return changed;
  }

  _observer(el, on) {
    if (on) this._rowResize().observe(el);
    else this._rowResize().unobserve(el);
  }

  _rowResize() {
    if (!this._rowObserver) this._rowObserver = new ResizeObserver(() => this.schedule());
    return this._rowObserver;
  }
}

// The first index whose value is greater than x.
function lowerBound(values, x) {
  let lo = 0, hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

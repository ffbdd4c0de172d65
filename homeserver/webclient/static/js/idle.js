// Idle detection: 5 minutes without input, or a hidden tab, makes the user idle; activity
// makes them online again (announced at most every 30 s, at once when coming back).
// A status chosen by hand (dnd, invisible, idle) is never overridden.

const IDLE_AFTER_MS = 5 * 60 * 1000;
const ACTIVE_EVERY_MS = 30 * 1000;

export class IdleWatcher {
  constructor(onChange, { idleAfterMs = IDLE_AFTER_MS } = {}) {
    this.onChange = onChange; // (status: "online" | "idle") => void
    this.idleAfterMs = idleAfterMs;
    this.idle = false;
    this.lastActive = Date.now();
    this.lastAnnounced = 0;
    this._activity = () => this.activity();
    this._visibility = () => (document.visibilityState === "hidden" ? this.goIdle() : this.activity());
    for (const type of ["mousemove", "keydown", "mousedown", "scroll", "touchstart"]) window.addEventListener(type, this._activity, { passive: true, capture: true });
    document.addEventListener("visibilitychange", this._visibility);
    this._timer = setInterval(() => {
      if (!this.idle && Date.now() - this.lastActive >= this.idleAfterMs) this.goIdle();
    }, 10_000);
  }

  stop() {
    clearInterval(this._timer);
    for (const type of ["mousemove", "keydown", "mousedown", "scroll", "touchstart"]) window.removeEventListener(type, this._activity, { capture: true });
    document.removeEventListener("visibilitychange", this._visibility);
  }

  activity() {
    if (document.visibilityState === "hidden") return;
    this.lastActive = Date.now();
    if (this.idle) {
      this.idle = false;
      this.lastAnnounced = Date.now();
      this.onChange("online");
    } else if (Date.now() - this.lastAnnounced > ACTIVE_EVERY_MS) {
      // Still here: the server goes by these reports (idle after 5 minutes without one).
      this.lastAnnounced = Date.now();
      this.onChange("online");
    }
  }

  goIdle() {
    if (this.idle) return;
    this.idle = true;
    this.onChange("idle");
  }
}

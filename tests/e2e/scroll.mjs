// 10,000 messages in one channel: sign in, open the channel, scroll to the very top page by
// page, then wheel back down to the newest message. The list must stay virtualized: the
// number of DOM nodes and of rendered rows stays bounded however much is loaded.
//
// Argument: JSON {base, username, password, serverId, channelId, screenshots, expected}.

import { args, closeAll, consoleErrors, frames, launch, login, newUser, pageErrors, percentile, report, shot, step, waitFor } from "./lib.mjs";

const a = args();
const expected = a.expected ?? 10000;
const LIST = '[data-testid="message-list"]';
const out = { step: "start", expected, samples: [], nudges: 0 };

// DOM size, rendered rows and loaded messages, right now.
async function measure(page) {
  return page.evaluate(({ channelId, LIST }) => {
    const list = document.querySelector(LIST);
    return {
      dom: document.getElementsByTagName("*").length,
      rows: document.querySelectorAll('[data-testid="message"]').length,
      loaded: window.drocsid.store.timeline(channelId).messages.length,
      scrollTop: list ? Math.round(list.scrollTop) : null,
      scrollHeight: list ? list.scrollHeight : null,
      start: !!document.querySelector('[data-testid="channel-start"]'),
    };
  }, { channelId: a.channelId, LIST });
}

function record(sample) {
  out.samples.push(sample);
  out.maxDom = Math.max(out.maxDom ?? 0, sample.dom);
  out.maxRows = Math.max(out.maxRows ?? 0, sample.rows);
}

// Whether a message with exactly this text is rendered and inside the list's viewport.
async function visible(page, text) {
  return page.evaluate(({ text, LIST }) => {
    const list = document.querySelector(LIST).getBoundingClientRect();
    for (const row of document.querySelectorAll('[data-testid="message"]')) {
      const content = row.querySelector(".message-content");
      if (!content || content.textContent.trim() !== text) continue;
      const r = content.getBoundingClientRect();
      return r.height > 0 && r.bottom > list.top && r.top < list.bottom;
    }
    return false;
  }, { text, LIST });
}

const browser = await step("launch", () => launch());
const { page } = await step("new user", () => newUser(browser, a.base, a.username));
const channelPath = `/channels/${encodeURIComponent(a.serverId)}/${encodeURIComponent(a.channelId)}`;

await step("login", () => login(page, a.base, a.username, a.password, channelPath));

await step("first messages", async () => {
  await page.waitForSelector('[data-testid="message"]', { timeout: 30000 });
  await page.waitForSelector(LIST, { timeout: 5000 });
  await waitFor(page, (id) => window.drocsid.store.timeline(id).messages.length > 0, a.channelId);
  await frames(page, 3);
  out.newestVisibleAtOpen = await visible(page, `message ${expected - 1}`);
  const m = await measure(page);
  out.initial = m;
  record({ phase: "open", ...m });
  await shot(page, a.screenshots, "01-open");
});

await step("scroll to the top", async () => {
  const started = Date.now();
  let iterations = 0;
  for (;;) {
    const before = await measure(page);
    if (before.start) break;
    if (++iterations > 1000) throw new Error(`channel start not reached after 1000 scrolls: ${JSON.stringify(before)}`);
    const nudged = await page.evaluate((LIST) => {
      const list = document.querySelector(LIST);
      // Already at 0 would fire no scroll event: step off the top first.
      const wasZero = list.scrollTop === 0;
      if (wasZero) list.scrollTop = 10;
      return wasZero;
    }, LIST);
    if (nudged) {
      out.nudges += 1;
      await frames(page, 1);
    }
    await page.evaluate((LIST) => { document.querySelector(LIST).scrollTop = 0; }, LIST);
    try {
      await waitFor(page, ({ id, prev }) => !!document.querySelector('[data-testid="channel-start"]')
        || window.drocsid.store.timeline(id).messages.length > prev, { id: a.channelId, prev: before.loaded }, 20000);
    } catch (err) {
      throw new Error(`no older messages loaded after scrolling to the top (iteration ${iterations}): `
        + JSON.stringify(await measure(page)));
    }
    await frames(page, 2);
    record({ phase: "up", i: iterations, ...(await measure(page)) });
    if (iterations === 50) await shot(page, a.screenshots, "02-halfway-up");
  }
  out.scrollUpIterations = iterations;
  out.loadAllMs = Date.now() - started;
});

await step("at the top", async () => {
  // Let the last page settle and the list stop moving.
  await page.evaluate((LIST) => { document.querySelector(LIST).scrollTop = 0; }, LIST);
  await frames(page, 5);
  const m = await measure(page);
  record({ phase: "top", ...m });
  out.loaded = m.loaded;
  out.loadedSeeded = await page.evaluate((id) => window.drocsid.store.timeline(id).messages
    .filter((msg) => /^message \d+$/.test(msg.content || "")).length, a.channelId);
  out.loadedInOrder = await page.evaluate((id) => {
    const numbers = window.drocsid.store.timeline(id).messages
      .map((msg) => /^message (\d+)$/.exec(msg.content || "")).filter(Boolean).map((x) => Number(x[1]));
    return numbers.every((n, i) => n === i);
  }, a.channelId);
  out.channelStartVisible = await page.evaluate((LIST) => {
    const start = document.querySelector('[data-testid="channel-start"]');
    const list = document.querySelector(LIST).getBoundingClientRect();
    if (!start) return false;
    const r = start.getBoundingClientRect();
    return r.height > 0 && r.bottom > list.top && r.top < list.bottom;
  }, LIST);
  out.oldestVisible = await visible(page, "message 0");
  await shot(page, a.screenshots, "03-top");
});

await step("wheel back to the bottom", async () => {
  const box = await page.locator(LIST).boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  // Frame deltas while wheeling, measured in the page.
  await page.evaluate(() => {
    window.__frames = [];
    let last = performance.now();
    const tick = (now) => {
      window.__frames.push(now - last);
      last = now;
      if (window.__framesOn) requestAnimationFrame(tick);
    };
    window.__framesOn = true;
    requestAnimationFrame(tick);
  });
  const started = Date.now();
  let steps = 0;
  for (;;) {
    const atBottom = await page.evaluate((LIST) => {
      const s = document.querySelector(LIST);
      return s.scrollHeight - s.scrollTop - s.clientHeight < 4;
    }, LIST);
    if (atBottom) break;
    if (++steps > 5000) throw new Error("bottom not reached after 5000 wheel steps");
    await page.mouse.wheel(0, 2400);
    await frames(page, 1);
    if (steps % 10 === 0) record({ phase: "down", i: steps, ...(await measure(page)) });
    if (steps === 60) await shot(page, a.screenshots, "04-wheeling-down");
  }
  const deltas = await page.evaluate(() => { window.__framesOn = false; return window.__frames.slice(1); });
  out.wheelSteps = steps;
  out.wheelMs = Date.now() - started;
  out.frames = {
    count: deltas.length,
    p50: percentile(deltas, 50), p95: percentile(deltas, 95), p99: percentile(deltas, 99),
    max: deltas.length ? Math.max(...deltas) : null,
    over50ms: deltas.filter((d) => d > 50).length,
  };
  await frames(page, 5);
  const m = await measure(page);
  record({ phase: "bottom", ...m });
  out.newestVisible = await visible(page, `message ${expected - 1}`);
  await shot(page, a.screenshots, "05-bottom");
});

// Keep the report small: every tenth sample plus the last.
const samples = out.samples;
out.sampleCount = samples.length;
out.samples = samples.filter((_, i) => i % 10 === 0 || i === samples.length - 1);
out.pageErrors = pageErrors;
out.consoleErrors = consoleErrors.slice(0, 20);
out.step = "done";
await closeAll();
report(out);

// The GIF picker (js/views/gif_picker.js) against the server's /api/v1/gifs proxy and the
// test's Giphy stand-in. The picker is opened from the page the way the composer will
// open it (openGifPicker(ctx, anchor, onPick)); the provider's images are answered by
// the browser itself (page.route), so nothing leaves the machine.


import { args, closeAll, launch, login, newUser, pageErrors, report, screenshotFailuresTo, shot, step, waitFor } from "./lib.mjs";

const { base, shots, username, password } = args();
screenshotFailuresTo(shots);
const out = { step: "start" };
const browser = await launch();
const { page } = await newUser(browser, base, username);
const requested = [];
page.on("request", (request) => {
  if (request.url().includes("/api/v1/gifs/")) requested.push(new URL(request.url()).pathname + new URL(request.url()).search);
});
// A 1x1 GIF for every image of the provider's media host.
const PIXEL = Buffer.from("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==", "base64");
await page.route(/^https:\/\/[^/]*\.giphy\.com\//, (route) => route.fulfill({ status: 200, contentType: "image/gif", body: PIXEL }));

// Whether the homeserver itself served the picker's stylesheet.
out.cssServedByServer = null;
page.on("response", (response) => {
  if (response.url() === `${base}/gif.css`) out.cssServedByServer = response.ok();
});

// How many preview images the browser could show (the CSP's img-src decides).
const imagesLoaded = () => page.evaluate(() => [...document.querySelectorAll(".gif-picker img")]
  .filter((img) => img.complete && img.naturalWidth > 0).length);

async function openPicker() {
  await page.evaluate(async () => {
    const { openGifPicker } = await import("/js/views/gif_picker.js");
    window.__picked = null;
    openGifPicker(window.drocsid, document.body, (gif) => { window.__picked = gif; });
  });
  await page.getByRole("dialog", { name: "GIF picker" }).waitFor();
}

const cells = () => page.getByRole("dialog", { name: "GIF picker" }).getByRole("gridcell");

await step("sign in", async () => {
  await login(page, base, username, password);
  await waitFor(page, () => !!window.drocsid?.api);
});

await step("trending when the search is empty", async () => {
  await openPicker();
  await waitFor(page, () => document.querySelectorAll(".gif-picker .gif-button").length === 25);
  out.trendingFirst = await cells().first().getAttribute("aria-label");
  out.searchFocused = await page.evaluate(() => document.activeElement?.getAttribute("aria-label"));
  await shot(page, shots, "gif-trending");
});

await step("search", async () => {
  await page.getByLabel("Search GIFs").fill("cats");
  await page.getByText("Results for “cats”").waitFor();
  await waitFor(page, () => document.querySelectorAll(".gif-picker .gif-button").length === 25);
  out.searchFirst = await cells().first().getAttribute("aria-label");
  out.previewSrc = await cells().first().locator("img").getAttribute("src");
  await page.waitForLoadState("networkidle");
  out.imagesLoaded = await imagesLoaded();
  await shot(page, shots, "gif-search");
});

await step("arrow keys and Enter pick a GIF", async () => {
  await page.getByLabel("Search GIFs").press("ArrowDown");
  await page.keyboard.press("ArrowRight");
  await page.keyboard.press("ArrowDown");
  out.focused = await page.evaluate(() => document.activeElement?.getAttribute("aria-label"));
  await page.keyboard.press("Enter");
  await waitFor(page, () => window.__picked !== null);
  out.picked = await page.evaluate(() => window.__picked);
  out.closedAfterPick = await page.locator(".gif-picker").count() === 0;
});

await step("provider failure shows an inline alert", async () => {
  await openPicker();
  await page.getByLabel("Search GIFs").fill("boom");
  const alert = page.getByRole("dialog", { name: "GIF picker" }).getByRole("alert");
  await alert.waitFor({ state: "visible" });
  out.alert = await alert.textContent();
  await shot(page, shots, "gif-error");
});

await step("Escape closes", async () => {
  await page.getByLabel("Search GIFs").press("Escape");
  out.closedOnEscape = await page.locator(".gif-picker").count() === 0;
});

out.requested = requested;
out.pageErrors = pageErrors;
out.step = "done";
report(out);
await closeAll();

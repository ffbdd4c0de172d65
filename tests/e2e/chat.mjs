// Two users in two browsers: register, create a server, invite by link, chat both ways
// (edit, reaction, reply, thread, image), a private channel that a role opens and closes,
// the quick switcher, friends and a DM, and a dropped gateway connection that resumes
// without losing or doubling a message. Screenshots of the main views.

import { args, closeAll, consoleErrors, pageErrors, frames, launch, newUser, report, screenshotFailuresTo, shot, step, waitConnected, waitFor } from "./lib.mjs";

const { base, shots } = args();
screenshotFailuresTo(shots);
const PASSWORD = "correct horse battery staple";
const suffix = Date.now().toString(36).slice(-5);
const ALICE = `alice${suffix}`, BOB = `bob${suffix}`;
const out = { step: "start", alice: ALICE, password: PASSWORD };

// A small PNG (16x16, one colour) as the image attachment.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAGUlEQVR4nGP4z8BAEmIY1TCqYVTDqIYBqgEAYF0/wSZ7KL0AAAAASUVORK5CYII=", "base64");

const row = (page, text) => page.locator('[data-testid="message"]', { has: page.locator(".message-content", { hasText: text }) });
const rowsWithText = (page, text) => page.evaluate((t) => [...document.querySelectorAll('[data-testid="message"] .message-content')]
  .filter((el) => el.textContent.replace(" (edited)", "") === t).length, text);

async function send(page, text, testid = "composer") {
  await page.fill(`[data-testid="${testid}"]`, text);
  await page.press(`[data-testid="${testid}"]`, "Enter");
}

// Closes the open dialog with its Close button and waits until it is gone.
async function closeDialog(page) {
  await page.locator("dialog[open] .modal-close").last().click();
  await page.locator("dialog[open]").waitFor({ state: "detached" });
}

async function action(page, text, label) {
  const r = row(page, text).last();
  await r.hover();
  await r.getByRole("button", { name: label, exact: true }).click();
}

const alicesBrowser = await launch();
const bobsBrowser = await launch();
const alice = await newUser(alicesBrowser, base, "alice");
const bob = await newUser(bobsBrowser, base, "bob");
const A = alice.page, B = bob.page;

await step("alice registers", async () => {
  await A.goto(`${base}/register`);
  await shot(A, shots, "01-register");
  await A.getByLabel("Username").fill(ALICE);
  await A.getByLabel("Display name (optional)").fill("Alice");
  await A.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await A.getByRole("button", { name: "Create account" }).click();
  await A.waitForURL("**/channels/@me");
  await waitConnected(A);
  await A.getByRole("navigation", { name: "Servers" }).waitFor();
  await shot(A, shots, "02-home");
});

let serverId, generalId, inviteLink;
await step("alice creates a server", async () => {
  await A.click('[data-testid="add-server"]');
  await A.getByLabel("Server name").fill("Drocsid Testers");
  await A.getByRole("button", { name: "Create", exact: true }).click();
  await A.waitForURL(/\/channels\/!/);
  await A.locator('[data-testid="composer"]').waitFor();
  [serverId, generalId] = new URL(A.url()).pathname.split("/").slice(2).map(decodeURIComponent);
  out.server = serverId;
});

await step("alice makes an invite link", async () => {
  await A.click('[data-testid="server-menu"]');
  await A.getByRole("menuitem", { name: "Invite people" }).click();
  inviteLink = await A.getByLabel("Invite link").inputValue();
  if (!inviteLink.startsWith(`${base}/invite/`)) throw new Error(`unexpected invite link ${inviteLink}`);
  await shot(A, shots, "03-invite");
  await closeDialog(A);
});

await step("bob registers through the invite link", async () => {
  await B.goto(inviteLink);
  await B.getByText("Drocsid Testers").waitFor();
  await shot(B, shots, "04-invite-page");
  await B.getByLabel("Username").fill(BOB);
  await B.getByLabel("Display name (optional)").fill("Bob");
  await B.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await B.getByRole("button", { name: "Create account" }).click();
  await B.waitForURL((url) => url.pathname.startsWith("/channels/!"), { timeout: 20000 });
  await B.locator('[data-testid="composer"]').waitFor();
  await waitConnected(B);
  out.bobJoined = decodeURIComponent(new URL(B.url()).pathname.split("/")[2]) === serverId;
});

await step("chat both ways", async () => {
  await send(A, "hello bob");
  await row(B, "hello bob").waitFor();
  await send(B, "hi alice");
  await row(A, "hi alice").waitFor();
  out.bobSaw = await rowsWithText(B, "hello bob");
  out.aliceSaw = await rowsWithText(A, "hi alice");
  // Bob sees Alice in the member list, online.
  await B.locator(`[data-testid="member"][data-user-id^="@${ALICE}:"]`).waitFor();
});

await step("typing shows on the other side", async () => {
  await A.fill('[data-testid="composer"]', "I am typing something");
  await B.getByText("Alice is typing…").waitFor();
  out.typingSeen = true;
  await A.fill('[data-testid="composer"]', "");
});

await step("alice edits her message", async () => {
  await action(A, "hello bob", "Edit");
  const editor = A.getByLabel("Edit message");
  await editor.fill("hello bob, edited");
  await editor.press("Enter");
  await row(B, "hello bob, edited").locator(".edited").waitFor();
  out.editSeen = await row(B, "hello bob, edited").count();
});

await step("bob reacts with the emoji picker", async () => {
  await action(B, "hello bob, edited", "Add reaction");
  await B.getByLabel("Search emoji").fill("thumbsup");
  await B.getByRole("gridcell", { name: ":thumbsup:" }).click();
  const reaction = row(A, "hello bob, edited").locator('[data-testid="reaction"][data-emoji="👍"]');
  await reaction.waitFor();
  out.reactionCount = (await reaction.locator(".reaction-count").textContent()).trim();
});

await step("bob replies to alice", async () => {
  await action(B, "hello bob, edited", "Reply");
  await send(B, "this is a reply");
  const reply = row(A, "this is a reply");
  await reply.locator(".reply-preview").waitFor();
  out.replyPreview = (await reply.locator(".reply-preview").textContent()).includes("hello bob, edited");
});

await step("a mention through autocomplete lights bob's badges", async () => {
  await B.click('[data-testid="home"]');
  await B.locator('[data-testid="friends-link"]').waitFor();
  await A.locator('[data-testid="composer"]').pressSequentially(`hey @${BOB.slice(0, 4)}`);
  const option = A.getByRole("option", { name: /Bob/ });
  await option.waitFor();
  await A.keyboard.press("Enter");
  await A.locator('[data-testid="composer"]').pressSequentially("look here");
  out.mentionTyped = await A.locator('[data-testid="composer"]').inputValue();
  await A.press('[data-testid="composer"]', "Enter");
  const badge = B.locator(`[data-testid="server-icon"][data-server-id="${serverId}"] [data-testid="server-mentions"]`);
  await badge.waitFor();
  out.serverMentionBadge = (await badge.textContent()).trim();
  await shot(B, shots, "05a-mention-badge");
  await B.click(`[data-testid="server-icon"][data-server-id="${serverId}"]`);
  const mention = row(B, "look here");
  await mention.waitFor();
  out.mentionHighlighted = await mention.evaluate((el) => el.classList.contains("mentioned"));
  out.mentionPill = (await mention.locator(".mention").textContent()).trim();
  // Reading the channel clears the badge.
  await badge.waitFor({ state: "detached" });
});

await step("alice starts a thread", async () => {
  await send(A, "let's plan the meetup");
  await row(A, "let's plan the meetup").waitFor();
  await frames(A, 3);
  await action(A, "let's plan the meetup", "Create thread");
  await A.getByLabel("Thread name").fill("Meetup");
  await A.getByRole("button", { name: "Create thread" }).click();
  await A.locator('[data-testid="thread-panel"]').waitFor();
  await send(A, "saturday works for me", "thread-composer");
  await A.locator('[data-testid="thread-panel"] [data-testid="message"] .message-content', { hasText: "saturday works for me" }).waitFor();
  await shot(A, shots, "05-thread");
  // Bob sees the thread on the root message and reads the reply inside it.
  const summary = row(B, "let's plan the meetup").locator('[data-testid="thread-summary"]');
  await summary.waitFor();
  await waitFor(B, () => /1 reply/.test(document.querySelector('[data-testid="thread-summary"]')?.textContent || ""));
  await summary.click();
  await B.locator('[data-testid="thread-panel"] .message-content', { hasText: "saturday works for me" }).waitFor();
  out.threadSeen = true;
  await B.getByRole("button", { name: "Close threads" }).click();
  await A.getByRole("button", { name: "Close threads" }).click();
});

await step("alice sends an image", async () => {
  await A.setInputFiles('[data-testid="file-input"]', { name: "dot.png", mimeType: "image/png", buffer: PNG });
  await A.locator(".file-tray .file-chip").waitFor();
  await A.fill('[data-testid="composer"]', "look at this");
  await A.press('[data-testid="composer"]', "Enter");
  const img = B.locator('[data-testid="attachment-image"]').last();
  await img.waitFor();
  await waitFor(B, () => {
    const el = [...document.querySelectorAll('[data-testid="attachment-image"]')].pop();
    return el && el.complete && el.naturalWidth === 16 && el.src.startsWith("blob:");
  });
  out.imageWidth = await img.evaluate((el) => el.naturalWidth);
  await shot(B, shots, "06-channel");
});

await step("alice opens a private channel to a role", async () => {
  await A.click('[data-testid="server-menu"]');
  await A.getByRole("menuitem", { name: "Create channel" }).click();
  await A.getByLabel("Channel name").fill("staff");
  await A.getByLabel(/Private channel/).check();
  await A.locator("dialog[open]").getByRole("button", { name: "Create channel", exact: true }).click();
  await A.locator('[data-testid="channel-link"][data-name="staff"]').waitFor();
  await send(A, "staff only");
  await row(A, "staff only").waitFor();
  // Bob does not see it: the channel list settles without it.
  await frames(B, 10);
  await B.waitForTimeout(500);
  out.bobSeesStaffBefore = await B.locator('[data-testid="channel-link"][data-name="staff"]').count();
});

await step("a role with an overwrite opens the channel to bob", async () => {
  // Server settings: a Staff role, given to bob.
  await A.click('[data-testid="server-menu"]');
  await A.getByRole("menuitem", { name: "Server settings" }).click();
  await A.getByRole("tab", { name: "Roles" }).click();
  await A.click('[data-testid="create-role"]');
  await A.locator('[data-testid="role-name-input"]').fill("Staff");
  await A.locator('[data-testid="role-hoist"]').check();
  await A.click('[data-testid="save-role"]');
  await A.locator('[data-testid="role-list"]', { hasText: "Staff" }).waitFor();
  await shot(A, shots, "07-server-settings-roles");
  await A.getByRole("tab", { name: "Members" }).click();
  const bobRow = A.locator(`[data-testid="member-row"][data-user-id^="@${BOB}:"]`);
  await bobRow.getByLabel("Staff").check();
  await bobRow.locator("input:checked:enabled").waitFor();
  await closeDialog(A);
  // Channel settings of #staff: allow the role to view it.
  const staffLink = A.locator('[data-testid="channel-link"][data-name="staff"]');
  await staffLink.hover();
  await A.getByRole("button", { name: "Edit channel staff" }).click();
  await A.getByRole("tab", { name: "Permissions" }).click();
  await A.locator('[data-testid="overwrite-add"]').selectOption({ label: "Staff" });
  await A.locator('[data-testid="overwrite-editor"] [data-permission="VIEW_CHANNEL"]').getByLabel("Allow").check();
  await A.click('[data-testid="save-overwrite"]');
  await A.locator('[data-testid="overwrite-targets"] button[data-target-type="role"]', { hasText: "Staff" }).waitFor();
  await A.waitForFunction(() => !document.querySelector('[data-testid="overwrite-targets"]')?.textContent.includes("(unsaved)"));
  await shot(A, shots, "08-channel-permissions");
  await closeDialog(A);
  await B.locator('[data-testid="channel-link"][data-name="staff"]').waitFor({ timeout: 20000 });
  await B.click('[data-testid="channel-link"][data-name="staff"]');
  await row(B, "staff only").waitFor();
  out.bobSeesStaffWithRole = true;
});

await step("taking the role away hides the channel again", async () => {
  await A.click('[data-testid="server-menu"]');
  await A.getByRole("menuitem", { name: "Server settings" }).click();
  await A.getByRole("tab", { name: "Members" }).click();
  const bobRow = A.locator(`[data-testid="member-row"][data-user-id^="@${BOB}:"]`);
  await bobRow.getByLabel("Staff").uncheck();
  await bobRow.locator('input[type="checkbox"]:not(:checked):enabled').waitFor();
  await closeDialog(A);
  await B.locator('[data-testid="channel-link"][data-name="staff"]').waitFor({ state: "detached", timeout: 20000 });
  out.bobSeesStaffAfter = await B.locator('[data-testid="channel-link"][data-name="staff"]').count();
  // Bob was moved off the channel he lost.
  await B.waitForURL((url) => !url.pathname.endsWith(encodeURIComponent(out.staff || "x")));
});

await step("audit log and a webhook from server settings", async () => {
  await A.click('[data-testid="server-menu"]');
  await A.getByRole("menuitem", { name: "Server settings" }).click();
  await A.getByRole("tab", { name: "Audit Log" }).click();
  await A.locator('[data-testid="audit-entry"]').first().waitFor();
  out.auditEntries = await A.locator('[data-testid="audit-entry"]').count();
  await shot(A, shots, "09b-audit-log");
  await A.getByRole("tab", { name: "Webhooks" }).click();
  await A.locator('[data-testid="webhook-name-input"]').fill("Deploy bot");
  await A.click('[data-testid="create-webhook"]');
  const url = await A.locator('[data-testid="webhook-url"]').inputValue();
  await shot(A, shots, "09c-webhooks");
  await closeDialog(A);
  const answer = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ content: "deployed v1.2" }) });
  out.webhookStatus = answer.status;
  const hooked = row(B, "deployed v1.2");
  await hooked.waitFor();
  out.webhookAuthor = (await hooked.locator(".message-author").textContent()).trim();
  out.webhookInMemberList = await B.locator('[data-testid="member"][data-user-id^="@_webhook_"]').count();
});

await step("the quick switcher", async () => {
  await B.keyboard.press("Control+k");
  const box = B.getByLabel("Where would you like to go?");
  await box.waitFor();
  await box.fill("gener");
  await shot(B, shots, "09-quick-switcher");
  await B.keyboard.press("ArrowDown");
  await B.keyboard.press("ArrowUp");
  await B.keyboard.press("Enter");
  await B.waitForURL((url) => decodeURIComponent(url.pathname).endsWith(generalId));
  await B.locator('[data-testid="quick-switcher"]').waitFor({ state: "detached" });
  await B.keyboard.press("Control+k");
  await B.getByLabel("Where would you like to go?").waitFor();
  await B.keyboard.press("Escape");
  await B.locator('[data-testid="quick-switcher"]').waitFor({ state: "detached" });
  out.switcher = true;
});

await step("a hidden tab makes bob idle for alice, activity brings him back", async () => {
  const bobInList = A.locator(`[data-testid="member"][data-user-id^="@${BOB}:"]`);
  await bobInList.waitFor();
  await B.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await waitFor(A, (bob) => document.querySelector(`[data-testid="member"][data-user-id^="@${bob}:"] .status-dot.idle`), BOB);
  out.idleSeen = true;
  await shot(A, shots, "09a-bob-idle");
  await B.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await B.mouse.move(300, 300);
  await waitFor(A, (bob) => document.querySelector(`[data-testid="member"][data-user-id^="@${bob}:"] .status-dot.online`), BOB);
  out.onlineAgain = true;
});

await step("friends and a direct message", async () => {
  const member = B.locator(`[data-testid="member"][data-user-id^="@${ALICE}:"]`);
  await member.click();
  await B.getByRole("menuitem", { name: "Add Friend" }).click();
  await A.click('[data-testid="home"]');
  await A.getByRole("tab", { name: "Pending" }).click();
  await A.getByRole("button", { name: /^Accept/ }).click();
  await A.getByRole("tab", { name: "All" }).click();
  await A.locator(`[data-testid="friend"][data-user-id^="@${BOB}:"]`).waitFor();
  await shot(A, shots, "10-friends");
  // Bob allowed notifications; he is in the server's channel, not in the DM.
  await B.evaluate(() => {
    window.__notes = [];
    window.Notification = class {
      static permission = "granted";
      constructor(title, options) { window.__notes.push({ title, body: options?.body }); }
      close() {}
    };
  });
  await A.locator(`[data-testid="friend"][data-user-id^="@${BOB}:"]`).getByRole("button", { name: /^Message/ }).click();
  await A.locator('[data-testid="composer"]').waitFor();
  await send(A, "a private hello");
  await row(A, "a private hello").waitFor();
  await waitFor(B, () => window.__notes.length > 0);
  out.notification = await B.evaluate(() => window.__notes[0]);
  // Bob sees the DM in his list with an unread badge, and the message in it.
  await B.click('[data-testid="home"]');
  const dm = B.locator('[data-testid="dm-link"]').first();
  await dm.waitFor();
  await dm.click();
  await row(B, "a private hello").waitFor();
  await shot(B, shots, "11-dm");
  out.dm = true;
  // What the client itself logged as an error (the browser's own "Failed to load resource"
  // lines are answers like a 403 for a channel just lost, listed in httpErrorsSoFar).
  out.consoleErrorsSoFar = consoleErrors.filter((e) => !/^\d{3} /.test(e.text) && !e.text.startsWith("Failed to load resource"))
    .map((e) => e.text);
  out.httpErrorsSoFar = consoleErrors.filter((e) => /^\d{3} /.test(e.text)).map((e) => `${e.user} ${e.step}: ${e.text}`);
});

await step("unread messages: badge, divider and jump bar", async () => {
  // Bob is in the DM; Alice writes twice in #general.
  await A.goto(`${base}/channels/${encodeURIComponent(serverId)}/${encodeURIComponent(generalId)}`);
  await waitConnected(A);
  await send(A, "unread one");
  await send(A, "unread two");
  await row(A, "unread two").waitFor();
  const link = `[data-testid="server-icon"][data-server-id="${serverId}"]`;
  await waitFor(B, (sel) => document.querySelector(sel)?.closest(".rail-item")?.querySelector(".pill"), link);
  await B.click(link);
  const bar = B.locator('[data-testid="jump-unread"]');
  await bar.waitFor();
  out.jumpBar = (await bar.textContent()).trim();
  out.newDivider = await B.locator(".new-divider").count();
  await bar.click();
  await bar.waitFor({ state: "hidden" });
});

await step("a category with a channel in it", async () => {
  await A.click('[data-testid="server-menu"]');
  await A.getByRole("menuitem", { name: "Create category" }).click();
  await A.getByLabel("Category name").fill("Projects");
  await A.getByRole("button", { name: "Create category" }).click();
  await A.getByRole("button", { name: "Create channel in Projects" }).click();
  await A.getByLabel("Channel name").fill("roadmap");
  await A.locator("dialog[open]").getByRole("button", { name: "Create channel", exact: true }).click();
  await A.waitForURL((url) => !decodeURIComponent(url.pathname).endsWith(generalId));
  const group = B.getByRole("group", { name: "Projects" });
  await group.locator('[data-testid="channel-link"][data-name="roadmap"]').waitFor();
  out.categoryOnBobsSide = true;
  await A.goto(`${base}/channels/${encodeURIComponent(serverId)}/${encodeURIComponent(generalId)}`);
});

await step("an expiring access token is refreshed on the way", async () => {
  const before = await B.evaluate(() => window.drocsid.api.session.access_token);
  await B.evaluate(() => { window.drocsid.api.session.expires_at = Date.now(); });
  await send(B, "sent with a fresh token");
  await row(A, "sent with a fresh token").waitFor();
  const after = await B.evaluate(() => window.drocsid.api.session.access_token);
  out.tokenRefreshed = before !== after && !!after;
  out.refreshStored = await B.evaluate((t) => JSON.parse(localStorage.getItem("drocsid.session")).access_token === t, after);
});

await step("a dropped gateway resumes without losing or doubling messages", async () => {
  await B.goto(`${base}/channels/${encodeURIComponent(serverId)}/${encodeURIComponent(generalId)}`);
  await waitConnected(B);
  await row(B, "look at this").waitFor();
  await A.goto(`${base}/channels/${encodeURIComponent(serverId)}/${encodeURIComponent(generalId)}`);
  await waitConnected(A);
  const resumedBefore = await B.evaluate(() => {
    window.__resumed = 0;
    window.drocsid.gateway.addEventListener("dispatch", (ev) => { if (ev.detail.t === "RESUMED") window.__resumed += 1; });
    return window.drocsid.gateway.sessionId;
  });
  await bob.context.setOffline(true);
  await B.evaluate(() => window.drocsid.gateway.drop());
  await waitFor(B, () => window.drocsid.gateway.state !== "connected");
  await shot(B, shots, "12-reconnecting");
  for (const text of ["missed one", "missed two", "missed three"]) {
    await send(A, text);
    await row(A, text).waitFor();
  }
  out.bobHadMissedWhileOffline = await rowsWithText(B, "missed one");
  await bob.context.setOffline(false);
  await B.evaluate(() => window.dispatchEvent(new Event("online")));
  await waitConnected(B, 30000);
  for (const text of ["missed one", "missed two", "missed three"]) await row(B, text).waitFor();
  await frames(B, 5);
  out.missedCounts = [];
  for (const text of ["missed one", "missed two", "missed three"]) out.missedCounts.push(await rowsWithText(B, text));
  out.resumed = await B.evaluate(() => window.__resumed);
  out.sameSession = (await B.evaluate(() => window.drocsid.gateway.sessionId)) === resumedBefore;
  // And the order on screen is the order sent.
  out.missedOrder = await B.evaluate(() => [...document.querySelectorAll('[data-testid="message"] .message-content')]
    .map((el) => el.textContent).filter((t) => t.startsWith("missed ")));
});

await step("a signed-in user accepts an invite; rename, role deletion and a kick in settings", async () => {
  await A.click('[data-testid="add-server"]');
  await A.getByLabel("Server name").fill("Second");
  await A.getByRole("button", { name: "Create", exact: true }).click();
  await A.waitForURL((url) => !decodeURIComponent(url.pathname).startsWith(`/channels/${serverId}`));
  await A.locator('[data-testid="composer"]').waitFor();
  const second = decodeURIComponent(new URL(A.url()).pathname.split("/")[2]);
  await A.click('[data-testid="server-menu"]');
  await A.getByRole("menuitem", { name: "Invite people" }).click();
  const link = await A.getByLabel("Invite link").inputValue();
  await closeDialog(A);
  // Opening the link in a fresh page: the session is restored before the invite shows.
  await B.goto(link);
  await B.getByRole("button", { name: "Accept invite" }).click();
  await B.locator('[data-testid="composer"]').waitFor();
  out.acceptedInto = decodeURIComponent(new URL(B.url()).pathname.split("/")[2]) === second;

  await A.click('[data-testid="server-menu"]');
  await A.getByRole("menuitem", { name: "Server settings" }).click();
  await A.locator('[data-testid="server-name-input"]').fill("Second, renamed");
  await A.locator('[data-testid="settings-panel"] button[type=submit]').first().click();
  await B.locator('[data-testid="server-menu"]', { hasText: "Second, renamed" }).waitFor();
  await A.getByRole("tab", { name: "Roles" }).click();
  await A.click('[data-testid="create-role"]');
  await A.locator('[data-testid="role-name-input"]').fill("Temporary");
  await A.click('[data-testid="save-role"]');
  await A.locator('[data-testid="role-list"]', { hasText: "Temporary" }).waitFor();
  await A.click('[data-testid="delete-role"]');
  await A.locator("dialog[open]").last().getByRole("button", { name: "Delete role" }).click();
  await waitFor(A, () => !document.querySelector('[data-testid="role-list"]').textContent.includes("Temporary"));
  await A.getByRole("tab", { name: "Members" }).click();
  await A.locator(`[data-testid="member-row"][data-user-id^="@${BOB}:"] [data-testid="kick-member"]`).click();
  await A.locator("dialog[open]").last().getByRole("button", { name: "Kick", exact: true }).click();
  await A.locator(`[data-testid="member-row"][data-user-id^="@${BOB}:"]`).waitFor({ state: "detached" });
  await closeDialog(A);
  await B.locator(`[data-testid="server-icon"][data-server-id="${second}"]`).waitFor({ state: "detached" });
  out.kickedFromSecond = true;
  await A.goto(`${base}/channels/${encodeURIComponent(serverId)}/${encodeURIComponent(generalId)}`);
  await waitConnected(A);
});

await step("settings and themes", async () => {
  await A.click('[data-testid="user-settings"]');
  await A.getByRole("tab", { name: "Appearance" }).click();
  await A.locator('[data-testid="theme-dark"]').check();
  out.darkTheme = await A.evaluate(() => document.documentElement.dataset.theme);
  await closeDialog(A);
  await shot(A, shots, "13-channel-dark");
  // Every control on the main views has an accessible name.
  out.unlabelled = await A.evaluate(() => [...document.querySelectorAll("button, input, textarea, select, a[href]")]
    .filter((el) => !el.hidden && el.type !== "hidden" && el.offsetParent !== null)
    .filter((el) => !(el.getAttribute("aria-label") || el.textContent.trim() || el.labels?.length || el.getAttribute("title")
      || el.getAttribute("aria-labelledby") || el.querySelector("img[alt]:not([alt=''])")))
    .map((el) => el.outerHTML.slice(0, 120)));
  await A.click('[data-testid="user-settings"]');
  const token = await A.evaluate(() => window.drocsid.api.session.access_token);
  await A.locator('[data-testid="log-out"]').click();
  await A.waitForURL("**/login");
  const whoami = await fetch(`${base}/_matrix/client/v3/account/whoami`, { headers: { Authorization: `Bearer ${token}` } });
  out.oldTokenAfterLogout = whoami.status;
  out.sessionCleared = await A.evaluate(() => localStorage.getItem("drocsid.session") === null);
});

await step("time to first render and first message after login", async () => {
  // A browser that has never seen the client: the login page's first paint, then from
  // pressing "Log in" to the app on screen and to the channel's newest message.
  const fresh = await newUser(await launch(), base, "bob-again");
  const P = fresh.page;
  const channelPath = `/channels/${encodeURIComponent(serverId)}/${encodeURIComponent(generalId)}`;
  await P.goto(`${base}/login?next=${encodeURIComponent(channelPath)}`);
  await P.getByLabel("Username").waitFor();
  out.loginPageFirstPaintMs = await P.evaluate(() => Math.round(performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? -1));
  out.transferredBytes = await P.evaluate(() => performance.getEntriesByType("resource").concat(performance.getEntriesByType("navigation"))
    .reduce((sum, e) => sum + (e.transferSize || 0), 0));
  await P.getByLabel("Username").fill(BOB);
  await P.getByLabel("Password", { exact: true }).fill(PASSWORD);
  const started = Date.now();
  await P.getByRole("button", { name: "Log in" }).click();
  await P.getByRole("navigation", { name: "Servers" }).waitFor();
  out.firstRenderAfterLoginMs = Date.now() - started;
  await row(P, "missed three").waitFor();
  out.firstMessageAfterLoginMs = Date.now() - started;
  // The PWA: the service worker took the shell, which then opens offline.
  out.serviceWorker = await P.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    return !!reg.active && (await caches.has("drocsid-shell-v1"));
  });
  out.manifestLinked = await P.evaluate(() => !!document.querySelector('link[rel="manifest"]'));
  await fresh.context.setOffline(true);
  await P.reload();
  await P.locator("#app").waitFor();
  out.offlineShellTitle = await P.title();
  await fresh.context.setOffline(false);
});

out.pageErrors = pageErrors;
out.step = "done";
report(out);
await closeAll();

// Voice in the browser: bob joins a voice channel by clicking it; livekit-client (served by
// the homeserver) starts connecting to LiveKit; alice sees bob in the channel, then his
// mute, then him leaving. The LiveKit signalling endpoint here accepts and never answers,
// so the media never flows: what is checked is everything around it.

import { args, closeAll, launch, login, newUser, pageErrors, report, screenshotFailuresTo, shot, step, waitConnected, waitFor } from "./lib.mjs";

const { base, shots, alice, bob, password, serverId, voiceId, generalId } = args();
screenshotFailuresTo(shots);
const out = { step: "start" };
const browser = await launch();
const A = (await newUser(browser, base, "alice")).page;
const B = (await newUser(browser, base, "bob")).page;
const general = `/channels/${encodeURIComponent(serverId)}/${encodeURIComponent(generalId)}`;
const inVoice = (page, user) => page.locator(`[data-testid="channel-link"][data-channel-id="${voiceId}"]`)
  .locator("xpath=ancestor::li[1]").locator(`.voice-member[data-user-id="${user}"]`);

await step("both sign in", async () => {
  await login(A, base, alice.name, password, general);
  await login(B, base, bob.name, password, general);
  await waitConnected(A);
  await waitConnected(B);
});

await step("bob joins the voice channel", async () => {
  // The list settles once the channel's voice states are in (it redraws on them).
  await waitFor(B, (id) => window.drocsid.store.voice.has(id), voiceId);
  await waitFor(A, (id) => window.drocsid.store.voice.has(id), voiceId);
  await B.click(`[data-testid="channel-link"][data-channel-id="${voiceId}"]`);
  await B.locator('[data-testid="voice-panel"]').waitFor();
  await inVoice(A, bob.id).waitFor();
  await inVoice(B, bob.id).waitFor();
  // livekit-client came from the homeserver (CSP allows only this origin and LiveKit).
  await waitFor(B, () => !!window.drocsid.voice.room);
  out.livekitLoaded = await B.evaluate(() => window.drocsid.voice.room.constructor.name);
  await shot(B, shots, "voice-connecting");
});

await step("bob mutes himself; alice sees it", async () => {
  await B.getByRole("button", { name: "Mute", exact: true }).click();
  await inVoice(A, bob.id).locator('[aria-label="muted"]').waitFor();
  out.muteSeen = true;
  out.muteButtonPressed = await B.getByRole("button", { name: "Mute", exact: true }).getAttribute("aria-pressed");
  await shot(A, shots, "voice-alice-sees-bob-muted");
});

await step("bob disconnects; alice sees him leave", async () => {
  await B.getByRole("button", { name: "Disconnect" }).click();
  await inVoice(A, bob.id).waitFor({ state: "detached" });
  out.panelHidden = await B.locator('[data-testid="voice-panel"]').isHidden();
  out.pageErrors = pageErrors;
});

out.step = "done";
report(out);
await closeAll();

// Two matrix-js-sdk clients against a homeserver, used through the SDK's own high-level API:
// register, create a room, invite, join, messages both ways through the sync loop, an edit, a
// reaction, a threaded reply, a redaction, typing, a read receipt, an image uploaded and
// downloaded, 500 messages paged back with scrollback, device keys and a to-device message.
// Prints one JSON object with what the clients saw (with "error" set and exit code 1 when a step
// failed). Every wait is bounded. Usage: node scenario.mjs http://127.0.0.1:PORT
import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

// The SDK logs every request; warnings and errors are enough to diagnose a failure.
logger.setLevel("warn");

const base = process.argv[2];
const suffix = Math.random().toString(16).slice(2, 8);
const report = {};
const HISTORY = 500;
const passwords = new Map();

// Whatever happens, the process ends: a hung step still prints what was seen so far.
setTimeout(() => {
  report.error = `scenario watchdog fired during step ${report.step}`;
  console.log(JSON.stringify(report));
  process.exit(1);
}, 150000).unref();

function withTimeout(promise, ms, what) {
  let timer;
  const expired = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms); });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

// Waits until check() returns something other than undefined/null/false, polling the SDK's model.
function until(check, ms, what) {
  let stopped = false;
  const polled = new Promise((resolve, reject) => {
    const poll = () => {
      if (stopped) return;
      let value;
      try { value = check(); } catch (err) { reject(err); return; }
      if (value !== undefined && value !== null && value !== false) resolve(value); else setTimeout(poll, 50);
    };
    poll();
  });
  return withTimeout(polled, ms, what).finally(() => { stopped = true; });
}

function step(name) { report.step = name; }

function clientFor(fields) {
  // localTimeoutMs bounds every request the SDK makes (the sync long-poll sets its own).
  return sdk.createClient({ baseUrl: base, localTimeoutMs: 20000, ...fields });
}

async function register(name) {
  const answer = await clientFor({}).registerRequest({ username: name, password: `js password ${name}`,
                                                auth: { type: "m.login.dummy" } });
  passwords.set(answer.user_id, `js password ${name}`);
  return clientFor({ accessToken: answer.access_token, userId: answer.user_id, deviceId: answer.device_id });
}

async function started(client) {
  const ready = new Promise((resolve) => {
    client.on(sdk.ClientEvent.Sync, (state) => { if (state === "PREPARED") resolve(); });
  });
  await client.startClient({ initialSyncLimit: 10, threadSupport: true });
  await withTimeout(ready, 20000, "initial sync");
}

// The next timeline event in roomId (as seen by client) that matches accept.
function nextTimelineEvent(client, roomId, accept) {
  return new Promise((resolve) => {
    const listener = (event, room) => {
      if (room && room.roomId === roomId && accept(event)) {
        client.off(sdk.RoomEvent.Timeline, listener);
        resolve(event);
      }
    };
    client.on(sdk.RoomEvent.Timeline, listener);
  });
}

const PNG = Buffer.from(
  "89504e470d0a1a0a0000000d4948445200000001000000010806000000" +
  "1f15c4890000000d49444154789c63f8cfc0f01f00050001ff89993d1d0000000049454e44ae426082", "hex");

async function conversation(alice, bob, roomId) {
  const aliceRoom = alice.getRoom(roomId);
  const bobRoom = bob.getRoom(roomId);

  step("edit");
  const { event_id: original } = await alice.sendMessage(roomId, { msgtype: "m.text", body: "helo" });
  const { event_id: edit } = await alice.sendEvent(roomId, "m.room.message", {
    msgtype: "m.text", body: "* hello", "m.new_content": { msgtype: "m.text", body: "hello" },
    "m.relates_to": { rel_type: "m.replace", event_id: original } });
  const edited = await until(() => {
    const event = bobRoom.findEventById(original);
    return event && event.replacingEvent()?.getId() === edit && event;
  }, 15000, "edit seen by bob");
  report.editedBody = edited.getContent().body;
  report.editOriginalBody = edited.getOriginalContent().body;
  report.editReplacingId = edited.replacingEventId() === edit;
  report.editIsEdited = edited.replacingEvent().isRelation("m.replace");

  step("reaction");
  const { event_id: reaction } = await bob.sendEvent(roomId, "m.reaction", {
    "m.relates_to": { rel_type: "m.annotation", event_id: original, key: "👍" } });
  const annotations = await until(() => {
    const relations = aliceRoom.relations.getChildEventsForEvent(original, "m.annotation", "m.reaction");
    const sorted = relations?.getSortedAnnotationsByKey();
    return sorted && sorted.length && sorted;
  }, 15000, "reaction seen by alice");
  report.reactions = annotations.map(([key, events]) => [key, [...events].map((e) => e.getSender())]);
  report.reactionId = [...annotations[0][1]][0].getId() === reaction;

  step("thread");
  // sendMessage with a thread id: the SDK adds the m.thread relation itself.
  const { event_id: threadReply } = await bob.sendMessage(roomId, original, { msgtype: "m.text", body: "in a thread" });
  const thread = await until(() => {
    const found = aliceRoom.getThread(original);
    return found && found.findEventById(threadReply) && found;
  }, 15000, "thread seen by alice");
  const replyEvent = thread.findEventById(threadReply);
  report.threadRoot = thread.id === original;
  report.threadReplyRootId = replyEvent.threadRootId === original;
  report.threadReplyBodies = thread.events.filter((e) => e.getId() !== original).map((e) => e.getContent().body);
  report.threadRelation = replyEvent.getWireContent()["m.relates_to"]?.rel_type;
  report.threadLength = thread.length;
  // The server's bundled aggregations on the root, as the SDK fetches a single event.
  const root = await bob.fetchRoomEvent(roomId, original);
  const bundled = root.unsigned?.["m.relations"] ?? {};
  report.bundledEdit = bundled["m.replace"]?.event_id === edit;
  report.bundledThreadCount = bundled["m.thread"]?.count;
  report.bundledThreadLatest = bundled["m.thread"]?.latest_event?.event_id === threadReply;

  step("redaction");
  const { event_id: mistake } = await bob.sendMessage(roomId, { msgtype: "m.text", body: "oops" });
  await bob.redactEvent(roomId, mistake, undefined, { reason: "typo" });
  const redacted = await until(() => {
    const event = aliceRoom.findEventById(mistake);
    return event && event.isRedacted() && event;
  }, 15000, "redaction seen by alice");
  report.redactedContent = redacted.getContent();
  report.redactedReason = redacted.getUnsigned().redacted_because?.content?.reason;
  report.redactedBy = redacted.getUnsigned().redacted_because?.sender;
}

async function typingAndReceipt(alice, bob, roomId, replyId) {
  step("typing");
  await bob.sendTyping(roomId, true, 10000);
  report.typingSeen = await until(() => alice.getRoom(roomId)?.getMember(bob.getUserId())?.typing, 15000, "typing");

  step("receipt");
  const replyEvent = alice.getRoom(roomId).findEventById(replyId);
  await alice.sendReadReceipt(replyEvent);
  report.receiptSent = true;
  const bobRoom = bob.getRoom(roomId);
  // ignoreSynthesized: only the receipt the server delivered, not the one the SDK infers from
  // alice's own later messages.
  const receipt = await until(() => {
    const found = bobRoom.getReadReceiptForUserId(alice.getUserId(), true);
    return found && found.eventId === replyId && found;
  }, 15000, "read receipt seen by bob");
  report.receiptSeen = receipt.eventId === replyId;
  report.receiptThreadId = receipt.data.thread_id;
  report.receiptHasTs = Number.isInteger(receipt.data.ts) && receipt.data.ts > 0;
  report.eventReadUpTo = bobRoom.getEventReadUpTo(alice.getUserId(), true) === replyId;
}

async function media(alice, bob, roomId) {
  step("upload");
  const uploaded = await alice.uploadContent(PNG, { name: "dot.png", type: "image/png" });
  report.uploadedMxc = uploaded.content_uri.startsWith("mxc://");
  const imageSeen = nextTimelineEvent(bob, roomId, (e) => e.getContent().msgtype === "m.image");
  await alice.sendMessage(roomId, { msgtype: "m.image", body: "dot.png", url: uploaded.content_uri,
                                    info: { mimetype: "image/png", size: PNG.length } });
  const image = await withTimeout(imageSeen, 15000, "image event seen by bob");
  report.imageUrlSame = image.getContent().url === uploaded.content_uri;

  step("download");
  const url = bob.mxcUrlToHttp(image.getContent().url, undefined, undefined, undefined, false, true, true);
  report.downloadPath = new URL(url).pathname.split("/").slice(0, 6).join("/");
  const answer = await withTimeout(fetch(url, { headers: { Authorization: `Bearer ${bob.getAccessToken()}` } }),
                                   15000, "download");
  const body = Buffer.from(await withTimeout(answer.arrayBuffer(), 15000, "download body"));
  report.downloadStatus = answer.status;
  report.downloadType = answer.headers.get("content-type");
  report.downloadedSame = body.equals(PNG);
  const anonymous = await withTimeout(fetch(url), 15000, "download without a token");
  report.downloadWithoutTokenStatus = anonymous.status;
  await anonymous.arrayBuffer();
}

async function history(alice, bob, roomId) {
  step("history send");
  const sendStart = Date.now();
  // Twenty at a time; the SDK's scheduler queues m.room.message sends per client, so each
  // sender's messages go out in order, and each batch is sent by one client.
  for (let first = 0; first < HISTORY; first += 20) {
    const sender = (first / 20) % 2 ? alice : bob;
    const batch = [];
    for (let i = first; i < first + 20; i += 1) batch.push(sender.sendTextMessage(roomId, `history ${i}`));
    await withTimeout(Promise.all(batch), 30000, `history batch ${first}`);
  }
  report.historySendMs = Date.now() - sendStart;

  step("history sync");
  const room = bob.getRoom(roomId);
  const last = `history ${HISTORY - 1}`;
  await until(() => room.getLiveTimeline().getEvents().some((e) => e.getContent().body === last), 20000,
              "last history message seen by bob");

  // Bob opens the room on a new device: the first sync brings the last few events, and
  // scrollback pages the rest of the history back into the SDK's timeline.
  step("history new device");
  const login = await clientFor({}).loginRequest({ type: "m.login.password", password: passwords.get(bob.getUserId()),
                                                   identifier: { type: "m.id.user", user: bob.getUserId() } });
  later = clientFor({ accessToken: login.access_token, userId: login.user_id, deviceId: login.device_id });
  report.laterDeviceNew = login.device_id !== bob.getDeviceId() && login.user_id === bob.getUserId();
  await started(later);
  const fresh = await until(() => later.getRoom(roomId), 15000, "room on bob's new device");

  step("history scrollback");
  const bodies = () => fresh.getLiveTimeline().getEvents().map((e) => e.getContent().body)
    .filter((b) => typeof b === "string" && b.startsWith("history "));
  report.historyInitiallySeen = bodies().length;
  let calls = 0;
  while (bodies().length < HISTORY && fresh.oldState.paginationToken !== null && calls < 20) {
    calls += 1;
    await withTimeout(later.scrollback(fresh, 100), 15000, `scrollback ${calls}`);
  }
  report.scrollbackCalls = calls;
  const seen = bodies();
  report.historyCount = seen.length;
  report.historyInOrder = seen.length === HISTORY && seen.every((b, i) => b === `history ${i}`);
  if (!report.historyInOrder) report.historyFirstMismatch = seen.findIndex((b, i) => b !== `history ${i}`);
  // One more page reaches the room's creation, where the SDK learns there is nothing older.
  for (let more = 0; fresh.oldState.paginationToken !== null && more < 5; more += 1) {
    await withTimeout(later.scrollback(fresh, 100), 15000, "scrollback to the start");
  }
  report.historyStart = fresh.getLiveTimeline().getEvents()[0]?.getType();
  later.stopClient();
}

async function keysAndToDevice(alice, bob) {
  step("keys upload");
  const aliceId = alice.getUserId();
  const device = alice.getDeviceId();
  const deviceKeys = { user_id: aliceId, device_id: device, algorithms: ["m.olm.v1.curve25519-aes-sha2"],
                       keys: { [`curve25519:${device}`]: "c".repeat(43), [`ed25519:${device}`]: "e".repeat(43) } };
  // No crypto module here, so the keys go up through the SDK's authenticated request helper.
  const uploaded = await alice.http.authedRequest(sdk.Method.Post, "/keys/upload", undefined, {
    device_keys: deviceKeys, one_time_keys: { "curve25519:AAAAAQ": "o".repeat(43) } });
  report.otkCount = uploaded.one_time_key_counts?.curve25519;

  step("keys query");
  const queried = await bob.downloadKeysForUsers([aliceId]);
  const queriedDevice = queried.device_keys?.[aliceId]?.[device];
  report.queriedKeys = queriedDevice?.keys;
  report.queriedAlgorithms = queriedDevice?.algorithms;

  step("keys claim");
  const claimed = await bob.claimOneTimeKeys([[aliceId, device]], "curve25519");
  report.claimed = claimed.one_time_keys?.[aliceId]?.[device];
  const again = await bob.claimOneTimeKeys([[aliceId, device]], "curve25519");
  report.claimedAgain = again.one_time_keys?.[aliceId]?.[device] ?? {};

  step("to-device");
  const received = new Promise((resolve) => {
    alice.on(sdk.ClientEvent.ToDeviceEvent, (event) => {
      if (event.getType() === "m.test.ping") resolve(event);
    });
  });
  await bob.sendToDevice("m.test.ping", new Map([[aliceId, new Map([[device, { n: 1 }]])]]));
  const ping = await withTimeout(received, 15000, "to-device message to alice");
  report.toDevice = [ping.getType(), ping.getSender(), ping.getContent()];
}

function describe(err) {
  const parts = [String(err && err.stack || err)];
  if (err && err.httpStatus !== undefined) parts.push(`http ${err.httpStatus}`);
  if (err && err.url) parts.push(`url ${err.url}`);
  if (err && err.data) parts.push(`data ${JSON.stringify(err.data)}`);
  return parts.join(" | ");
}

let alice;
let bob;
let later;
let failed = false;
try {
  step("register");
  alice = await register(`alice${suffix}`);
  bob = await register(`bob${suffix}`);
  report.alice = alice.getUserId();
  report.bob = bob.getUserId();
  report.aliceDevice = alice.getDeviceId();

  const versions = await alice.getVersions();
  report.versions = versions.versions.includes("v1.5");
  step("create room");
  const { room_id: roomId } = await alice.createRoom({ name: "js room", invite: [bob.getUserId()] });
  report.roomId = roomId;
  step("start clients");
  await started(alice);
  await started(bob);

  step("invite");
  await until(() => bob.getRoom(roomId)?.getMyMembership() === "invite", 15000, "invite seen by bob");
  report.bobInvited = true;
  await bob.joinRoom(roomId);
  await until(() => alice.getRoom(roomId)?.getMember(bob.getUserId())?.membership === "join", 15000,
              "bob's join seen by alice");

  step("messages");
  const received = nextTimelineEvent(bob, roomId, (e) => e.getType() === "m.room.message");
  await alice.sendTextMessage(roomId, "hello from js");
  report.bobReceived = (await withTimeout(received, 15000, "message to bob")).getContent().body;

  const aliceSaw = nextTimelineEvent(alice, roomId,
    (e) => e.getType() === "m.room.message" && e.getSender() === bob.getUserId());
  const { event_id: reply } = await bob.sendTextMessage(roomId, "hi from bob");
  report.aliceReceived = (await withTimeout(aliceSaw, 15000, "reply to alice")).getContent().body;

  await conversation(alice, bob, roomId);
  await typingAndReceipt(alice, bob, roomId, reply);
  await media(alice, bob, roomId);
  await history(alice, bob, roomId);
  await keysAndToDevice(alice, bob);

  step("done");
  report.roomName = bob.getRoom(roomId).name;
  report.members = bob.getRoom(roomId).getJoinedMembers().map((m) => m.userId).sort();
} catch (err) {
  failed = true;
  report.error = describe(err);
} finally {
  alice?.stopClient();
  bob?.stopClient();
  later?.stopClient();
}
console.log(JSON.stringify(report));
process.exit(failed ? 1 : 0);

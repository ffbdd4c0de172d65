// Two matrix-js-sdk clients against a homeserver: register, create a room, invite, join,
// send, receive through the sync loop, typing, a read receipt, history. Prints one JSON
// object with what the clients saw. Usage: node scenario.mjs http://127.0.0.1:PORT
import * as sdk from "matrix-js-sdk";

const base = process.argv[2];
const suffix = Math.random().toString(16).slice(2, 8);
const report = {};

function withTimeout(promise, ms, what) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))]);
}

async function register(name) {
  const client = sdk.createClient({ baseUrl: base });
  const answer = await client.registerRequest({ username: name, password: `js password ${name}`,
                                                auth: { type: "m.login.dummy" } });
  return sdk.createClient({ baseUrl: base, accessToken: answer.access_token, userId: answer.user_id,
                            deviceId: answer.device_id });
}

async function started(client) {
  const ready = new Promise((resolve) => {
    client.on(sdk.ClientEvent.Sync, (state) => { if (state === "PREPARED") resolve(); });
  });
  await client.startClient({ initialSyncLimit: 10 });
  await withTimeout(ready, 20000, "initial sync");
}

const alice = await register(`alice${suffix}`);
const bob = await register(`bob${suffix}`);
report.alice = alice.getUserId();
report.bob = bob.getUserId();
try {
  const versions = await alice.getVersions();
  report.versions = versions.versions.includes("v1.5");
  const { room_id: roomId } = await alice.createRoom({ name: "js room", invite: [bob.getUserId()] });
  report.roomId = roomId;
  await started(alice);
  await started(bob);

  const invited = new Promise((resolve) => {
    const check = () => { const room = bob.getRoom(roomId); if (room && room.getMyMembership() === "invite") resolve(); };
    bob.on(sdk.RoomEvent.MyMembership, check); check();
  });
  await withTimeout(invited, 15000, "invite seen by bob");
  report.bobInvited = true;
  await bob.joinRoom(roomId);

  const received = new Promise((resolve) => {
    bob.on(sdk.RoomEvent.Timeline, (event, room) => {
      if (room && room.roomId === roomId && event.getType() === "m.room.message") resolve(event.getContent().body);
    });
  });
  await alice.sendTextMessage(roomId, "hello from js");
  report.bobReceived = await withTimeout(received, 15000, "message to bob");

  const aliceSaw = new Promise((resolve) => {
    alice.on(sdk.RoomEvent.Timeline, (event, room) => {
      if (room && room.roomId === roomId && event.getType() === "m.room.message" && event.getSender() === bob.getUserId()) {
        resolve(event.getContent().body);
      }
    });
  });
  const reply = await bob.sendTextMessage(roomId, "hi from bob");
  report.aliceReceived = await withTimeout(aliceSaw, 15000, "reply to alice");

  await bob.sendTyping(roomId, true, 10000);
  const typing = await withTimeout(new Promise((resolve) => {
    const poll = setInterval(() => {
      const member = alice.getRoom(roomId)?.getMember(bob.getUserId());
      if (member && member.typing) { clearInterval(poll); resolve(true); }
    }, 100);
  }), 15000, "typing");
  report.typingSeen = typing;

  const aliceRoom = alice.getRoom(roomId);
  const replyEvent = aliceRoom.findEventById(reply.event_id);
  await alice.sendReadReceipt(replyEvent);
  report.receiptSent = true;
  report.roomName = bob.getRoom(roomId).name;
  report.members = bob.getRoom(roomId).getJoinedMembers().map((m) => m.userId).sort();
} finally {
  alice.stopClient();
  bob.stopClient();
}
console.log(JSON.stringify(report));
process.exit(0);

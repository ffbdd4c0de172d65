"""Two matrix-nio clients against a homeserver, as a user would use them.

Run as a script: ``python nio_scenario.py http://127.0.0.1:PORT``. Prints one JSON object
with what the clients saw; the test asserts on it. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import io

from nio import (AsyncClient, DownloadResponse, JoinResponse, LoginResponse, RegisterResponse, RoomCreateResponse,
                 RoomMessagesResponse, RoomMessageText, RoomSendResponse, SyncResponse, ToDeviceMessage,
                 UploadResponse)
from nio.api import Api


async def register(base: str, name: str, password: str) -> AsyncClient:
    client = AsyncClient(base, name)
    answer = await client.register(name, password, device_name=f"{name}-nio")
    if not isinstance(answer, RegisterResponse):
        raise SystemExit(f"register {name} failed: {answer}")
    return client


async def main(base: str) -> dict:
    suffix = uuid.uuid4().hex[:6]
    alice = await register(base, f"alice{suffix}", "nio password one")
    bob = await register(base, f"bob{suffix}", "nio password two")
    report: dict = {"alice": alice.user_id, "bob": bob.user_id}
    try:
        # A fresh login works too (nio keeps the new token).
        login = await bob.login("nio password two", device_name="bob-second")
        report["login"] = isinstance(login, LoginResponse)

        created = await alice.room_create(name="nio room", topic="interop", invite=[bob.user_id])
        if not isinstance(created, RoomCreateResponse):
            raise SystemExit(f"create failed: {created}")
        room_id = created.room_id
        report["room_id"] = room_id

        first = await bob.sync(timeout=0, full_state=True)
        report["bob_invited"] = isinstance(first, SyncResponse) and room_id in first.rooms.invite
        joined = await bob.join(room_id)
        report["bob_joined"] = isinstance(joined, JoinResponse)

        await alice.sync(timeout=0, full_state=True)
        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello from nio"})
        report["sent"] = isinstance(sent, RoomSendResponse)

        seen: list[str] = []
        for _ in range(10):
            answer = await bob.sync(timeout=3000)
            if isinstance(answer, SyncResponse) and room_id in answer.rooms.join:
                seen += [e.body for e in answer.rooms.join[room_id].timeline.events if isinstance(e, RoomMessageText)]
            if "hello from nio" in seen:
                break
        report["bob_saw"] = seen
        room = bob.rooms.get(room_id)
        report["bob_room_name"] = room.name if room else None
        report["bob_room_topic"] = room.topic if room else None
        report["bob_room_members"] = sorted(room.users) if room else []

        await bob.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hi alice"})
        history = await alice.room_messages(room_id, start="", limit=20)
        if isinstance(history, RoomMessagesResponse):
            report["history"] = [e.body for e in history.chunk if isinstance(e, RoomMessageText)]
        await alice.set_displayname("Alice Nio")
        profile = await bob.get_profile(alice.user_id)
        report["alice_displayname"] = getattr(profile, "displayname", None)
        whoami = await bob.whoami()
        report["whoami"] = getattr(whoami, "user_id", None)
        report.update(await conversation(alice, bob, room_id))
        report.update(await media_and_history(alice, bob, room_id))
        report.update(await keys_and_to_device(alice, bob))
    finally:
        await alice.close()
        await bob.close()
    return report


async def send(client: AsyncClient, room_id: str, content: dict, event_type: str = "m.room.message") -> str:
    answer = await client.room_send(room_id, event_type, content)
    if not isinstance(answer, RoomSendResponse):
        raise SystemExit(f"send failed: {answer}")
    return answer.event_id


async def relations_of(client: AsyncClient, room_id: str, event_id: str, rel_type: str) -> list[dict]:
    path = Api._build_path(["rooms", room_id, "relations", event_id, rel_type], {"access_token": client.access_token},
                           base_path="/_matrix/client/v1")
    answer = await client.send("GET", path)
    return (await answer.json())["chunk"]


async def conversation(alice: AsyncClient, bob: AsyncClient, room_id: str) -> dict:
    """Edit, react, reply in a thread, redact, typing and a read receipt."""
    report: dict = {}
    original = await send(alice, room_id, {"msgtype": "m.text", "body": "helo"})
    await send(alice, room_id, {"msgtype": "m.text", "body": "* hello", "m.new_content": {
        "msgtype": "m.text", "body": "hello"}, "m.relates_to": {"rel_type": "m.replace", "event_id": original}})
    await send(bob, room_id, {"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": "👍"}},
               "m.reaction")
    reply = await send(bob, room_id, {"msgtype": "m.text", "body": "in a thread", "m.relates_to": {
        "rel_type": "m.thread", "event_id": original, "is_falling_back": True,
        "m.in_reply_to": {"event_id": original}}})
    fetched = await bob.room_get_event(room_id, original)
    relations = fetched.event.source.get("unsigned", {}).get("m.relations", {})
    report["edit_bundled"] = "m.replace" in relations
    report["thread_count"] = relations.get("m.thread", {}).get("count")
    report["reactions"] = [e["content"]["m.relates_to"]["key"] for e in
                           await relations_of(alice, room_id, original, "m.annotation")]
    mistake = await send(bob, room_id, {"msgtype": "m.text", "body": "oops"})
    await bob.room_redact(room_id, mistake, reason="typo")
    redacted = await alice.room_get_event(room_id, mistake)
    report["redacted_content"] = redacted.event.source.get("content")

    since = alice.next_batch
    await bob.room_typing(room_id, True, 10000)
    await bob.update_receipt_marker(room_id, reply)
    typing, receipts = [], []
    for _ in range(5):
        answer = await alice.sync(timeout=2000, since=since)
        since = answer.next_batch
        for event in answer.rooms.join.get(room_id, None).ephemeral if room_id in answer.rooms.join else []:
            kind = type(event).__name__
            if kind == "TypingNoticeEvent":
                typing += event.users
            if kind == "ReceiptEvent":
                receipts += [(r.user_id, r.event_id) for r in event.receipts]
        if typing and receipts:
            break
    report["typing_seen"] = bob.user_id in typing
    report["receipt_seen"] = (bob.user_id, reply) in receipts
    return report


async def media_and_history(alice: AsyncClient, bob: AsyncClient, room_id: str) -> dict:
    """Upload and download an image; page back through 500 messages."""
    report: dict = {}
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
           b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99=\x1d\x00"
           b"\x00\x00\x00IEND\xaeB`\x82")
    uploaded, _ = await alice.upload(io.BytesIO(png), content_type="image/png", filename="dot.png",
                                     filesize=len(png))
    report["uploaded"] = isinstance(uploaded, UploadResponse)
    await send(alice, room_id, {"msgtype": "m.image", "body": "dot.png", "url": uploaded.content_uri,
                                "info": {"mimetype": "image/png", "size": len(png)}})
    downloaded = await bob.download(uploaded.content_uri)
    report["downloaded_same"] = isinstance(downloaded, DownloadResponse) and downloaded.body == png

    for i in range(500):
        await send(alice if i % 2 else bob, room_id, {"msgtype": "m.text", "body": f"history {i}"})
    seen: list[str] = []
    token = ""
    for _ in range(40):
        page = await bob.room_messages(room_id, start=token, limit=50)
        if not isinstance(page, RoomMessagesResponse):
            raise SystemExit(f"messages failed: {page}")
        seen += [e.body for e in page.chunk if isinstance(e, RoomMessageText) and e.body.startswith("history ")]
        if not page.end or not page.chunk:
            break
        token = page.end
    report["history_count"] = len(seen)
    report["history_in_order"] = seen == [f"history {i}" for i in range(499, -1, -1)]
    return report


async def keys_and_to_device(alice: AsyncClient, bob: AsyncClient) -> dict:
    """Device keys uploaded by one, queried and claimed by the other; a to-device message."""
    report: dict = {}

    async def call(client, method, path, body):
        full = Api._build_path(path, {"access_token": client.access_token})
        answer = await client.send(method, full, json.dumps(body), headers={"Content-Type": "application/json"})
        return await answer.json()

    device_keys = {"user_id": alice.user_id, "device_id": alice.device_id,
                   "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
                   "keys": {f"curve25519:{alice.device_id}": "c" * 43, f"ed25519:{alice.device_id}": "e" * 43}}
    uploaded = await call(alice, "POST", ["keys", "upload"], {
        "device_keys": device_keys, "one_time_keys": {"curve25519:AAAAAQ": "o" * 43}})
    report["otk_count"] = uploaded.get("one_time_key_counts", {}).get("curve25519")
    queried = await call(bob, "POST", ["keys", "query"], {"device_keys": {alice.user_id: []}})
    report["queried_device"] = alice.device_id in queried.get("device_keys", {}).get(alice.user_id, {})
    claimed = await call(bob, "POST", ["keys", "claim"], {"one_time_keys": {alice.user_id: {alice.device_id:
                                                                                            "curve25519"}}})
    report["claimed"] = bool(claimed.get("one_time_keys", {}).get(alice.user_id, {}).get(alice.device_id))

    since = alice.next_batch
    await bob.to_device(ToDeviceMessage("m.test.ping", alice.user_id, alice.device_id, {"n": 1}))
    received = []
    for _ in range(5):
        answer = await alice.sync(timeout=2000, since=since)
        since = answer.next_batch
        received += [e.source for e in answer.to_device_events]
        if received:
            break
    report["to_device"] = [(e.get("type"), e.get("sender"), e.get("content")) for e in received]
    return report


if __name__ == "__main__":
    result = asyncio.run(asyncio.wait_for(main(sys.argv[1]), timeout=120))
    print(json.dumps(result))

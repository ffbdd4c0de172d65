"""Two matrix-nio clients against a homeserver, as a user would use them.

Run as a script: ``python nio_scenario.py http://127.0.0.1:PORT``. Prints one JSON object
with what the clients saw; the test asserts on it. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

from nio import (AsyncClient, JoinResponse, LoginResponse, RegisterResponse, RoomCreateResponse,
                 RoomMessagesResponse, RoomMessageText, RoomSendResponse, SyncResponse)


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
    finally:
        await alice.close()
        await bob.close()
    return report


if __name__ == "__main__":
    result = asyncio.run(asyncio.wait_for(main(sys.argv[1]), timeout=120))
    print(json.dumps(result))

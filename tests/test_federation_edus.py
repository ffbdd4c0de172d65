"""EDUs across homeservers: typing, read receipts, presence and to-device messages over
real federation (two in-process servers, TLS on loopback, both database engines), and
EDUs that speak for another server's users being ignored."""

from __future__ import annotations

import time

from twisted.internet.task import Clock as FakeReactor
from twisted.trial import unittest

from homeserver.clock import Clock
from homeserver.handlers.typing import REMOTE_TIMEOUT_MS, TypingHandler
from homeserver.notifier import Notifier
from tests.support.federation import TwoServerTestCase, path_id
from tests.support.server import inline


async def sync(peer, token: str) -> dict:
    # set_presence=offline: reading does not change the reader's presence.
    status, body = await peer.request("GET", "/_matrix/client/v3/sync?timeout=0&set_presence=offline", token=token)
    if status != 200:
        raise AssertionError(f"sync on {peer.server_name}: {status} {body}")
    return body


async def ephemeral(peer, token: str, room_id: str, event_type: str) -> list[dict]:
    body = await sync(peer, token)
    room = body["rooms"]["join"].get(room_id, {})
    return [e["content"] for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]


async def typing_users(peer, token: str, room_id: str) -> list[str]:
    return [u for content in await ephemeral(peer, token, room_id, "m.typing") for u in content["user_ids"]]


async def presence_of(peer, token: str, user_id: str) -> dict | None:
    events = (await sync(peer, token))["presence"]["events"]
    return next((e["content"] for e in events if e["sender"] == user_id), None)


async def to_device_events(peer, token: str) -> list[dict]:
    return (await sync(peer, token))["to_device"]["events"]


async def device_of(peer, token: str) -> str:
    status, body = await peer.request("GET", "/_matrix/client/v3/account/whoami", token=token)
    if status != 200:
        raise AssertionError(f"whoami: {status} {body}")
    return body["device_id"]


class TwoServerEduTests(TwoServerTestCase):
    @inline
    async def setUp(self):
        await super().setUp()
        self.room_id = await self.a.create_room(self.alice, preset="public_chat")
        status, body = await self.b.join(self.bob, self.room_id, via=[self.a.server_name])
        self.assertEqual(status, 200, body)

        async def bob_joined_on_a():
            state = await self.a.state(self.alice, self.room_id)
            return any(e["type"] == "m.room.member" and e["state_key"] == self.bob_id
                       and e["content"]["membership"] == "join" for e in state)
        await self.a.wait_for(bob_joined_on_a, what="bob's join")

    async def set_typing(self, peer, token: str, user_id: str, typing: bool) -> None:
        status, body = await peer.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/typing/{path_id(user_id)}",
            {"typing": typing, "timeout": 30_000}, token=token)
        self.assertEqual(status, 200, body)

    async def receipt(self, peer, token: str, receipt_type: str, event_id: str) -> None:
        status, body = await peer.request(
            "POST", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/receipt/{receipt_type}/{path_id(event_id)}",
            {}, token=token)
        self.assertEqual(status, 200, body)

    @inline
    async def test_typing_on_b_shows_on_a_and_stops(self):
        await self.set_typing(self.b, self.bob, self.bob_id, True)

        async def bob_typing():
            return self.bob_id in await typing_users(self.a, self.alice, self.room_id)
        await self.a.wait_for(bob_typing, what="bob typing")

        await self.set_typing(self.b, self.bob, self.bob_id, False)

        async def bob_stopped():
            return self.bob_id not in await typing_users(self.a, self.alice, self.room_id)
        await self.a.wait_for(bob_stopped, what="bob no longer typing")

    @inline
    async def test_read_receipt_on_a_shows_on_b_private_stays(self):
        sent = []
        sender = self.a.hs.federation_sender
        original = sender.send_edu

        def recording(destination, edu_type, content):
            sent.append((destination, edu_type, content))
            return original(destination, edu_type, content)
        self.patch(sender, "send_edu", recording)

        first = await self.a.send_text(self.alice, self.room_id, "first")
        second = await self.a.send_text(self.alice, self.room_id, "second")
        await self.b.wait_for_event(self.bob, self.room_id, second)
        await self.receipt(self.a, self.alice, "m.read.private", second)
        await self.receipt(self.a, self.alice, "m.read", first)

        async def alice_read():
            for content in await ephemeral(self.b, self.bob, self.room_id, "m.receipt"):
                found = content.get(first, {}).get("m.read", {}).get(self.alice_id)
                if found:
                    return found
            return None
        data = await self.b.wait_for(alice_read, what="alice's read receipt")
        self.assertIsInstance(data["ts"], int)

        receipts = [c for _, t, c in sent if t == "m.receipt"]
        self.assertTrue(receipts)
        for content in receipts:
            self.assertEqual(set(content[self.room_id]), {"m.read"}, content)
        # Nor does the private one show on B.
        for content in await ephemeral(self.b, self.bob, self.room_id, "m.receipt"):
            self.assertNotIn(second, content)

    @inline
    async def test_presence_on_b_shows_on_a(self):
        status, body = await self.b.request("PUT", f"/_matrix/client/v3/presence/{path_id(self.bob_id)}/status",
                                            {"presence": "unavailable", "status_msg": "out for lunch"},
                                            token=self.bob)
        self.assertEqual(status, 200, body)

        async def bob_away():
            content = await presence_of(self.a, self.alice, self.bob_id)
            return content if content and content.get("status_msg") == "out for lunch" else None
        content = await self.a.wait_for(bob_away, what="bob's presence")
        self.assertEqual(content["presence"], "unavailable")
        self.assertIsInstance(content["last_active_ago"], int)

    @inline
    async def test_to_device_from_a_to_b(self):
        bob_device = await device_of(self.b, self.bob)
        for txn, device, number in (("one", bob_device, 1), ("all", "*", 2)):
            status, body = await self.a.request(
                "PUT", f"/_matrix/client/v3/sendToDevice/m.test.ping/{txn}",
                {"messages": {self.bob_id: {device: {"n": number}}}}, token=self.alice)
            self.assertEqual(status, 200, body)

        async def both_arrived():
            events = await to_device_events(self.b, self.bob)
            return events if len(events) >= 2 else None
        events = await self.b.wait_for(both_arrived, what="the to-device messages")
        self.assertEqual(events, [{"sender": self.alice_id, "type": "m.test.ping", "content": {"n": 1}},
                                  {"sender": self.alice_id, "type": "m.test.ping", "content": {"n": 2}}])

    @inline
    async def test_edus_about_another_servers_users_are_ignored(self):
        event_id = await self.a.send_text(self.alice, self.room_id, "hello")
        await self.b.wait_for_event(self.bob, self.room_id, event_id)
        alice_device = await device_of(self.a, self.alice)
        stranger = self.b.user_id("stranger")  # of B, but not in the room
        edus = [
            # B speaking for A's alice: every one of these is forged.
            {"edu_type": "m.typing", "content": {"room_id": self.room_id, "user_id": self.alice_id, "typing": True}},
            {"edu_type": "m.receipt", "content": {self.room_id: {"m.read": {
                self.alice_id: {"event_ids": [event_id], "data": {"ts": 1}}}}}},
            {"edu_type": "m.presence", "content": {"push": [
                {"user_id": self.alice_id, "presence": "online", "last_active_ago": 0, "status_msg": "forged"}]}},
            {"edu_type": "m.direct_to_device", "content": {
                "sender": self.alice_id, "type": "m.forged", "message_id": "forged-1",
                "messages": {self.alice_id: {alice_device: {"forged": True}}}}},
            # B's own user, but not joined: ignored too.
            {"edu_type": "m.typing", "content": {"room_id": self.room_id, "user_id": stranger, "typing": True}},
            {"edu_type": "m.receipt", "content": {self.room_id: {"m.read": {
                stranger: {"event_ids": [event_id], "data": {"ts": 1}}}}}},
            # And one that is genuine, to show the transaction was taken.
            {"edu_type": "m.typing", "content": {"room_id": self.room_id, "user_id": self.bob_id, "typing": True}},
        ]
        answer = await self.b.hs.federation_client.put_json(
            self.a.server_name, f"/_matrix/federation/v1/send/forged-{time.monotonic_ns()}",
            {"origin": self.b.server_name, "origin_server_ts": int(time.time() * 1000), "pdus": [], "edus": edus})
        self.assertEqual(answer, {"pdus": {}})

        # A handles a transaction's EDUs before it answers: what shows now is all there is.
        self.assertEqual(await typing_users(self.a, self.alice, self.room_id), [self.bob_id])
        for content in await ephemeral(self.a, self.alice, self.room_id, "m.receipt"):
            readers = set(content.get(event_id, {}).get("m.read", {}))
            self.assertNotIn(self.alice_id, readers)
            self.assertNotIn(stranger, readers)
        status, presence = await self.a.request(
            "GET", f"/_matrix/client/v3/presence/{path_id(self.alice_id)}/status", token=self.alice)
        self.assertEqual(status, 200, presence)
        self.assertNotEqual(presence.get("status_msg"), "forged")
        self.assertIsNone(await presence_of(self.a, self.alice, self.alice_id))
        self.assertEqual(await to_device_events(self.a, self.alice), [])


class TwoServerEduPostgresTests(TwoServerEduTests):
    engine = "postgres"


class RemoteTypingTests(unittest.TestCase):
    """Remote typing runs out by itself, and only local typing is told to the listeners."""

    def setUp(self):
        self.reactor = FakeReactor()
        self.typing = TypingHandler(Clock(self.reactor), Notifier())
        self.told = []
        self.typing.add_listener(lambda room_id, user_id, typing: self.told.append((room_id, user_id, typing)))

    def test_remote_typing_expires_without_update(self):
        self.typing.set_remote_typing("!r:a", "@bob:b", True)
        self.reactor.advance(REMOTE_TIMEOUT_MS / 1000 - 1)
        self.assertEqual(self.typing.typing_in("!r:a"), ["@bob:b"])
        self.typing.set_remote_typing("!r:a", "@bob:b", True)  # a refresh restarts the timeout
        self.reactor.advance(REMOTE_TIMEOUT_MS / 1000 - 1)
        self.assertEqual(self.typing.typing_in("!r:a"), ["@bob:b"])
        self.reactor.advance(2)
        self.assertEqual(self.typing.typing_in("!r:a"), [])
        self.assertEqual(self.told, [])

    def test_local_typing_and_its_expiry_are_told(self):
        self.typing.set_typing("!r:a", "@alice:a", True, 5_000)
        self.reactor.advance(6)
        self.assertEqual(self.typing.typing_in("!r:a"), [])
        self.assertEqual(self.told, [("!r:a", "@alice:a", True), ("!r:a", "@alice:a", False)])
        self.typing.set_typing("!r:a", "@alice:a", False)  # not typing: no change, nothing told
        self.assertEqual(len(self.told), 2)

"""Three Drocsid homeservers, each in its own process: a room on A joined from B and C.
Messages, edits, reactions, redactions, typing, receipts and presence reach everyone;
B is stopped while A and C keep talking, restarted, and catches up with no gap."""

from __future__ import annotations

from twisted.trial import unittest

from tests.support.federation import ProcessPeer, path_id
from tests.support.server import inline
from tests.support.synapse import free_ports


class ThreeServerTests(unittest.TestCase):
    engine = "sqlite"
    timeout = 300

    @inline
    async def setUp(self):
        ports = free_ports(3)
        self.a, self.b, self.c = (ProcessPeer(self, n, self.engine, p) for n, p in zip("abc", ports))
        for peer in (self.a, self.b, self.c):
            await peer.start()
        self.alice = await self.a.register("alice")
        self.bob = await self.b.register("bob")
        self.carol = await self.c.register("carol")
        self.room_id = await self.a.create_room(self.alice, preset="public_chat", name="three servers")
        for peer, token in ((self.b, self.bob), (self.c, self.carol)):
            status, body = await peer.join(token, self.room_id, via=[self.a.server_name])
            self.assertEqual(status, 200, body)
        # Everyone sees everyone joined before the test starts.
        for peer, token in ((self.a, self.alice), (self.b, self.bob), (self.c, self.carol)):
            await peer.wait_for(lambda p=peer, t=token: self._all_joined(p, t), what="all three joined")

    async def _all_joined(self, peer, token) -> bool:
        state = await peer.state(token, self.room_id)
        joined = {e["state_key"] for e in state if e["type"] == "m.room.member"
                  and e["content"].get("membership") == "join"}
        return joined == {self.a.user_id("alice"), self.b.user_id("bob"), self.c.user_id("carol")}

    def _everyone(self):
        return ((self.a, self.alice), (self.b, self.bob), (self.c, self.carol))

    async def _send(self, peer, token, event_type, content, txn):
        status, body = await peer.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/send/{event_type}/{txn}", content, token=token)
        self.assertEqual(status, 200, body)
        return body["event_id"]

    async def _sync_has(self, peer, token, check) -> bool:
        status, body = await peer.request("GET", "/_matrix/client/v3/sync?timeout=0", token=token)
        return status == 200 and check(body)

    @inline
    async def test_room_activity_reaches_every_server(self):
        message = await self.b.send_text(self.bob, self.room_id, "first draft")
        edit = await self._send(self.c, self.carol, "m.room.message", {
            "msgtype": "m.text", "body": "* carol's own", "m.new_content": {"msgtype": "m.text", "body": "x"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": message}}, "edit-foreign")
        own_edit = await self._send(self.b, self.bob, "m.room.message", {
            "msgtype": "m.text", "body": "* final draft",
            "m.new_content": {"msgtype": "m.text", "body": "final draft"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": message}}, "edit1")
        reaction = await self._send(self.a, self.alice, "m.reaction", {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": message, "key": "👍"}}, "react1")
        doomed = await self.c.send_text(self.carol, self.room_id, "oops, wrong room")
        status, body = await self.c.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/redact/{path_id(doomed)}/r1",
            {"reason": "mistake"}, token=self.carol)
        self.assertEqual(status, 200, body)
        redaction = body["event_id"]

        for peer, token in self._everyone():
            for event_id in (message, edit, own_edit, reaction, redaction):
                await peer.wait_for_event(token, self.room_id, event_id)
            seen = await peer.wait_for_event(token, self.room_id, own_edit)
            self.assertEqual(seen["content"]["m.new_content"]["body"], "final draft")
            seen = await peer.wait_for_event(token, self.room_id, reaction)
            self.assertEqual(seen["content"]["m.relates_to"]["key"], "👍")

            async def redacted(p=peer, t=token):
                event = await p.wait_for_event(t, self.room_id, doomed)
                return event["content"] == {}
            await peer.wait_for(redacted, what="the redaction applied")

        # Typing on A, a receipt on C and presence on B reach the other two.
        status, body = await self.a.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/typing/{path_id(self.a.user_id('alice'))}",
            {"typing": True, "timeout": 30000}, token=self.alice)
        self.assertEqual(status, 200, body)
        status, body = await self.c.request(
            "POST", f"/_matrix/client/v3/rooms/{path_id(self.room_id)}/receipt/m.read/{path_id(message)}", {},
            token=self.carol)
        self.assertEqual(status, 200, body)
        status, body = await self.b.request(
            "PUT", f"/_matrix/client/v3/presence/{path_id(self.b.user_id('bob'))}/status",
            {"presence": "online", "status_msg": "on b"}, token=self.bob)
        self.assertEqual(status, 200, body)

        def ephemeral(body, event_type):
            room = body["rooms"]["join"].get(self.room_id, {})
            return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]

        def typing_alice(body):
            return any(self.a.user_id("alice") in e["content"]["user_ids"] for e in ephemeral(body, "m.typing"))

        def receipt_carol(body):
            return any(self.c.user_id("carol") in e["content"].get(message, {}).get("m.read", {})
                       for e in ephemeral(body, "m.receipt"))

        def presence_bob(body):
            return any(e["sender"] == self.b.user_id("bob") and e["content"].get("status_msg") == "on b"
                       for e in body.get("presence", {}).get("events", []))

        for peer, token in ((self.b, self.bob), (self.c, self.carol)):
            await peer.wait_for(lambda p=peer, t=token: self._sync_has(p, t, typing_alice), what="alice typing")
        for peer, token in ((self.a, self.alice), (self.b, self.bob)):
            await peer.wait_for(lambda p=peer, t=token: self._sync_has(p, t, receipt_carol), what="carol's receipt")
        for peer, token in ((self.a, self.alice), (self.c, self.carol)):
            await peer.wait_for(lambda p=peer, t=token: self._sync_has(p, t, presence_bob), what="bob's presence")

    @inline
    async def test_stopped_server_catches_up_with_no_gap(self):
        before = await self.a.send_text(self.alice, self.room_id, "before the outage")
        await self.b.wait_for_event(self.bob, self.room_id, before)
        await self.b.stop()

        sent = []
        for index in range(30):
            peer, token = (self.a, self.alice) if index % 2 == 0 else (self.c, self.carol)
            sent.append(await peer.send_text(token, self.room_id, f"while b is down {index}"))
        await self.a.wait_for_event(self.alice, self.room_id, sent[-1])
        await self.c.wait_for_event(self.carol, self.room_id, sent[-2])

        await self.b.start()
        for event_id in sent:
            await self.b.wait_for_event(self.bob, self.room_id, event_id, timeout=60)
        # No gap: B's timeline holds every message once. (Its order is B's arrival order,
        # as on any homeserver: A's and C's messages may interleave differently.)
        bodies = [e["content"].get("body") for e in await self.b.messages(self.bob, self.room_id, limit=200)
                  if e["type"] == "m.room.message"]
        missed = [f"while b is down {i}" for i in range(30)]
        self.assertEqual(sorted(b for b in bodies if b in missed), sorted(missed))
        # Each server's own messages keep their order.
        from_a = [b for b in bodies if b in missed[0::2]]
        self.assertEqual(from_a, missed[0::2])

        after = await self.b.send_text(self.bob, self.room_id, "back again")
        for peer, token in ((self.a, self.alice), (self.c, self.carol)):
            await peer.wait_for_event(token, self.room_id, after)


class ThreeServerPostgresTests(ThreeServerTests):
    engine = "postgres"

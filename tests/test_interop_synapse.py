"""Federation with Synapse, software we did not write: a real Synapse (pip
``matrix-synapse``) on loopback with self-signed TLS, and a Drocsid homeserver. Users of
each join the other's rooms, talk, invite and ban across the two."""

from __future__ import annotations

import os

from twisted.trial import unittest

from tests.support.federation import Peer, path_id, start_peers
from tests.support.server import inline
from tests.support.synapse import SynapseProcess, synapse_available


class SynapsePeer(Peer):
    def __init__(self, synapse: SynapseProcess):
        self.synapse = synapse
        self.client = synapse.client
        self.server_name = synapse.server_name

    async def register(self, localpart: str) -> str:
        _user_id, token = await self.synapse.register(localpart)
        return token


async def _member_state(peer: Peer, token: str, room_id: str, user_id: str) -> str | None:
    status, body = await peer.request(
        "GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/state/m.room.member/{path_id(user_id)}", token=token)
    return body.get("membership") if status == 200 else None


class SynapseInteropTests(unittest.TestCase):
    engine = "sqlite"
    timeout = 300

    @inline
    async def setUp(self):
        reason = synapse_available()
        if reason:
            raise unittest.SkipTest(reason)
        synapse = SynapseProcess(os.path.abspath(self.mktemp()))
        self.addCleanup(synapse.cleanup)
        await synapse.start()
        self.s = SynapsePeer(synapse)
        (self.d,) = await start_peers(self, 1, self.engine)
        self.alice = await self.d.register("alice")
        self.sam = await self.s.register("sam")

    async def _wait_member(self, peer, token, room_id, user_id, membership):
        async def probe():
            return await _member_state(peer, token, room_id, user_id) == membership
        await peer.wait_for(probe, what=f"{user_id} {membership} in {room_id}")

    @inline
    async def test_synapse_user_joins_a_drocsid_room(self):
        room_id = await self.d.create_room(self.alice, preset="public_chat", name="drocsid room")
        status, body = await self.s.join(self.sam, room_id, via=[self.d.server_name])
        self.assertEqual(status, 200, body)
        await self._wait_member(self.d, self.alice, room_id, self.s.user_id("sam"), "join")

        from_sam = await self.s.send_text(self.sam, room_id, "hi from synapse")
        event = await self.d.wait_for_event(self.alice, room_id, from_sam)
        self.assertEqual(event["content"]["body"], "hi from synapse")
        from_alice = await self.d.send_text(self.alice, room_id, "hi from drocsid")
        event = await self.s.wait_for_event(self.sam, room_id, from_alice)
        self.assertEqual(event["content"]["body"], "hi from drocsid")

        # A ban on Drocsid's side holds on Synapse's: sam can no longer send there.
        status, body = await self.d.request("POST", f"/_matrix/client/v3/rooms/{path_id(room_id)}/ban",
                                            {"user_id": self.s.user_id("sam"), "reason": "test"}, token=self.alice)
        self.assertEqual(status, 200, body)

        async def sam_sees_the_ban():
            # Synapse shows a banned user no room state; the room leaves their joined rooms.
            status, body = await self.s.request("GET", "/_matrix/client/v3/joined_rooms", token=self.sam)
            return status == 200 and room_id not in body["joined_rooms"]
        await self.s.wait_for(sam_sees_the_ban, what="the ban on synapse")
        status, body = await self.s.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room_id)}/send/m.room.message/after-ban",
            {"msgtype": "m.text", "body": "am I still here"}, token=self.sam)
        self.assertEqual(status, 403, body)

    @inline
    async def test_drocsid_user_joins_a_synapse_room(self):
        room_id = await self.s.create_room(self.sam, preset="public_chat", name="synapse room")
        status, body = await self.d.join(self.alice, room_id, via=[self.s.server_name])
        self.assertEqual(status, 200, body)
        await self._wait_member(self.s, self.sam, room_id, self.d.user_id("alice"), "join")

        from_alice = await self.d.send_text(self.alice, room_id, "hello synapse")
        event = await self.s.wait_for_event(self.sam, room_id, from_alice)
        self.assertEqual(event["content"]["body"], "hello synapse")
        from_sam = await self.s.send_text(self.sam, room_id, "hello drocsid")
        event = await self.d.wait_for_event(self.alice, room_id, from_sam)
        self.assertEqual(event["content"]["body"], "hello drocsid")

        status, body = await self.s.request("POST", f"/_matrix/client/v3/rooms/{path_id(room_id)}/ban",
                                            {"user_id": self.d.user_id("alice")}, token=self.sam)
        self.assertEqual(status, 200, body)
        await self._wait_member(self.d, self.alice, room_id, self.d.user_id("alice"), "ban")
        status, body = await self.d.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room_id)}/send/m.room.message/after-ban",
            {"msgtype": "m.text", "body": "still here?"}, token=self.alice)
        self.assertEqual(status, 403, body)

    @inline
    async def test_edits_reactions_redactions_typing_and_receipts(self):
        room_id = await self.d.create_room(self.alice, preset="public_chat")
        status, body = await self.s.join(self.sam, room_id, via=[self.d.server_name])
        self.assertEqual(status, 200, body)
        await self._wait_member(self.d, self.alice, room_id, self.s.user_id("sam"), "join")
        original = await self.s.send_text(self.sam, room_id, "typo")
        status, body = await self.s.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room_id)}/send/m.room.message/edit1",
            {"msgtype": "m.text", "body": "* fixed", "m.new_content": {"msgtype": "m.text", "body": "fixed"},
             "m.relates_to": {"rel_type": "m.replace", "event_id": original}}, token=self.sam)
        self.assertEqual(status, 200, body)
        edit = body["event_id"]
        status, body = await self.d.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room_id)}/send/m.reaction/r1",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": "🎉"}}, token=self.alice)
        self.assertEqual(status, 200, body)
        reaction = body["event_id"]
        seen = await self.d.wait_for_event(self.alice, room_id, edit)
        self.assertEqual(seen["content"]["m.new_content"]["body"], "fixed")
        seen = await self.s.wait_for_event(self.sam, room_id, reaction)
        self.assertEqual(seen["content"]["m.relates_to"]["key"], "🎉")

        status, body = await self.s.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room_id)}/redact/{path_id(original)}/red1", {},
            token=self.sam)
        self.assertEqual(status, 200, body)

        async def redacted_on_drocsid():
            event = await self.d.wait_for_event(self.alice, room_id, original)
            return event["content"] == {}
        await self.d.wait_for(redacted_on_drocsid, what="sam's redaction on drocsid")

        # Typing from Synapse shows in Drocsid's sync; a read receipt from Drocsid in Synapse's.
        status, body = await self.s.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room_id)}/typing/{path_id(self.s.user_id('sam'))}",
            {"typing": True, "timeout": 30000}, token=self.sam)
        self.assertEqual(status, 200, body)
        status, body = await self.d.request(
            "POST", f"/_matrix/client/v3/rooms/{path_id(room_id)}/receipt/m.read/{path_id(edit)}", {},
            token=self.alice)
        self.assertEqual(status, 200, body)

        def ephemeral(body, event_type):
            room = body.get("rooms", {}).get("join", {}).get(room_id, {})
            return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]

        async def sam_typing():
            status, body = await self.d.request("GET", "/_matrix/client/v3/sync?timeout=0", token=self.alice)
            return any(self.s.user_id("sam") in e["content"]["user_ids"] for e in ephemeral(body, "m.typing"))
        await self.d.wait_for(sam_typing, what="sam typing on drocsid")

        async def alice_read():
            status, body = await self.s.request("GET", "/_matrix/client/v3/sync?timeout=0", token=self.sam)
            return any(self.d.user_id("alice") in e["content"].get(edit, {}).get("m.read", {})
                       for e in ephemeral(body, "m.receipt"))
        await self.s.wait_for(alice_read, what="alice's receipt on synapse")

    @inline
    async def test_room_version_12_both_ways(self):
        # v12 room IDs carry no server name: joins go through ?via=.
        synapse_room = await self.s.create_room(self.sam, preset="public_chat", room_version="12")
        status, body = await self.d.join(self.alice, synapse_room, via=[self.s.server_name])
        self.assertEqual(status, 200, body)
        message = await self.d.send_text(self.alice, synapse_room, "v12 from drocsid")
        event = await self.s.wait_for_event(self.sam, synapse_room, message)
        self.assertEqual(event["content"]["body"], "v12 from drocsid")

        drocsid_room = await self.d.create_room(self.alice, preset="public_chat", room_version="12")
        status, body = await self.s.join(self.sam, drocsid_room, via=[self.d.server_name])
        self.assertEqual(status, 200, body)
        message = await self.s.send_text(self.sam, drocsid_room, "v12 from synapse")
        event = await self.d.wait_for_event(self.alice, drocsid_room, message)
        self.assertEqual(event["content"]["body"], "v12 from synapse")

    @inline
    async def test_invites_flow_both_ways(self):
        async def invite(peer, token, room_id, user_id):
            status, body = await peer.request("POST", f"/_matrix/client/v3/rooms/{path_id(room_id)}/invite",
                                              {"user_id": user_id}, token=token)
            self.assertEqual(status, 200, body)

        async def wait_invite(peer, token, room_id):
            async def probe():
                status, body = await peer.request("GET", "/_matrix/client/v3/sync?timeout=0", token=token)
                return status == 200 and room_id in body["rooms"]["invite"]
            await peer.wait_for(probe, what=f"invite to {room_id}")

        drocsid_room = await self.d.create_room(self.alice, preset="private_chat")
        await invite(self.d, self.alice, drocsid_room, self.s.user_id("sam"))
        await wait_invite(self.s, self.sam, drocsid_room)
        status, body = await self.s.join(self.sam, drocsid_room)
        self.assertEqual(status, 200, body)
        message = await self.s.send_text(self.sam, drocsid_room, "accepted yours")
        await self.d.wait_for_event(self.alice, drocsid_room, message)

        synapse_room = await self.s.create_room(self.sam, preset="private_chat")
        await invite(self.s, self.sam, synapse_room, self.d.user_id("alice"))
        await wait_invite(self.d, self.alice, synapse_room)
        status, body = await self.d.join(self.alice, synapse_room)
        self.assertEqual(status, 200, body)
        message = await self.d.send_text(self.alice, synapse_room, "accepted yours too")
        await self.s.wait_for_event(self.sam, synapse_room, message)


class SynapseInteropPostgresTests(SynapseInteropTests):
    engine = "postgres"

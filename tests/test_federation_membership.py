"""Membership across servers beyond a plain join: restricted joins authorised by the
resident, knocking, declining an invite (make_leave/send_leave), and server ACLs."""

from __future__ import annotations

from twisted.trial import unittest

from tests.support.federation import path_id, start_peers
from tests.support.server import inline


class FederatedMembershipTests(unittest.TestCase):
    engine = "sqlite"
    timeout = 120

    @inline
    async def setUp(self):
        # B is named after localhost, A after 127.0.0.1: a server ACL can tell them apart.
        self.a, self.b = await start_peers(self, 2, self.engine, hosts=["127.0.0.1", "localhost"])
        self.alice = await self.a.register("alice")
        self.bob = await self.b.register("bob")
        self.bob_id = self.b.user_id("bob")

    async def _membership(self, peer, token, room_id, user_id):
        status, body = await peer.request(
            "GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/state/m.room.member/{path_id(user_id)}", token=token)
        return body.get("membership") if status == 200 else None

    async def _wait_membership(self, peer, token, room_id, user_id, membership):
        async def probe():
            return await self._membership(peer, token, room_id, user_id) == membership
        await peer.wait_for(probe, what=f"{user_id} {membership}")

    @inline
    async def test_restricted_join_is_authorised_by_the_resident(self):
        space = await self.a.create_room(self.alice, preset="public_chat", name="space")
        room = await self.a.create_room(self.alice, preset="private_chat", initial_state=[{
            "type": "m.room.join_rules", "state_key": "",
            "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}])
        # Not yet in the space: no one on A can vouch for bob.
        status, body = await self.b.join(self.bob, room, via=[self.a.server_name])
        self.assertEqual(status, 400, body)
        self.assertEqual(body["errcode"], "M_UNABLE_TO_AUTHORISE_JOIN")

        status, body = await self.b.join(self.bob, space, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        await self._wait_membership(self.a, self.alice, space, self.bob_id, "join")
        status, body = await self.b.join(self.bob, room, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        await self._wait_membership(self.a, self.alice, room, self.bob_id, "join")
        status, member = await self.a.request(
            "GET", f"/_matrix/client/v3/rooms/{path_id(room)}/state/m.room.member/{path_id(self.bob_id)}",
            token=self.alice)
        self.assertEqual(member["join_authorised_via_users_server"], self.a.user_id("alice"))

    @inline
    async def test_knock_then_invite_then_join(self):
        room = await self.a.create_room(self.alice, preset="private_chat", initial_state=[{
            "type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
        status, body = await self.b.request("POST", f"/_matrix/client/v3/knock/{path_id(room)}?via="
                                            f"{path_id(self.a.server_name)}", {"reason": "let me in"}, token=self.bob)
        self.assertEqual(status, 200, body)
        await self._wait_membership(self.a, self.alice, room, self.bob_id, "knock")

        status, body = await self.a.request("POST", f"/_matrix/client/v3/rooms/{path_id(room)}/invite",
                                            {"user_id": self.bob_id}, token=self.alice)
        self.assertEqual(status, 200, body)
        status, body = await self.b.join(self.bob, room, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        await self._wait_membership(self.a, self.alice, room, self.bob_id, "join")

    @inline
    async def test_declining_an_invite_reaches_the_inviter(self):
        room = await self.a.create_room(self.alice, preset="private_chat")
        status, body = await self.a.request("POST", f"/_matrix/client/v3/rooms/{path_id(room)}/invite",
                                            {"user_id": self.bob_id}, token=self.alice)
        self.assertEqual(status, 200, body)

        async def invited():
            status, body = await self.b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=self.bob)
            return room in body["rooms"]["invite"]
        await self.b.wait_for(invited, what="the invite")
        status, body = await self.b.request("POST", f"/_matrix/client/v3/rooms/{path_id(room)}/leave", {},
                                            token=self.bob)
        self.assertEqual(status, 200, body)
        await self._wait_membership(self.a, self.alice, room, self.bob_id, "leave")
        status, body = await self.b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=self.bob)
        self.assertNotIn(room, body["rooms"]["invite"])

    @inline
    async def test_server_acl_shuts_a_server_out(self):
        room = await self.a.create_room(self.alice, preset="public_chat")
        status, body = await self.b.join(self.bob, room, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        await self._wait_membership(self.a, self.alice, room, self.bob_id, "join")
        status, body = await self.a.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room)}/state/m.room.server_acl/",
            {"allow": ["*"], "deny": ["localhost"], "allow_ip_literals": True}, token=self.alice)
        self.assertEqual(status, 200, body)
        acl_id = body["event_id"]
        await self.b.wait_for_event(self.bob, room, acl_id)

        message = await self.b.send_text(self.bob, room, "can you hear me?")
        later = await self.a.send_text(self.alice, room, "after the acl")
        await self.b.wait_for_event(self.bob, room, later)
        status, _ = await self.a.request(
            "GET", f"/_matrix/client/v3/rooms/{path_id(room)}/event/{path_id(message)}", token=self.alice)
        self.assertEqual(status, 404)
        # A join from B is no more welcome: B takes it, A never does.
        carol = await self.b.register("carol")
        await self.b.join(carol, room, via=[self.a.server_name])
        last = await self.a.send_text(self.alice, room, "still only us")
        await self.b.wait_for_event(self.bob, room, last)
        self.assertIsNone(await self._membership(self.a, self.alice, room, self.b.user_id("carol")))


class FederatedMembershipPostgresTests(FederatedMembershipTests):
    engine = "postgres"

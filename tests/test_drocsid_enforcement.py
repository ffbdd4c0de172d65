"""Drocsid permissions on every path into a server's rooms: the Matrix client API is held
to them like /api/v1, and an event from another server whose sender lacked the bit is
kept in the DAG but never shown."""

from __future__ import annotations

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.federation import start_peers
from tests.support.server import HomeserverTestCase, inline
from twisted.trial import unittest


def role_content(name, bits, position):
    return {"name": name, "permissions": str(int(bits)), "position": position}


class MatrixFaceTests(ApiHelpers):
    async def setup_server(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.ok("POST", f"{API}/servers", {"name": "Guild"}, token=token)
        space, channel = server["id"], server["channels"][0]["id"]
        await self.ok("POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": bob}, token=token)
        await self.ok("POST", f"{V3}/join/{q(space)}", {}, token=bob_token)
        await self.ok("POST", f"{API}/channels/{q(channel)}/join", {}, token=bob_token)
        return (alice, token), (bob, bob_token), space, channel

    async def put_state(self, room, event_type, state_key, content, token):
        return await self.request("PUT", f"{V3}/rooms/{q(room)}/state/{event_type}/{q(state_key)}", content,
                                  token=token)

    async def messages(self, room, token):
        answer = await self.ok("GET", f"{V3}/rooms/{q(room)}/messages?dir=b&limit=50", token=token)
        return [e["content"].get("body") for e in answer["chunk"] if e["type"] == "m.room.message"]

    @inline
    async def test_matrix_sends_follow_channel_permissions(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        send = f"{V3}/rooms/{q(channel)}/send/m.room.message"
        await self.ok("PUT", f"{send}/t1", {"msgtype": "m.text", "body": "allowed"}, token=bob_token)

        # @everyone loses SEND_MESSAGES; the power levels still let Bob post, Drocsid does not.
        everyone = role_content("@everyone", perms.DEFAULT_EVERYONE & ~perms.P.SEND_MESSAGES, 0)
        status, body = await self.put_state(space, perms.ROLE_EVENT, "", everyone, token)
        self.assertEqual(status, 200, body)
        self.assertMatrixError(await self.request("PUT", f"{send}/t2", {"msgtype": "m.text", "body": "refused"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(channel)}/messages",
                                                  {"content": "refused too"}, token=bob_token), 403, "M_FORBIDDEN")
        self.assertEqual(await self.messages(channel, token), ["allowed"])

        # A member overwrite gives it back in this channel only.
        allow = {"type": "member", "allow": str(int(perms.P.SEND_MESSAGES)), "deny": "0"}
        status, body = await self.put_state(channel, perms.OVERWRITE_EVENT, perms.member_state_key(bob), allow, token)
        self.assertEqual(status, 200, body)
        await self.ok("PUT", f"{send}/t3", {"msgtype": "m.text", "body": "again"}, token=bob_token)
        self.assertEqual(await self.messages(channel, token), ["again", "allowed"])

    @inline
    async def test_matrix_power_does_not_bypass_the_hierarchy(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        mod_bits = perms.P.MANAGE_ROLES | perms.P.KICK_MEMBERS | perms.P.MANAGE_CHANNELS
        for role_id, content in (("mod", role_content("Mod", mod_bits, 2)),
                                 ("admin", role_content("Admin", perms.P.ADMINISTRATOR, 5))):
            status, body = await self.put_state(space, perms.ROLE_EVENT, role_id, content, token)
            self.assertEqual(status, 200, body)
        status, body = await self.put_state(space, perms.MEMBER_EVENT, perms.member_state_key(bob),
                                            {"roles": ["mod"]}, token)
        self.assertEqual(status, 200, body)
        # Matrix power 50 in both rooms, as the mirror gives moderators.
        for room in (space, channel):
            levels = await self.ok("GET", f"{V3}/rooms/{q(room)}/state/m.room.power_levels", token=token)
            levels["users"][bob] = 50
            status, body = await self.put_state(room, "m.room.power_levels", "", levels, token)
            self.assertEqual(status, 200, body)

        attempts = [
            (space, perms.MEMBER_EVENT, perms.member_state_key(bob), {"roles": ["mod", "admin"]}),  # self-promotion
            (space, perms.ROLE_EVENT, "admin", {}),                                                  # delete higher
            (space, perms.ROLE_EVENT, "mod", role_content("Mod", mod_bits | perms.P.BAN_MEMBERS, 2)),  # own level
            (space, perms.ROLE_EVENT, "new", role_content("New", perms.P.ADMINISTRATOR, 1)),         # grant admin
            (space, "io.drocsid.deleted", "", {"deleted_by": bob}),                                   # owner only
            (channel, perms.OVERWRITE_EVENT, "", {"type": "role", "allow": str(int(perms.P.MANAGE_WEBHOOKS))}),
        ]
        for room, event_type, state_key, content in attempts:
            self.assertMatrixError(await self.put_state(room, event_type, state_key, content, bob_token), 403,
                                   "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{V3}/rooms/{q(space)}/kick",
                                                  {"user_id": alice}, token=bob_token), 403, "M_FORBIDDEN")
        # Within the hierarchy, the same Matrix calls work.
        status, body = await self.put_state(space, perms.ROLE_EVENT, "low",
                                            role_content("Low", perms.P.MANAGE_CHANNELS, 1), bob_token)
        self.assertEqual(status, 200, body)
        server = await self.ok("GET", f"{API}/servers/{q(space)}", token=token)
        self.assertEqual(server["name"], "Guild")


class MatrixFaceSqliteTests(MatrixFaceTests, HomeserverTestCase):
    engine = "sqlite"


class MatrixFacePostgresTests(MatrixFaceTests, HomeserverTestCase):
    engine = "postgres"


class FederatedSenderTests(unittest.TestCase):
    """Bob of instance B in a server hosted on A; @everyone may not send."""
    timeout = 120

    @inline
    async def setUp(self):
        self.a, self.b = await start_peers(self, 2)
        self.alice = await self.a.register("alice")
        self.bob = await self.b.register("bob")
        self.bob_id = self.b.user_id("bob")

    async def ok(self, peer, method, path, body=None, token=None):
        status, answer = await peer.request(method, path, body, token=token)
        self.assertEqual(status, 200, answer)
        return answer

    async def bodies(self, peer, token, room):
        return [e["content"].get("body") for e in await peer.messages(token, room) if e["type"] == "m.room.message"]

    @inline
    async def test_a_message_without_send_messages_is_shown_nowhere(self):
        server = await self.ok(self.a, "POST", f"{API}/servers", {"name": "Guild"}, self.alice)
        space, channel = server["id"], server["channels"][0]["id"]
        await self.ok(self.a, "POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": self.bob_id}, self.alice)

        async def invited():
            sync = await self.ok(self.b, "GET", f"{V3}/sync?timeout=0", token=self.bob)
            return space in sync["rooms"]["invite"]
        await self.b.wait_for(invited, what="bob's invite on B")
        await self.ok(self.b, "POST", f"{V3}/join/{q(space)}", {}, self.bob)
        status, body = await self.b.join(self.bob, channel, via=[self.a.server_name])
        self.assertEqual(status, 200, body)

        everyone = role_content("@everyone", perms.DEFAULT_EVERYONE & ~perms.P.SEND_MESSAGES, 0)
        changed = await self.ok(self.a, "PUT", f"{V3}/rooms/{q(space)}/state/{perms.ROLE_EVENT}/", everyone,
                                self.alice)
        await self.b.wait_for_event(self.bob, space, changed["event_id"])

        # B holds the same state and refuses the send through its Matrix API.
        send = f"{V3}/rooms/{q(channel)}/send/m.room.message"
        status, body = await self.b.request("PUT", f"{send}/1", {"msgtype": "m.text", "body": "sneaky"},
                                            token=self.bob)
        self.assertEqual((status, body.get("errcode")), (403, "M_FORBIDDEN"), body)

        # A server that does not check (modified, or unaware of Drocsid) sends it anyway:
        # A keeps it in the DAG and shows it to nobody.
        self.b.hs.event_sender.extra_rules = None
        status, body = await self.b.request("PUT", f"{send}/2", {"msgtype": "m.text", "body": "forced"},
                                            token=self.bob)
        self.assertEqual(status, 200, body)
        forced_id = body["event_id"]

        async def received_on_a():
            return await self.a.hs.events.get_event(forced_id) is not None
        await self.a.wait_for(received_on_a, what="the forced event reaching A")
        stored = await self.a.hs.events.get_event(forced_id)
        self.assertTrue(stored.soft_failed)
        status, body = await self.a.request("GET", f"{V3}/rooms/{q(channel)}/event/{q(forced_id)}",
                                            token=self.alice)
        self.assertEqual(status, 404, body)
        after = await self.ok(self.a, "PUT", f"{send}/3", {"msgtype": "m.text", "body": "from alice"}, self.alice)
        await self.b.wait_for_event(self.bob, channel, after["event_id"])
        self.assertNotIn("forced", await self.bodies(self.a, self.alice, channel))
        listed = await self.ok(self.a, "GET", f"{API}/channels/{q(channel)}/messages", token=self.alice)
        self.assertEqual([m["content"] for m in listed], ["from alice"])

"""Drocsid permissions on every path into a server's rooms: the Matrix client API is held
to them like /api/v1, and an event from another server whose sender lacked the bit is
kept in the DAG but never shown."""

from __future__ import annotations

from urllib.parse import quote

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.federation import TwoServerTestCase, sleep
from tests.support.server import HomeserverTestCase, inline


def role_content(name, bits, position):
    return {"name": name, "permissions": str(int(bits)), "position": position}


class MatrixFaceTests(ApiHelpers):
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

        # @everyone loses SEND_MESSAGES: refused at once by Drocsid (whether or not the
        # power-level mirror has caught up yet).
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

        # The mirror follows in the background and lets Matrix agree.
        async def may_speak():
            levels = await self.ok("GET", f"{V3}/rooms/{q(channel)}/state/m.room.power_levels", token=token)
            return levels["users"].get(bob, 0) >= levels.get("events_default", 0)
        for _ in range(300):
            if await may_speak():
                break
            await sleep(0.05)
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


class CrossInstanceTests(TwoServerTestCase):
    """A server hosted on A, joined by bob of B through an invite code: bob sees exactly the
    channels his roles allow, and a message he may not send is shown by neither A nor B."""
    timeout = 180

    async def channels_on_b(self, space):
        got = await self.ok(self.b, "GET", f"{API}/servers/{q(space)}", token=self.bob)
        return sorted(c["name"] for c in got["channels"])

    async def wait_channels_on_b(self, space, expected):
        async def probe():
            return await self.channels_on_b(space) == expected
        await self.b.wait_for(probe, what=f"bob's channels on B to be {expected}")

    async def listed_on_a(self, channel):
        listed = await self.ok(self.a, "GET", f"{API}/channels/{q(channel)}/messages", token=self.alice)
        return [m["content"] for m in listed]

    @inline
    async def test_roles_decide_what_a_remote_member_sees_and_sends(self):
        server = await self.ok(self.a, "POST", f"{API}/servers", {"name": "Guild"}, self.alice)
        space, general = server["id"], server["channels"][0]["id"]
        path = f"{API}/servers/{q(space)}"
        staff = await self.ok(self.a, "POST", f"{path}/channels", {"name": "staff", "private": True}, self.alice)
        news = await self.ok(self.a, "POST", f"{path}/channels", {"name": "news"}, self.alice)
        deny_send = {"allow": "0", "deny": str(int(perms.P.SEND_MESSAGES))}
        await self.ok(self.a, "PUT", f"{API}/channels/{q(news['id'])}/overwrites/role/@everyone", deny_send,
                      self.alice)
        role = await self.ok(self.a, "POST", f"{path}/roles", {"name": "Staff", "permissions": "0"}, self.alice)
        view = {"allow": str(int(perms.P.VIEW_CHANNEL)), "deny": "0"}
        await self.ok(self.a, "PUT", f"{API}/channels/{q(staff['id'])}/overwrites/role/{q(role['id'])}", view,
                      self.alice)
        invite = await self.ok(self.a, "POST", f"{path}/invites", {"max_uses": 1}, self.alice)

        # Bob redeems A's code through his own instance: he is in the server, not in #staff.
        a_name = quote(self.a.server_name, safe="")
        joined = await self.ok(self.b, "POST", f"{API}/invites/{invite['code']}?server={a_name}", token=self.bob)
        self.assertEqual(joined["id"], space)
        self.assertEqual(await self.channels_on_b(space), ["general", "news"])
        status, body = await self.b.request("GET", f"{API}/channels/{q(staff['id'])}", token=self.bob)
        self.assertIn(status, (403, 404), body)

        # The role lets him see #staff: A invites him, he joins through B and it is listed.
        await self.ok(self.a, "PUT", f"{path}/members/{q(self.bob_id)}/roles/{q(role['id'])}", {}, self.alice)

        async def invited():
            sync = await self.ok(self.b, "GET", f"{V3}/sync?timeout=0", token=self.bob)
            return staff["id"] in sync["rooms"]["invite"]
        await self.b.wait_for(invited, what="bob's invite into #staff")
        await self.ok(self.b, "POST", f"{V3}/join/{q(staff['id'])}", {}, self.bob)
        await self.wait_channels_on_b(space, ["general", "news", "staff"])
        # Taking the role away takes the channel away, on both instances.
        await self.ok(self.a, "DELETE", f"{path}/members/{q(self.bob_id)}/roles/{q(role['id'])}", token=self.alice)
        await self.wait_channels_on_b(space, ["general", "news"])

        # #news: B refuses bob's send on both of its faces; nothing reaches A.
        send = f"{V3}/rooms/{q(news['id'])}/send/m.room.message"
        status, body = await self.b.request("PUT", f"{send}/1", {"msgtype": "m.text", "body": "sneaky"},
                                            token=self.bob)
        self.assertEqual((status, body.get("errcode")), (403, "M_FORBIDDEN"), body)
        status, body = await self.b.request("POST", f"{API}/channels/{q(news['id'])}/messages",
                                            {"content": "sneaky too"}, token=self.bob)
        self.assertEqual((status, body.get("errcode")), (403, "M_FORBIDDEN"), body)

        # Without Drocsid's checks, plain Matrix still refuses: the power-level mirror
        # raised events_default in #news.
        self.b.hs.event_sender.extra_rules = None
        status, body = await self.b.request("PUT", f"{send}/2", {"msgtype": "m.text", "body": "forced"},
                                            token=self.bob)
        self.assertEqual(status, 403, body)

        # What the mirror cannot express (ATTACH_FILES), an instance that does not check
        # (modified, or unaware of Drocsid) sends anyway: A keeps it in the DAG,
        # soft-failed, and shows it to nobody.
        deny_files = {"allow": "0", "deny": str(int(perms.P.ATTACH_FILES))}
        await self.ok(self.a, "PUT", f"{API}/channels/{q(general)}/overwrites/role/@everyone", deny_files,
                      self.alice)
        marker = await self.ok(self.a, "POST", f"{API}/channels/{q(general)}/messages", {"content": "rules"},
                               self.alice)
        await self.b.wait_for_event(self.bob, general, marker["id"])
        image = {"msgtype": "m.image", "body": "cat.png", "url": f"mxc://{self.b.server_name}/cat"}
        forced = await self.ok(self.b, "PUT", f"{V3}/rooms/{q(general)}/send/m.room.message/3", image, self.bob)

        async def received_on_a():
            return await self.a.hs.events.get_event(forced["event_id"]) is not None
        await self.a.wait_for(received_on_a, what="the forced event reaching A")
        self.assertTrue((await self.a.hs.events.get_event(forced["event_id"])).soft_failed)
        status, body = await self.a.request("GET", f"{V3}/rooms/{q(general)}/event/{q(forced['event_id'])}",
                                            token=self.alice)
        self.assertEqual(status, 404, body)
        after = await self.ok(self.a, "POST", f"{API}/channels/{q(general)}/messages", {"content": "after"},
                              self.alice)
        await self.b.wait_for_event(self.bob, general, after["id"])
        self.assertEqual(await self.listed_on_a(general), ["after", "rules"])
        self.b.hs.event_sender.extra_rules = self.b.hs.drocsid_rules.check

        # Bob may still talk in #general, and A shows that.
        said = await self.ok(self.b, "POST", f"{API}/channels/{q(general)}/messages", {"content": "hi"}, self.bob)
        await self.a.wait_for_event(self.alice, general, said["id"])
        self.assertEqual(await self.listed_on_a(general), ["hi", "after", "rules"])

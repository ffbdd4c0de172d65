"""/api/v1 roles, members and channel overwrites: room state in the server's space and
channels, the role hierarchy, the power-level mirror and private-channel membership
kept in step, on both engines."""

from __future__ import annotations

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline

P = perms.P


def bits(*flags) -> str:
    value = 0
    for flag in flags:
        value |= int(flag)
    return str(value)


class RoleTests(ApiHelpers):
    creators_unlisted = False  # room version 12 never lists creators in power levels

    async def setup_server(self, *names):
        """alice owns a server with #general; each of ``names`` is a member in #general."""
        alice, token = await self.user("alice")
        server = await self.ok("POST", f"{API}/servers", {"name": "Guild"}, token=token)
        space, general = server["id"], server["channels"][0]["id"]
        users = []
        for name in names:
            user_id, user_token = await self.user(name)
            await self.ok("POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": user_id}, token=token)
            await self.ok("POST", f"{V3}/join/{q(space)}", {}, token=user_token)
            await self.ok("POST", f"{API}/channels/{q(general)}/join", {}, token=user_token)
            users.append((user_id, user_token))
        return (alice, token), users, space, general

    def roles(self, space):
        return f"{API}/servers/{q(space)}/roles"

    def role(self, space, role_id):
        return f"{self.roles(space)}/{q(role_id or '@everyone')}"

    def member(self, space, user_id):
        return f"{API}/servers/{q(space)}/members/{q(user_id)}"

    def overwrite(self, channel, kind, target):
        return f"{API}/channels/{q(channel)}/overwrites/{kind}/{q(target or '@everyone')}"

    async def make_role(self, space, token, name, *flags, **extra):
        return await self.ok("POST", self.roles(space), {"name": name, "permissions": bits(*flags), **extra},
                             token=token)

    async def give(self, space, token, user_id, role_id):
        return await self.ok("PUT", f"{self.member(space, user_id)}/roles/{q(role_id)}", token=token)

    async def state(self, room_id, token, event_type, state_key=""):
        return await self.ok("GET", f"{V3}/rooms/{q(room_id)}/state/{event_type}/{q(state_key)}", token=token)

    async def power_levels(self, room_id, token):
        return await self.state(room_id, token, "m.room.power_levels")

    async def membership(self, room_id, token, user_id):
        status, body = await self.request("GET", f"{V3}/rooms/{q(room_id)}/state/m.room.member/{q(user_id)}",
                                          token=token)
        return body if status == 200 else None

    async def positions(self, space, token):
        listed = await self.ok("GET", self.roles(space), token=token)
        return [(r["name"], r["position"]) for r in listed]

    # --- roles ---------------------------------------------------------------------

    @inline
    async def test_role_crud_and_ordering(self):
        (alice, token), [(bob, bob_token)], space, general = await self.setup_server("bob")
        [everyone] = await self.ok("GET", self.roles(space), token=bob_token)
        self.assertEqual(everyone, {"id": "", "server_id": space, "name": "@everyone", "color": 0, "hoist": False,
                                    "position": 0, "permissions": str(perms.DEFAULT_EVERYONE),
                                    "mentionable": False})

        mod = await self.make_role(space, token, "Mod", P.MANAGE_ROLES, P.KICK_MEMBERS, color=0x3366FF, hoist=True)
        self.assertEqual((mod["name"], mod["position"], mod["color"], mod["hoist"], mod["mentionable"],
                          mod["permissions"], mod["server_id"]),
                         ("Mod", 1, 0x3366FF, True, False, bits(P.MANAGE_ROLES, P.KICK_MEMBERS), space))
        self.assertRegex(mod["id"], r"^[A-Za-z0-9]{8,}$")
        # The owner's new roles go on top; an integer bitfield is accepted too.
        admin = await self.ok("POST", self.roles(space), {"name": "Admin", "permissions": int(P.ADMINISTRATOR)},
                              token=token)
        self.assertEqual((admin["position"], admin["permissions"]), (2, str(int(P.ADMINISTRATOR))))
        # Placed at 2: directly below what is now at 2 (Admin).
        middle = await self.make_role(space, token, "Middle", position=2)
        self.assertEqual(middle["position"], 2)
        self.assertEqual(await self.positions(space, bob_token),
                         [("@everyone", 0), ("Mod", 1), ("Middle", 2), ("Admin", 3)])

        # The role is room state in the space, as DESIGN.md §2 says.
        content = await self.state(space, token, perms.ROLE_EVENT, mod["id"])
        self.assertEqual((content["name"], content["permissions"], content["position"]),
                         ("Mod", bits(P.MANAGE_ROLES, P.KICK_MEMBERS), 1))

        moved = await self.ok("PATCH", self.role(space, middle["id"]), {"position": 1, "name": "Lower",
                                                                         "mentionable": True}, token=token)
        self.assertEqual((moved["position"], moved["name"], moved["mentionable"]), (1, "Lower", True))
        self.assertEqual(await self.positions(space, token),
                         [("@everyone", 0), ("Lower", 1), ("Mod", 2), ("Admin", 3)])
        got = await self.ok("GET", self.role(space, middle["id"]), token=bob_token)
        self.assertEqual(got, moved)
        # Moving up ends at the position asked for; past the end is the top.
        await self.ok("PATCH", self.role(space, middle["id"]), {"position": 2}, token=token)
        self.assertEqual(await self.positions(space, token),
                         [("@everyone", 0), ("Mod", 1), ("Lower", 2), ("Admin", 3)])
        await self.ok("PATCH", self.role(space, mod["id"]), {"position": 99}, token=token)
        self.assertEqual(await self.positions(space, token),
                         [("@everyone", 0), ("Lower", 1), ("Admin", 2), ("Mod", 3)])
        await self.ok("PATCH", self.role(space, mod["id"]), {"position": 2}, token=token)
        self.assertEqual(await self.positions(space, token),
                         [("@everyone", 0), ("Lower", 1), ("Mod", 2), ("Admin", 3)])

        # @everyone: its permissions can change; it is not moved, renamed or deleted.
        changed = await self.ok("PATCH", self.role(space, ""), {"permissions": bits(P.VIEW_CHANNEL)}, token=token)
        self.assertEqual((changed["id"], changed["permissions"], changed["position"]), ("", bits(P.VIEW_CHANNEL), 0))
        self.assertEqual((await self.state(space, token, perms.ROLE_EVENT, ""))["permissions"], bits(P.VIEW_CHANNEL))
        self.assertMatrixError(await self.request("PATCH", self.role(space, ""), {"position": 2}, token=token),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("PATCH", self.role(space, ""), {"name": "all"}, token=token),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("DELETE", self.role(space, ""), token=token),
                               400, "M_INVALID_PARAM")

        # Deleting a role takes it off its members.
        await self.give(space, token, bob, middle["id"])
        await self.ok("DELETE", self.role(space, middle["id"]), token=token)
        self.assertMatrixError(await self.request("GET", self.role(space, middle["id"]), token=token),
                               404, "M_NOT_FOUND")
        self.assertEqual(await self.state(space, token, perms.ROLE_EVENT, middle["id"]), {})
        self.assertEqual((await self.ok("GET", self.member(space, bob), token=token))["role_ids"], [])
        self.assertEqual([n for n, _ in await self.positions(space, token)], ["@everyone", "Mod", "Admin"])

        # Members read roles; without MANAGE_ROLES they change nothing.
        for method, path, body in (("POST", self.roles(space), {"name": "x"}),
                                   ("PATCH", self.role(space, mod["id"]), {"name": "x"}),
                                   ("DELETE", self.role(space, mod["id"]), None)):
            self.assertMatrixError(await self.request(method, path, body, token=bob_token), 403, "M_FORBIDDEN")
        self.assertEqual(await self.positions(space, token), [("@everyone", 0), ("Mod", 1), ("Admin", 2)])
        # Strangers see nothing.
        _stranger, stranger_token = await self.user("stranger")
        self.assertMatrixError(await self.request("GET", self.roles(space), token=stranger_token), 403, "M_FORBIDDEN")

    @inline
    async def test_hierarchy(self):
        (alice, token), [(bob, bob_token), (carol, carol_token)], space, general = \
            await self.setup_server("bob", "carol")
        low = await self.make_role(space, token, "Low", P.SEND_MESSAGES)
        mod = await self.make_role(space, token, "Mod", P.MANAGE_ROLES, P.KICK_MEMBERS)
        top = await self.make_role(space, token, "Top", P.BAN_MEMBERS)
        await self.give(space, token, bob, mod["id"])
        before = await self.ok("GET", self.roles(space), token=token)

        async def refused(method, path, body=None):
            self.assertMatrixError(await self.request(method, path, body, token=bob_token), 403, "M_FORBIDDEN")

        # Not at or above his own role, not ADMINISTRATOR, not a bit he lacks.
        await refused("POST", self.roles(space), {"name": "Above", "position": 3})
        await refused("POST", self.roles(space), {"name": "Root", "permissions": bits(P.ADMINISTRATOR)})
        await refused("POST", self.roles(space), {"name": "Banner", "permissions": bits(P.BAN_MEMBERS)})
        await refused("PATCH", self.role(space, mod["id"]), {"name": "Mine"})
        await refused("DELETE", self.role(space, mod["id"]))
        await refused("PATCH", self.role(space, top["id"]), {"permissions": "0"})
        await refused("PATCH", self.role(space, low["id"]), {"position": 3})
        await refused("PATCH", self.role(space, low["id"]), {"permissions": bits(P.SEND_MESSAGES, P.BAN_MEMBERS)})
        await refused("PUT", f"{self.member(space, carol)}/roles/{q(mod['id'])}")
        await refused("PUT", f"{self.member(space, carol)}/roles/{q(top['id'])}")
        await refused("PATCH", self.member(space, carol), {"role_ids": [low["id"], top["id"]]})
        await refused("DELETE", f"{self.member(space, bob)}/roles/{q(mod['id'])}")
        self.assertEqual(await self.ok("GET", self.roles(space), token=token), before)
        self.assertEqual((await self.ok("GET", self.member(space, carol), token=token))["role_ids"], [])

        # Below him, with bits he has: his new role goes directly below his own.
        helper = await self.ok("POST", self.roles(space), {"name": "Helper", "permissions": bits(P.KICK_MEMBERS)},
                               token=bob_token)
        self.assertEqual(await self.positions(space, token),
                         [("@everyone", 0), ("Low", 1), ("Helper", 2), ("Mod", 3), ("Top", 4)])
        await self.ok("PATCH", self.role(space, low["id"]), {"permissions": bits(P.SEND_MESSAGES, P.KICK_MEMBERS)},
                      token=bob_token)
        member = await self.give(space, bob_token, carol, helper["id"])
        self.assertEqual(member["role_ids"], [helper["id"]])
        member = await self.ok("PATCH", self.member(space, carol), {"role_ids": [low["id"], helper["id"]]},
                               token=bob_token)
        self.assertEqual(member["role_ids"], [helper["id"], low["id"]])  # highest first
        await self.ok("DELETE", self.role(space, helper["id"]), token=bob_token)

        # The owner is above all: ADMINISTRATOR, any position, any role.
        self.assertEqual(await self.positions(space, token), [("@everyone", 0), ("Low", 1), ("Mod", 2), ("Top", 3)])
        root = await self.make_role(space, token, "Root", P.ADMINISTRATOR)
        self.assertEqual(root["position"], 4)
        await self.give(space, token, carol, top["id"])
        await self.ok("PATCH", self.role(space, mod["id"]), {"name": "Moderator"}, token=token)
        await self.ok("DELETE", f"{self.member(space, bob)}/roles/{q(mod['id'])}", token=token)
        self.assertEqual((await self.ok("GET", self.member(space, bob), token=token))["role_ids"], [])

    # --- members ---------------------------------------------------------------------

    @inline
    async def test_members_and_nicknames(self):
        (alice, token), [(bob, bob_token), (carol, carol_token)], space, general = \
            await self.setup_server("bob", "carol")
        listed = await self.ok("GET", f"{API}/servers/{q(space)}/members", token=bob_token)
        self.assertEqual([m["user_id"] for m in listed], sorted([alice, bob, carol]))
        bob_json = next(m for m in listed if m["user_id"] == bob)
        self.assertEqual({k: bob_json[k] for k in ("server_id", "nickname", "role_ids", "user")},
                         {"server_id": space, "nickname": None, "role_ids": [],
                          "user": {"id": bob, "display_name": "bob"}})
        self.assertRegex(bob_json["joined_at"], r"^\d{4}-\d\d-\d\dT")
        page = await self.ok("GET", f"{API}/servers/{q(space)}/members?limit=1&after={q(alice)}", token=bob_token)
        self.assertEqual([m["user_id"] for m in page], sorted([alice, bob, carol])[1:2])

        me = await self.ok("PATCH", self.member(space, "@me"), {"nickname": "Bobby"}, token=bob_token)
        self.assertEqual(me["nickname"], "Bobby")
        self.assertEqual(await self.state(space, token, perms.MEMBER_EVENT, perms.member_state_key(bob)),
                         {"roles": [], "nick": "Bobby", "io.drocsid.actor": bob})  # written by the owner for bob
        # Someone else's nickname needs MANAGE_NICKNAMES and a higher rank.
        self.assertMatrixError(await self.request("PATCH", self.member(space, carol), {"nickname": "c"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PATCH", self.member(space, alice), {"nickname": "boss"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        renamer = await self.make_role(space, token, "Renamer", P.MANAGE_NICKNAMES)
        await self.give(space, token, bob, renamer["id"])
        carol_json = await self.ok("PATCH", self.member(space, carol), {"nickname": "Caz"}, token=bob_token)
        self.assertEqual(carol_json["nickname"], "Caz")
        self.assertMatrixError(await self.request("PATCH", self.member(space, alice), {"nickname": "boss"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        # The owner clears it; roles are kept alongside.
        cleared = await self.ok("PATCH", self.member(space, bob), {"nickname": None}, token=token)
        self.assertEqual((cleared["nickname"], cleared["role_ids"]), (None, [renamer["id"]]))
        # Without CHANGE_NICKNAME (taken from @everyone) one's own is fixed.
        await self.ok("PATCH", self.role(space, ""), {"permissions": bits(P.VIEW_CHANNEL, P.SEND_MESSAGES)},
                      token=token)
        self.assertMatrixError(await self.request("PATCH", self.member(space, "@me"), {"nickname": "again"},
                                                  token=carol_token), 403, "M_FORBIDDEN")
        self.assertEqual((await self.ok("GET", self.member(space, carol), token=carol_token))["nickname"], "Caz")

    @inline
    async def test_roles_change_what_a_member_may_do(self):
        (alice, token), [(bob, bob_token)], space, general = await self.setup_server("bob")
        channels = f"{API}/servers/{q(space)}/channels"
        self.assertMatrixError(await self.request("POST", channels, {"name": "bobs"}, token=bob_token),
                               403, "M_FORBIDDEN")
        builders = await self.make_role(space, token, "Builders", P.MANAGE_CHANNELS)
        self.assertNotIn(bob, (await self.power_levels(space, token))["users"])
        await self.give(space, token, bob, builders["id"])
        made = await self.ok("POST", channels, {"name": "bobs"}, token=bob_token)
        # The mirror: MANAGE_CHANNELS is a moderation bit (50), in the space and each channel.
        for room_id, creator in ((space, alice), (general, alice), (made["id"], bob)):
            levels = await self.power_levels(room_id, token)
            expected = {bob: 50, alice: 100}
            if self.creators_unlisted:
                expected[creator] = None
            self.assertEqual((levels["users"].get(bob), levels["users"].get(alice)), (expected[bob], expected[alice]),
                             room_id)
        await self.ok("DELETE", f"{self.member(space, bob)}/roles/{q(builders['id'])}", token=token)
        self.assertMatrixError(await self.request("POST", channels, {"name": "again"}, token=bob_token),
                               403, "M_FORBIDDEN")
        for room_id in (space, general, made["id"]):
            self.assertNotIn(bob, (await self.power_levels(room_id, token))["users"], room_id)

        # A channel overwrite taking SEND_MESSAGES from @everyone.
        messages = f"{API}/channels/{q(general)}/messages"
        await self.ok("POST", messages, {"content": "before"}, token=bob_token)
        written = await self.ok("PUT", self.overwrite(general, "role", ""), {"deny": bits(P.SEND_MESSAGES)},
                                token=token)
        self.assertEqual(written, {"channel_id": general, "target_type": "role", "target_id": "",
                                   "allow": "0", "deny": bits(P.SEND_MESSAGES)})
        self.assertEqual(await self.state(general, token, perms.OVERWRITE_EVENT, ""),
                         {"type": "role", "allow": "0", "deny": bits(P.SEND_MESSAGES)})
        self.assertMatrixError(await self.request("POST", messages, {"content": "muted"}, token=bob_token),
                               403, "M_FORBIDDEN")
        await self.ok("POST", messages, {"content": "owner speaks"}, token=token)
        self.assertEqual((await self.power_levels(general, token))["events_default"], perms.SPEAKER_LEVEL)
        self.assertEqual((await self.power_levels(space, token))["events_default"], 0)
        # Even through the Matrix face, the room now refuses bob's message.
        status, _ = await self.request("PUT", f"{V3}/rooms/{q(general)}/send/m.room.message/t1",
                                       {"msgtype": "m.text", "body": "sneaky"}, token=bob_token)
        self.assertEqual(status, 403)
        # A member overwrite lets bob speak again (he is given level 10 in the mirror).
        await self.ok("PUT", self.overwrite(general, "member", bob), {"allow": int(P.SEND_MESSAGES)}, token=token)
        await self.ok("POST", messages, {"content": "allowed"}, token=bob_token)
        self.assertEqual((await self.power_levels(general, token))["users"].get(bob), perms.SPEAKER_LEVEL)
        listed = await self.ok("GET", f"{API}/channels/{q(general)}/overwrites", token=token)
        self.assertEqual([(o["target_type"], o["target_id"]) for o in listed], [("role", ""), ("member", bob)])
        self.assertEqual(await self.state(general, token, perms.OVERWRITE_EVENT, perms.member_state_key(bob)),
                         {"type": "member", "allow": bits(P.SEND_MESSAGES), "deny": "0"})
        await self.ok("DELETE", self.overwrite(general, "member", bob), token=token)
        await self.ok("DELETE", self.overwrite(general, "role", ""), token=token)
        self.assertEqual(await self.ok("GET", f"{API}/channels/{q(general)}/overwrites", token=token), [])
        levels = await self.power_levels(general, token)
        self.assertEqual((levels["events_default"], levels["users"].get(bob)), (0, None))
        await self.ok("POST", messages, {"content": "after"}, token=bob_token)

    @inline
    async def test_overwrite_rules(self):
        (alice, token), [(bob, bob_token), (carol, carol_token)], space, general = \
            await self.setup_server("bob", "carol")
        mod = await self.make_role(space, token, "Mod", P.MANAGE_ROLES)
        top = await self.make_role(space, token, "Top")
        await self.give(space, token, bob, mod["id"])
        # Members without MANAGE_ROLES cannot even list them.
        self.assertMatrixError(await self.request("GET", f"{API}/channels/{q(general)}/overwrites",
                                                  token=carol_token), 403, "M_FORBIDDEN")

        async def refused(method, path, body=None, status=403, errcode="M_FORBIDDEN"):
            self.assertMatrixError(await self.request(method, path, body, token=bob_token), status, errcode)

        # Bits he lacks (BAN_MEMBERS is not his), roles at or above his, the owner.
        await refused("PUT", self.overwrite(general, "role", ""), {"allow": bits(P.BAN_MEMBERS)})
        await refused("PUT", self.overwrite(general, "role", ""), {"deny": bits(P.MANAGE_WEBHOOKS)})
        await refused("PUT", self.overwrite(general, "role", mod["id"]), {"deny": bits(P.SEND_MESSAGES)})
        await refused("PUT", self.overwrite(general, "role", top["id"]), {"deny": bits(P.SEND_MESSAGES)})
        await refused("PUT", self.overwrite(general, "member", alice), {"deny": bits(P.SEND_MESSAGES)})
        await refused("PUT", self.overwrite(general, "role", ""), {"allow": bits(P.ADMINISTRATOR)},
                      400, "M_INVALID_PARAM")
        self.assertEqual(await self.ok("GET", f"{API}/channels/{q(general)}/overwrites", token=bob_token), [])
        # What he may do.
        await self.ok("PUT", self.overwrite(general, "role", ""), {"deny": bits(P.ADD_REACTIONS)}, token=bob_token)
        await self.ok("PUT", self.overwrite(general, "member", carol), {"deny": bits(P.SEND_MESSAGES)},
                      token=bob_token)
        # The owner's overwrite with a bit bob lacks is beyond him to remove.
        await self.ok("PUT", self.overwrite(general, "role", top["id"]), {"deny": bits(P.MANAGE_WEBHOOKS)},
                      token=token)
        await refused("DELETE", self.overwrite(general, "role", top["id"]))
        await self.ok("DELETE", self.overwrite(general, "member", carol), token=bob_token)
        self.assertEqual(len(await self.ok("GET", f"{API}/channels/{q(general)}/overwrites", token=token)), 2)

    # --- private channels -----------------------------------------------------------------

    @inline
    async def test_private_channel_membership_follows_view(self):
        (alice, token), [(bob, bob_token), (carol, carol_token)], space, general = \
            await self.setup_server("bob", "carol")
        secret = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "secret", "private": True},
                               token=token)
        room = secret["id"]
        said = await self.ok("POST", f"{API}/channels/{q(room)}/messages", {"content": "psst"}, token=token)
        messages = f"{API}/channels/{q(room)}/messages"

        async def sees(user_token):
            listed = await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=user_token)
            return room in [c["id"] for c in listed]

        self.assertFalse(await sees(bob_token))
        self.assertMatrixError(await self.request("GET", messages, token=bob_token), 403, "M_FORBIDDEN")

        # A role allowed to view: giving it brings bob in, and he reads the history.
        insiders = await self.make_role(space, token, "Insiders")
        await self.ok("PUT", self.overwrite(room, "role", insiders["id"]), {"allow": bits(P.VIEW_CHANNEL)},
                      token=token)
        self.assertIsNone(await self.membership(room, token, bob))
        await self.give(space, token, bob, insiders["id"])
        self.assertTrue(await sees(bob_token))
        self.assertEqual((await self.membership(room, token, bob))["membership"], "join")
        self.assertEqual([m["id"] for m in await self.ok("GET", messages, token=bob_token)], [said["id"]])
        await self.ok("POST", messages, {"content": "hi"}, token=bob_token)
        self.assertFalse(await sees(carol_token))
        self.assertIsNone(await self.membership(room, token, carol))

        # Taking the role away removes him.
        await self.ok("DELETE", f"{self.member(space, bob)}/roles/{q(insiders['id'])}", token=token)
        self.assertFalse(await sees(bob_token))
        left = await self.membership(room, token, bob)
        self.assertEqual((left["membership"], left.get("reason")), ("leave", "lost access"))
        self.assertMatrixError(await self.request("GET", messages, token=bob_token), 403, "M_FORBIDDEN")

        # A member overwrite does the same for carol; removing it removes her.
        await self.ok("PUT", self.overwrite(room, "member", carol), {"allow": bits(P.VIEW_CHANNEL)}, token=token)
        self.assertTrue(await sees(carol_token))
        self.assertEqual((await self.membership(room, token, carol))["membership"], "join")
        self.assertEqual(len(await self.ok("GET", messages, token=carol_token)), 2)
        await self.ok("DELETE", self.overwrite(room, "member", carol), token=token)
        self.assertFalse(await sees(carol_token))
        self.assertEqual((await self.membership(room, token, carol))["membership"], "leave")

        # Deleting the role that let people in removes them too.
        await self.give(space, token, bob, insiders["id"])
        self.assertEqual((await self.membership(room, token, bob))["membership"], "join")
        await self.ok("DELETE", self.role(space, insiders["id"]), token=token)
        self.assertEqual((await self.membership(room, token, bob))["membership"], "leave")
        self.assertEqual(await self.ok("GET", f"{API}/channels/{q(room)}/overwrites", token=token),
                         [{"channel_id": room, "target_type": "role", "target_id": "", "allow": "0",
                           "deny": bits(P.VIEW_CHANNEL)}])

    # --- bad input -----------------------------------------------------------------------

    @inline
    async def test_bad_input_changes_nothing(self):
        (alice, token), [(bob, bob_token)], space, general = await self.setup_server("bob")
        mod = await self.make_role(space, token, "Mod", P.KICK_MEMBERS)

        async def snapshot():
            return (await self.ok("GET", self.roles(space), token=token),
                    await self.ok("GET", self.member(space, bob), token=token),
                    await self.ok("GET", f"{API}/channels/{q(general)}/overwrites", token=token),
                    await self.power_levels(space, token), await self.power_levels(general, token))

        before = await snapshot()
        cases = [
            ("GET", self.role(space, "nope"), None, 404, "M_NOT_FOUND"),
            ("PATCH", self.role(space, "nope"), {"name": "x"}, 404, "M_NOT_FOUND"),
            ("DELETE", self.role(space, "nope"), None, 404, "M_NOT_FOUND"),
            ("PUT", f"{self.member(space, bob)}/roles/nope", None, 404, "M_NOT_FOUND"),
            ("PUT", f"{self.member(space, bob)}/roles/%40everyone", None, 400, "M_INVALID_PARAM"),
            ("PUT", f"{self.member(space, '@ghost:test.local')}/roles/{q(mod['id'])}", None, 404, "M_NOT_FOUND"),
            ("PATCH", self.member(space, bob), {"role_ids": ["nope"]}, 400, "M_INVALID_PARAM"),
            ("PATCH", self.member(space, bob), {"role_ids": "x"}, 400, "M_INVALID_PARAM"),
            ("PATCH", self.member(space, bob), {"nickname": "x" * 33}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {"name": "x", "permissions": "abc"}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {"name": "x", "permissions": -1}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {"name": "x", "permissions": "1e3"}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {"name": "x", "permissions": str(1 << 60)}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {"name": "x", "permissions": True}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {"name": "x", "position": 0}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {"name": "x", "color": 1 << 24}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {"name": ""}, 400, "M_INVALID_PARAM"),
            ("POST", self.roles(space), {}, 400, "M_MISSING_PARAM"),
            ("PATCH", self.role(space, mod["id"]), {"permissions": "12x"}, 400, "M_INVALID_PARAM"),
            ("PUT", self.overwrite(general, "everyone", ""), {"allow": "0"}, 400, "M_INVALID_PARAM"),
            ("PUT", self.overwrite(general, "role", ""), {"allow": "-5"}, 400, "M_INVALID_PARAM"),
            ("PUT", self.overwrite(general, "role", ""), {"deny": str(1 << 62)}, 400, "M_INVALID_PARAM"),
            ("PUT", self.overwrite(general, "role", "nope"), {"allow": "0"}, 404, "M_NOT_FOUND"),
            ("PUT", self.overwrite(general, "member", "@ghost:test.local"), {"allow": "0"}, 404, "M_NOT_FOUND"),
            ("DELETE", self.overwrite(general, "role", mod["id"]), None, 404, "M_NOT_FOUND"),
            ("DELETE", self.overwrite(general, "group", mod["id"]), None, 400, "M_INVALID_PARAM"),
            ("GET", f"{API}/channels/{q('!nope:test.local')}/overwrites", None, 404, "M_NOT_FOUND"),
            ("GET", f"{API}/servers/{q('!nope:test.local')}/roles", None, 404, "M_NOT_FOUND"),
            ("POST", f"{API}/servers/{q('!nope:test.local')}/roles", {"name": "x"}, 404, "M_NOT_FOUND"),
        ]
        wrong = []
        for method, path, body, status, errcode in cases:
            got_status, answer = await self.request(method, path, body, token=token)
            if (got_status, answer.get("errcode") if isinstance(answer, dict) else None) != (status, errcode):
                wrong.append((method, path, body, got_status, answer))
        self.assertEqual(wrong, [])
        self.assertEqual(await snapshot(), before)
        status, body = await self.request("GET", self.roles(space))
        self.assertEqual(status, 401, body)

    @inline
    async def test_openapi_lists_role_routes(self):
        status, document = await self.request("GET", f"{API}/openapi.json")
        paths = document["paths"]
        self.assertLessEqual({"get", "post"}, set(paths["/servers/{server_id}/roles"]))
        self.assertLessEqual({"get", "patch", "delete"}, set(paths["/servers/{server_id}/roles/{role_id}"]))
        self.assertLessEqual({"put", "delete"},
                             set(paths["/channels/{channel_id}/overwrites/{target_type}/{target_id}"]))
        for name in ("Role", "Member", "Overwrite"):
            self.assertIn(name, document["components"]["schemas"])


class RoleSqliteTests(RoleTests, HomeserverTestCase):
    engine = "sqlite"


class RolePostgresTests(RoleTests, HomeserverTestCase):
    engine = "postgres"


class RoleRoomV12SqliteTests(RoleTests, HomeserverTestCase):
    """Room version 12: creators hold infinite power and are never listed in the mirror."""
    engine = "sqlite"
    config_overrides = {"rooms": {"default_version": "12"}}
    creators_unlisted = True

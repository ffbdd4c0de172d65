"""/api/v1 moderation: bans and kicks across a server's space and channels, leaving a
server, and the audit log read from the rooms, on both engines."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline

P = perms.P


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


class ModerationTests(ApiHelpers):
    async def setup_server(self):
        """alice owns a server with #general and #extra; returns its IDs."""
        self.alice, self.token = await self.user("alice")
        server = await self.ok("POST", f"{API}/servers", {"name": "Guild"}, token=self.token)
        self.space, self.general = server["id"], server["channels"][0]["id"]
        extra = await self.ok("POST", f"{API}/servers/{q(self.space)}/channels", {"name": "extra"}, token=self.token)
        self.extra = extra["id"]
        self.channels = [self.general, self.extra]

    async def member(self, name):
        """A user who joined the space and both channels."""
        user_id, token = await self.user(name)
        await self.ok("POST", f"{V3}/rooms/{q(self.space)}/invite", {"user_id": user_id}, token=self.token)
        await self.ok("POST", f"{V3}/join/{q(self.space)}", {}, token=token)
        for channel in self.channels:
            await self.ok("POST", f"{API}/channels/{q(channel)}/join", {}, token=token)
        return user_id, token

    async def give_role(self, user_id, role_id, bits, position):
        """Write the role and the member's roles through the Matrix face, as the owner."""
        await self.ok("PUT", f"{V3}/rooms/{q(self.space)}/state/{perms.ROLE_EVENT}/{q(role_id)}",
                      {"name": role_id, "permissions": str(int(bits)), "position": position}, token=self.token)
        key = perms.member_state_key(user_id)
        await self.ok("PUT", f"{V3}/rooms/{q(self.space)}/state/{perms.MEMBER_EVENT}/{q(key)}",
                      {"roles": [role_id]}, token=self.token)

    async def joined(self, token):
        return set((await self.ok("GET", f"{V3}/joined_rooms", token=token))["joined_rooms"])

    async def membership(self, room_id, user_id):
        status, body = await self.request("GET", f"{V3}/rooms/{q(room_id)}/state/m.room.member/{q(user_id)}",
                                          token=self.token)
        return body.get("membership") if status == 200 else None

    def url(self, suffix):
        return f"{API}/servers/{q(self.space)}/{suffix}"

    async def audit(self, token=None, **query):
        suffix = "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items()) if query else ""
        return await self.ok("GET", self.url("audit-log") + suffix, token=token or self.token)

    @inline
    async def test_ban_everywhere_and_unban(self):
        await self.setup_server()
        bob, bob_token = await self.member("bob")
        rooms = {self.space, *self.channels}
        self.assertLessEqual(rooms, await self.joined(bob_token))

        await self.ok("PUT", self.url(f"bans/{q(bob)}"), {"reason": "spam"}, token=self.token)
        self.assertFalse(rooms & await self.joined(bob_token))
        for room_id in rooms:
            self.assertEqual(await self.membership(room_id, bob), "ban", room_id)
        bans = await self.ok("GET", self.url("bans"), token=self.token)
        self.assertEqual([(b["user_id"], b["reason"], b["banned_by"]) for b in bans], [(bob, "spam", self.alice)])
        self.assertRegex(bans[0]["created_at"], r"^\d{4}-\d\d-\d\dT")
        # Banning again changes nothing.
        await self.ok("PUT", self.url(f"bans/{q(bob)}"), {}, token=self.token)
        self.assertEqual(len(await self.ok("GET", self.url("bans"), token=self.token)), 1)

        # No way back in: not by Matrix, not by the /api/v1 face, not by an invite.
        for room_id in rooms:
            self.assertMatrixError(await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob_token),
                                   403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(self.general)}/join", {},
                                                  token=bob_token), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{API}/servers/{q(self.space)}", token=bob_token),
                               403, "M_FORBIDDEN")
        status, _ = await self.request("POST", f"{V3}/rooms/{q(self.space)}/invite", {"user_id": bob},
                                       token=self.token)
        self.assertEqual(status, 403)

        # Unbanned: out of the ban list, and may be invited and join again.
        await self.ok("DELETE", self.url(f"bans/{q(bob)}"), token=self.token)
        self.assertEqual(await self.ok("GET", self.url("bans"), token=self.token), [])
        for room_id in rooms:
            self.assertEqual(await self.membership(room_id, bob), "leave", room_id)
        self.assertMatrixError(await self.request("DELETE", self.url(f"bans/{q(bob)}"), token=self.token),
                               404, "M_NOT_FOUND")
        await self.ok("POST", f"{V3}/rooms/{q(self.space)}/invite", {"user_id": bob}, token=self.token)
        await self.ok("POST", f"{V3}/join/{q(self.space)}", {}, token=bob_token)
        await self.ok("POST", f"{API}/channels/{q(self.general)}/join", {}, token=bob_token)
        self.assertLessEqual({self.space, self.general}, await self.joined(bob_token))

    @inline
    async def test_hierarchy(self):
        await self.setup_server()
        mod, mod_token = await self.member("mod")
        peer, peer_token = await self.member("peer")
        boss, _boss_token = await self.member("boss")
        carol, carol_token = await self.member("carol")
        moderation = P.BAN_MEMBERS | P.KICK_MEMBERS
        await self.give_role(mod, "mods", moderation, 2)
        await self.give_role(peer, "mods2", moderation, 2)
        await self.give_role(boss, "boss", P.VIEW_CHANNEL, 3)
        before = {u: await self.membership(self.space, u) for u in (self.alice, mod, peer, boss, carol)}

        # Not the owner, not themselves, not an equal or a higher role.
        for target in (self.alice, mod, peer, boss):
            for method, path, body in (("PUT", f"bans/{q(target)}", {}), ("POST", f"kick/{q(target)}", {}),
                                       ("DELETE", f"members/{q(target)}", None)):
                self.assertMatrixError(await self.request(method, self.url(path), body, token=mod_token),
                                       403, "M_FORBIDDEN")
        # Nor anyone without the bit.
        self.assertMatrixError(await self.request("PUT", self.url(f"bans/{q(mod)}"), {}, token=carol_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", self.url(f"kick/{q(mod)}"), {}, token=carol_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("GET", self.url("bans"), token=carol_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("DELETE", self.url(f"bans/{q(carol)}"), token=carol_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PUT", self.url("bans/nobody"), {}, token=mod_token),
                               400, "M_INVALID_PARAM")
        after = {u: await self.membership(self.space, u) for u in before}
        self.assertEqual(after, before)
        self.assertEqual(await self.ok("GET", self.url("bans"), token=mod_token), [])
        self.assertLessEqual({self.space, *self.channels}, await self.joined(peer_token))

        # Below them: done, and the ban list names the moderator (the owner sent it for them).
        await self.ok("PUT", self.url(f"bans/{q(carol)}"), {"reason": "rude"}, token=mod_token)
        bans = await self.ok("GET", self.url("bans"), token=mod_token)
        self.assertEqual([(b["user_id"], b["reason"], b["banned_by"]) for b in bans], [(carol, "rude", mod)])
        self.assertFalse({self.space, *self.channels} & await self.joined(carol_token))

    @inline
    async def test_kick(self):
        await self.setup_server()
        mod, mod_token = await self.member("mod")
        bob, bob_token = await self.member("bob")
        carol, carol_token = await self.member("carol")
        await self.give_role(mod, "mods", P.KICK_MEMBERS, 1)
        rooms = {self.space, *self.channels}

        await self.ok("POST", self.url(f"kick/{q(bob)}"), {"reason": "cool off"}, token=mod_token)
        self.assertFalse(rooms & await self.joined(bob_token))
        for room_id in rooms:
            self.assertEqual(await self.membership(room_id, bob), "leave", room_id)
        # A kick is not a ban: a new invite brings them back.
        await self.ok("POST", f"{V3}/rooms/{q(self.space)}/invite", {"user_id": bob}, token=self.token)
        await self.ok("POST", f"{V3}/join/{q(self.space)}", {}, token=bob_token)
        self.assertIn(self.space, await self.joined(bob_token))

        # The DELETE form; and a non-member cannot be kicked.
        await self.ok("DELETE", self.url(f"members/{q(carol)}"), token=mod_token)
        self.assertFalse(rooms & await self.joined(carol_token))
        self.assertMatrixError(await self.request("POST", self.url(f"kick/{q(carol)}"), {}, token=mod_token),
                               404, "M_NOT_FOUND")
        # KICK_MEMBERS does not ban.
        self.assertMatrixError(await self.request("PUT", self.url(f"bans/{q(bob)}"), {}, token=mod_token),
                               403, "M_FORBIDDEN")

    @inline
    async def test_a_kicked_member_returns_without_roles(self):
        await self.setup_server()
        mod, mod_token = await self.member("mod")
        bob, bob_token = await self.member("bob")
        await self.give_role(mod, "mods", P.KICK_MEMBERS, 2)
        helpers = await self.ok("POST", self.url("roles"), {"name": "helpers", "position": 1,
                                                            "permissions": str(int(P.MANAGE_MESSAGES))},
                                token=self.token)
        await self.ok("PUT", self.url(f"members/{q(bob)}/roles/{helpers['id']}"), {}, token=self.token)
        levels = await self.ok("GET", f"{V3}/rooms/{q(self.space)}/state/m.room.power_levels", token=self.token)
        self.assertEqual(levels["users"].get(bob), perms.MODERATOR_LEVEL)
        await self.ok("POST", self.url(f"kick/{q(bob)}"), {}, token=mod_token)
        status, content = await self.request("GET", f"{V3}/rooms/{q(self.space)}/state/{perms.MEMBER_EVENT}/"
                                             f"{q(perms.member_state_key(bob))}", token=self.token)
        self.assertEqual(content.get("roles", []), [], content)
        levels = await self.ok("GET", f"{V3}/rooms/{q(self.space)}/state/m.room.power_levels", token=self.token)
        self.assertNotIn(bob, levels["users"])
        await self.ok("POST", f"{V3}/rooms/{q(self.space)}/invite", {"user_id": bob}, token=self.token)
        await self.ok("POST", f"{V3}/join/{q(self.space)}", {}, token=bob_token)
        member = await self.ok("GET", self.url(f"members/{q(bob)}"), token=self.token)
        self.assertEqual(member["role_ids"], [])

    @inline
    async def test_leave(self):
        await self.setup_server()
        bob, bob_token = await self.member("bob")
        await self.ok("DELETE", self.url("members/@me"), token=bob_token)
        self.assertFalse({self.space, *self.channels} & await self.joined(bob_token))
        self.assertEqual(await self.ok("GET", f"{API}/users/@me/servers", token=bob_token), [])
        self.assertMatrixError(await self.request("DELETE", self.url("members/@me"), token=bob_token),
                               403, "M_FORBIDDEN")
        # The owner must delete the server instead.
        self.assertMatrixError(await self.request("DELETE", self.url("members/@me"), token=self.token),
                               400, "M_BAD_STATE")
        self.assertLessEqual({self.space, *self.channels}, await self.joined(self.token))

    @inline
    async def test_audit_log(self):
        await self.setup_server()
        mod, mod_token = await self.member("mod")
        bob, bob_token = await self.member("bob")
        carol, _carol_token = await self.member("carol")
        dave, _dave_token = await self.member("dave")
        await self.give_role(mod, "mods", P.BAN_MEMBERS | P.KICK_MEMBERS | P.VIEW_AUDIT_LOG, 1)

        news = await self.ok("POST", self.url("channels"), {"name": "news"}, token=self.token)
        await self.ok("PATCH", f"{API}/channels/{q(news['id'])}", {"name": "headlines"}, token=self.token)
        await self.ok("PATCH", f"{API}/servers/{q(self.space)}", {"name": "Guild 2"}, token=self.token)
        sent = await self.ok("PUT", f"{V3}/rooms/{q(self.general)}/send/m.room.message/t1",
                             {"msgtype": "m.text", "body": "buy now"}, token=bob_token)
        await self.ok("PUT", f"{V3}/rooms/{q(self.general)}/redact/{q(sent['event_id'])}/t2", {"reason": "ad"},
                      token=self.token)
        await self.ok("PUT", self.url(f"bans/{q(carol)}"), {"reason": "spam"}, token=mod_token)
        await self.ok("POST", self.url(f"kick/{q(dave)}"), {"reason": "noise"}, token=self.token)
        await self.ok("DELETE", self.url(f"bans/{q(carol)}"), token=mod_token)

        entries = await self.audit()
        for entry in entries:
            self.assertRegex(entry["created_at"], r"^\d{4}-\d\d-\d\dT")
            self.assertTrue(entry["id"].startswith("$"))
        seen = [(e["action"], e["user_id"], e["target_id"], e["reason"]) for e in entries]
        self.assertEqual(seen[:5], [
            ("member_unban", mod, carol, None),
            ("member_kick", self.alice, dave, "noise"),
            ("member_ban", mod, carol, "spam"),
            ("message_delete", self.alice, bob, "ad"),
            ("server_update", self.alice, self.space, None),
        ])
        by_action = {}
        for entry in entries:
            by_action.setdefault(entry["action"], []).append(entry)
        self.assertEqual(by_action["server_update"][0]["changes"], [{"key": "name", "old": "Guild", "new": "Guild 2"}])
        [rename] = by_action["channel_update"]
        self.assertEqual((rename["target_id"], rename["channel_id"], rename["changes"]),
                         (news["id"], news["id"], [{"key": "name", "old": "news", "new": "headlines"}]))
        created = {e["target_id"]: e for e in by_action["channel_create"]}
        self.assertEqual(set(created), {self.general, self.extra, news["id"]})
        self.assertEqual(created[news["id"]]["user_id"], self.alice)
        self.assertIn({"key": "name", "old": None, "new": "news"}, created[news["id"]]["changes"])
        self.assertEqual([(e["target_id"], e["user_id"]) for e in by_action["role_create"]], [("mods", self.alice)])
        [role_update] = by_action["member_role_update"]
        self.assertEqual((role_update["target_id"], role_update["changes"]),
                         (mod, [{"key": "$add", "old": None, "new": ["mods"]}]))
        # Joins, invites and the room-creation events are not entries.
        self.assertEqual(len(entries), 11, seen)

        # Filters: action, actor, limit, entry IDs and times.
        bans = await self.audit(action="member_ban")
        self.assertEqual([(e["user_id"], e["target_id"]) for e in bans], [(mod, carol)])
        self.assertEqual({e["action"] for e in await self.audit(user_id=mod)}, {"member_ban", "member_unban"})
        self.assertEqual(await self.audit(limit=2), entries[:2])
        self.assertEqual(await self.audit(before=entries[1]["id"]), entries[2:])
        self.assertEqual(await self.audit(after=entries[2]["id"]), entries[:2])
        self.assertEqual(await self.audit(before=entries[2]["id"], limit=1), entries[3:4])
        newest, oldest = ms(entries[0]["created_at"]), ms(entries[-1]["created_at"])
        self.assertEqual(await self.audit(after=newest), [])
        self.assertEqual(await self.audit(before=newest + 1), entries)
        self.assertEqual(await self.audit(after=oldest - 1), entries)
        self.assertNotIn(entries[-1], await self.audit(before=oldest))
        self.assertMatrixError(await self.request("GET", self.url("audit-log?action=nope"), token=self.token),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", self.url("audit-log?before=yesterday"), token=self.token),
                               400, "M_INVALID_PARAM")
        self.assertEqual(len(await self.audit(limit=1000)), 11)

        # The moderator holds VIEW_AUDIT_LOG; a plain member does not.
        self.assertEqual(await self.audit(mod_token), entries)
        self.assertMatrixError(await self.request("GET", self.url("audit-log"), token=bob_token), 403, "M_FORBIDDEN")

    @inline
    async def test_deleted_channel_in_audit_log(self):
        await self.setup_server()
        # The first thing done in a new server is an entry, not part of its creation.
        await self.ok("PUT", f"{V3}/rooms/{q(self.space)}/state/{perms.ROLE_EVENT}/r1",
                      {"name": "r1", "permissions": "0", "position": 1}, token=self.token)
        self.assertEqual([e["target_id"] for e in await self.audit(action="role_create")], ["r1"])
        await self.ok("PATCH", f"{API}/channels/{q(self.extra)}", {"name": "later"}, token=self.token)
        # Deleted by a moderator (the owner's homeserver writes for them): the log names them.
        mod, mod_token = await self.member("mod")
        await self.give_role(mod, "mods", P.MANAGE_CHANNELS | P.VIEW_AUDIT_LOG, 2)
        await self.ok("DELETE", f"{API}/channels/{q(self.extra)}", token=mod_token)
        entries = await self.audit(mod_token, action="channel_delete")
        self.assertEqual([(e["target_id"], e["user_id"]) for e in entries], [(self.extra, mod)])
        self.assertEqual(entries[0]["changes"], [{"key": "name", "old": "later", "new": None}])

        # Pins and unpins.
        sent = await self.ok("PUT", f"{V3}/rooms/{q(self.general)}/send/m.room.message/t1",
                             {"msgtype": "m.text", "body": "rules"}, token=mod_token)
        pins = f"{V3}/rooms/{q(self.general)}/state/m.room.pinned_events/"
        await self.ok("PUT", pins, {"pinned": [sent["event_id"]]}, token=self.token)
        await self.ok("PUT", pins, {"pinned": []}, token=self.token)
        entries = await self.audit()
        self.assertEqual([(e["action"], e["target_id"], e["channel_id"]) for e in entries[:2]],
                         [("message_unpin", sent["event_id"], self.general),
                          ("message_pin", sent["event_id"], self.general)])

    @inline
    async def test_openapi_lists_routes(self):
        status, document = await self.request("GET", f"{API}/openapi.json")
        self.assertEqual(status, 200)
        paths = document["paths"]
        for path, methods in (("/servers/{server_id}/bans/{user_id}", {"put", "delete"}),
                              ("/servers/{server_id}/bans", {"get"}),
                              ("/servers/{server_id}/kick/{user_id}", {"post"}),
                              ("/servers/{server_id}/members/{user_id}", {"delete"}),
                              ("/servers/{server_id}/audit-log", {"get"})):
            self.assertLessEqual(methods, set(paths[path]), path)


class ModerationSqliteTests(ModerationTests, HomeserverTestCase):
    engine = "sqlite"


class ModerationPostgresTests(ModerationTests, HomeserverTestCase):
    engine = "postgres"

"""The original Drocsid's security gaps (../shared/reference/drocsid-spec.md §12), each
shown closed through the /api/v1 face (and the Matrix face where it offers a way round):
search without permission checks, joining without an invite or despite a ban,
MANAGE_ROLES granting ADMINISTRATOR, invite uses racing past max_uses, blocked users
still able to DM. (Private-channel events reaching every member is the gateway's:
tests/test_gateway.py.)"""

from __future__ import annotations

from twisted.internet import defer

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.permissions import P
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline


class SecurityGapTests(ApiHelpers):
    async def server(self):
        """alice's server; bob a plain member of it and of #general."""
        self.alice, self.token = await self.user("alice")
        self.bob, self.bob_token = await self.user("bob")
        server = await self.ok("POST", f"{API}/servers", {"name": "Guild"}, token=self.token)
        self.space, self.general = server["id"], server["channels"][0]["id"]
        invite = await self.ok("POST", f"{API}/servers/{q(self.space)}/invites", {}, token=self.token)
        await self.ok("POST", f"{API}/invites/{invite['code']}", token=self.bob_token)

    @inline
    async def test_search_only_finds_what_one_may_read(self):
        await self.server()
        secret = await self.ok("POST", f"{API}/servers/{q(self.space)}/channels", {"name": "staff", "private": True},
                               token=self.token)
        await self.ok("POST", f"{API}/channels/{q(secret['id'])}/messages", {"content": "launch codes 1234"},
                      token=self.token)
        await self.ok("POST", f"{API}/channels/{q(self.general)}/messages", {"content": "launch party"},
                      token=self.token)
        found = await self.ok("GET", f"{API}/search?q=launch", token=self.bob_token)
        self.assertEqual([m["content"] for m in found["messages"]], ["launch party"])
        status, body = await self.request("GET", f"{API}/search?q=launch&channel_id={q(secret['id'])}",
                                          token=self.bob_token)
        self.assertIn(status, (403, 404), body)
        owner = await self.ok("GET", f"{API}/search?q=launch", token=self.token)
        self.assertEqual(sorted(m["content"] for m in owner["messages"]), ["launch codes 1234", "launch party"])
        # An outsider finds nothing of the server at all.
        carol, carol_token = await self.user("carol")
        self.assertEqual((await self.ok("GET", f"{API}/search?q=launch", token=carol_token))["messages"], [])

    @inline
    async def test_no_way_in_without_an_invite_or_despite_a_ban(self):
        await self.server()
        carol, carol_token = await self.user("carol")
        # No join-by-ID route, and the Matrix join rules say invite.
        status, body = await self.request("POST", f"{API}/servers/{q(self.space)}/members/@me", {},
                                          token=carol_token)
        self.assertIn(status, (404, 405), body)
        status, _ = await self.request("POST", f"{V3}/join/{q(self.space)}", {}, token=carol_token)
        self.assertEqual(status, 403)
        status, _ = await self.request("POST", f"{V3}/join/{q(self.general)}", {}, token=carol_token)
        self.assertEqual(status, 403)
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(self.general)}/join", {},
                                                  token=carol_token), 404, "M_NOT_FOUND")
        # Banned: a valid invite code, a Matrix join and a channel join all fail.
        await self.ok("PUT", f"{API}/servers/{q(self.space)}/bans/{q(self.bob)}", {"reason": "spam"}, token=self.token)
        invite = await self.ok("POST", f"{API}/servers/{q(self.space)}/invites", {}, token=self.token)
        self.assertMatrixError(await self.request("POST", f"{API}/invites/{invite['code']}", token=self.bob_token),
                               403, "M_FORBIDDEN")
        for room in (self.space, self.general):
            status, _ = await self.request("POST", f"{V3}/join/{q(room)}", {}, token=self.bob_token)
            self.assertEqual(status, 403)
        joined = (await self.ok("GET", f"{V3}/joined_rooms", token=self.bob_token))["joined_rooms"]
        self.assertFalse({self.space, self.general} & set(joined))

    @inline
    async def test_manage_roles_cannot_hand_out_administrator(self):
        await self.server()
        mods = await self.ok("POST", f"{API}/servers/{q(self.space)}/roles",
                             {"name": "Mods", "permissions": str(int(P.MANAGE_ROLES))}, token=self.token)
        await self.ok("PUT", f"{API}/servers/{q(self.space)}/members/{q(self.bob)}/roles/{mods['id']}", {},
                      token=self.token)
        roles = f"{API}/servers/{q(self.space)}/roles"
        admin = str(int(P.ADMINISTRATOR))
        self.assertMatrixError(await self.request("POST", roles, {"name": "Boss", "permissions": admin},
                                                  token=self.bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PATCH", f"{roles}/{mods['id']}", {"permissions": admin},
                                                  token=self.bob_token), 403, "M_FORBIDDEN")
        boss = await self.ok("POST", roles, {"name": "Boss", "permissions": admin, "position": 1}, token=self.token)
        self.assertMatrixError(await self.request(
            "PUT", f"{API}/servers/{q(self.space)}/members/{q(self.bob)}/roles/{boss['id']}", {},
            token=self.bob_token), 403, "M_FORBIDDEN")
        # Nor through the Matrix face, whatever power level the room gives.
        status, _ = await self.request("PUT", f"{V3}/rooms/{q(self.space)}/state/{perms.MEMBER_EVENT}/"
                                       f"{q(perms.member_state_key(self.bob))}", {"roles": [mods["id"], boss["id"]]},
                                       token=self.bob_token)
        self.assertEqual(status, 403)
        member = await self.ok("GET", f"{API}/servers/{q(self.space)}/members/{q(self.bob)}", token=self.token)
        self.assertEqual(member["role_ids"], [mods["id"]])

    @inline
    async def test_invite_uses_cannot_race_past_max_uses(self):
        await self.server()
        invite = await self.ok("POST", f"{API}/servers/{q(self.space)}/invites", {"max_uses": 3}, token=self.token)
        users = [await self.user(f"racer{i}") for i in range(10)]
        results = await defer.gatherResults([
            defer.ensureDeferred(self.request("POST", f"{API}/invites/{invite['code']}", token=token))
            for _, token in users])
        self.assertEqual(sorted(status for status, _ in results), [200] * 3 + [404] * 7)
        server = await self.ok("GET", f"{API}/servers/{q(self.space)}", token=self.token)
        members = await self.ok("GET", f"{API}/servers/{q(self.space)}/members", token=self.token)
        winners = {user for (user, _), (status, _) in zip(users, results) if status == 200}
        self.assertEqual({m["user_id"] for m in members}, {self.alice, self.bob} | winners, server)
        for (user, token), (status, _) in zip(users, results):
            joined = (await self.ok("GET", f"{V3}/joined_rooms", token=token))["joined_rooms"]
            self.assertEqual(self.space in joined, user in winners, user)

    @inline
    async def test_blocked_users_cannot_dm(self):
        await self.server()
        carol, carol_token = await self.user("carol")
        await self.ok("PUT", f"{API}/relationships/{q(self.bob)}/block", {}, token=carol_token)
        self.assertMatrixError(await self.request("POST", f"{API}/dms", {"recipient_id": carol},
                                                  token=self.bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/dms/group", {"recipient_ids": [carol, self.alice]},
                                                  token=self.bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PUT", f"{API}/relationships/{q(carol)}", {},
                                                  token=self.bob_token), 403, "M_FORBIDDEN")
        self.assertEqual(await self.ok("GET", f"{API}/dms", token=carol_token), [])


class SecurityGapSqliteTests(SecurityGapTests, HomeserverTestCase):
    engine = "sqlite"


class SecurityGapPostgresTests(SecurityGapTests, HomeserverTestCase):
    engine = "postgres"

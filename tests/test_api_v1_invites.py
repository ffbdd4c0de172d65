"""/api/v1 invite codes: create, list, delete with permissions; preview without an
account; redeeming joins the server and its channels; expiry, max uses under concurrent
redemptions, bans, deleted codes, and a failed join giving its use back; both engines."""

from __future__ import annotations

from twisted.internet import defer

from homeserver.drocsid import invites
from homeserver.drocsid import permissions as perms
from homeserver.http.errors import MatrixError
from storage.stores.invite_codes import InviteCode
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline


class InviteTests(ApiHelpers):
    async def setup_server(self):
        alice, token = await self.user("alice")
        server = await self.ok("POST", f"{API}/servers", {"name": "Guild", "description": "A place"}, token=token)
        return (alice, token), server["id"], server["channels"][0]["id"]

    def invites_of(self, space):
        return f"{API}/servers/{q(space)}/invites"

    async def set_everyone(self, space, token, bits):
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/{perms.ROLE_EVENT}/",
                      {"name": "@everyone", "permissions": str(int(bits)), "position": 0}, token=token)

    async def uses(self, space, token, code):
        listed = await self.ok("GET", self.invites_of(space), token=token)
        return next(i["uses"] for i in listed if i["code"] == code)

    async def members(self, space, token):
        state = await self.ok("GET", f"{V3}/rooms/{q(space)}/joined_members", token=token)
        return sorted(state["joined"])

    @inline
    async def test_create_list_delete_with_permissions(self):
        (alice, token), space, _general = await self.setup_server()
        plain = await self.ok("POST", self.invites_of(space), {}, token=token)
        self.assertEqual(len(plain["code"]), invites.CODE_LENGTH)
        self.assertTrue(set(plain["code"]) <= set(invites.ALPHABET))
        self.assertFalse(set(plain["code"]) & set("0O1Il"))
        self.assertEqual((plain["server_id"], plain["creator_id"], plain["max_uses"], plain["uses"],
                          plain["expires_at"]), (space, alice, 0, 0, None))
        self.assertRegex(plain["created_at"], r"^\d{4}-\d\d-\d\dT")
        limited = await self.ok("POST", self.invites_of(space), {"max_uses": 5, "max_age_secs": 3600}, token=token)
        self.assertEqual(limited["max_uses"], 5)
        self.assertRegex(limited["expires_at"], r"^\d{4}-\d\d-\d\dT")
        never = await self.ok("POST", self.invites_of(space), {"max_uses": None, "max_age_secs": 0}, token=token)
        self.assertEqual((never["max_uses"], never["expires_at"]), (0, None))

        # Bad input changes nothing.
        for body in ({"max_uses": -1}, {"max_uses": "5"}, {"max_age_secs": 1.5}, {"max_uses": True},
                     {"max_age_secs": 10 ** 12}):
            self.assertMatrixError(await self.request("POST", self.invites_of(space), body, token=token),
                                   400, "M_INVALID_PARAM")
        listed = await self.ok("GET", self.invites_of(space), token=token)
        self.assertEqual([i["code"] for i in listed], [plain["code"], limited["code"], never["code"]])

        # bob joins with a code; @everyone may create invites but not list them.
        bob, bob_token = await self.user("bob")
        await self.ok("POST", f"{API}/invites/{plain['code']}", token=bob_token)
        bobs = await self.ok("POST", self.invites_of(space), {"max_uses": 1}, token=bob_token)
        self.assertEqual(bobs["creator_id"], bob)
        self.assertMatrixError(await self.request("GET", self.invites_of(space), token=bob_token),
                               403, "M_FORBIDDEN")
        # bob may delete his own code, not alice's.
        self.assertMatrixError(await self.request("DELETE", f"{self.invites_of(space)}/{limited['code']}",
                                                  token=bob_token), 403, "M_FORBIDDEN")
        await self.ok("DELETE", f"{self.invites_of(space)}/{bobs['code']}", token=bob_token)
        self.assertMatrixError(await self.request("GET", f"{API}/invites/{bobs['code']}"), 404, "M_NOT_FOUND")

        # Without CREATE_INSTANT_INVITE on @everyone, bob may not create codes.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.CREATE_INSTANT_INVITE)
        self.assertMatrixError(await self.request("POST", self.invites_of(space), {}, token=bob_token),
                               403, "M_FORBIDDEN")
        # A non-member can do nothing with the server's codes.
        carol, carol_token = await self.user("carol")
        self.assertMatrixError(await self.request("POST", self.invites_of(space), {}, token=carol_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("DELETE", f"{self.invites_of(space)}/{plain['code']}",
                                                  token=carol_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", self.invites_of("!nope:x"), {}, token=token),
                               404, "M_NOT_FOUND")

        # The owner deletes a code: it is gone for everyone.
        await self.ok("DELETE", f"{self.invites_of(space)}/{limited['code']}", token=token)
        self.assertMatrixError(await self.request("GET", f"{API}/invites/{limited['code']}"), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("POST", f"{API}/invites/{limited['code']}", token=carol_token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("DELETE", f"{self.invites_of(space)}/{limited['code']}",
                                                  token=token), 404, "M_NOT_FOUND")
        listed = await self.ok("GET", self.invites_of(space), token=token)
        self.assertEqual([i["code"] for i in listed], [plain["code"], never["code"]])
        self.assertNotIn(carol, await self.members(space, token))

    @inline
    async def test_preview_without_an_account(self):
        (alice, token), space, _general = await self.setup_server()
        invite = await self.ok("POST", self.invites_of(space), {"max_uses": 2}, token=token)
        status, preview = await self.request("GET", f"{API}/invites/{invite['code']}")
        self.assertEqual(status, 200, preview)
        self.assertEqual(preview, {"code": invite["code"], "expires_at": None,
                                   "server": {"id": space, "name": "Guild", "icon_url": None,
                                              "description": "A place", "member_count": 1}})
        for unknown in ("ABCDEFGHJKLM", "has0and1", "x" * 100):
            self.assertMatrixError(await self.request("GET", f"{API}/invites/{unknown}"), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{API}/invites/{invite['code']}?server=bad%20name"),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", f"{API}/invites/{invite['code']}@a?server=b"),
                               400, "M_INVALID_PARAM")
        # This instance named explicitly is this instance.
        status, named = await self.request("GET", f"{API}/invites/{invite['code']}@{self.hs.config.server_name}")
        self.assertEqual((status, named), (200, preview))
        # Previewing takes no use.
        self.assertEqual(await self.uses(space, token, invite["code"]), 0)

    @inline
    async def test_redeem_joins_the_server_and_its_channels(self):
        (alice, token), space, general = await self.setup_server()
        invite = await self.ok("POST", self.invites_of(space), {}, token=token)
        bob, bob_token = await self.user("bob")
        self.assertMatrixError(await self.request("POST", f"{API}/invites/{invite['code']}"), 401, "M_MISSING_TOKEN")
        server = await self.ok("POST", f"{API}/invites/{invite['code']}", token=bob_token)
        self.assertEqual((server["id"], server["name"], server["owner_id"]), (space, "Guild", alice))
        self.assertEqual([c["id"] for c in server["channels"]], [general])
        mine = await self.ok("GET", f"{API}/users/@me/servers", token=bob_token)
        self.assertEqual([s["id"] for s in mine], [space])
        self.assertEqual(await self.members(space, token), sorted([alice, bob]))
        sent = await self.ok("POST", f"{API}/channels/{q(general)}/messages", {"content": "hi"}, token=bob_token)
        self.assertEqual(sent["author"]["id"], bob)
        # The Matrix invite came from the code's creator.
        member = await self.ok("GET", f"{V3}/rooms/{q(space)}/state/m.room.member/{q(bob)}", token=token)
        self.assertEqual(member["membership"], "join")
        self.assertEqual(await self.uses(space, token, invite["code"]), 1)
        # A member redeeming again gets the server, and no use is counted.
        again = await self.ok("POST", f"{API}/invites/{invite['code']}", token=bob_token)
        self.assertEqual(again["id"], space)
        self.assertEqual(await self.uses(space, token, invite["code"]), 1)
        status, preview = await self.request("GET", f"{API}/invites/{invite['code']}")
        self.assertEqual(preview["server"]["member_count"], 2)
        # Someone already invited by hand only needs to join: no use counted either.
        carol, carol_token = await self.user("carol")
        await self.ok("POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": carol}, token=token)
        await self.ok("POST", f"{API}/invites/{invite['code']}", token=carol_token)
        self.assertEqual(await self.uses(space, token, invite["code"]), 1)
        self.assertEqual(await self.members(space, token), sorted([alice, bob, carol]))

    @inline
    async def test_expired_codes_are_gone(self):
        (alice, token), space, _general = await self.setup_server()
        # The clock cannot be moved in a running server: the expired code is stored
        # directly, as an old code would be.
        now = self.hs.clock.time_ms()
        expired = InviteCode("EXPxRED23456", space, alice, 0, 0, now - 1000, now - 3_600_000)
        self.assertTrue(await self.hs.invite_codes.create(expired))
        listed = await self.ok("GET", self.invites_of(space), token=token)
        self.assertEqual([i["code"] for i in listed], [expired.code])
        self.assertIsNotNone(listed[0]["expires_at"])
        self.assertMatrixError(await self.request("GET", f"{API}/invites/{expired.code}"), 404, "M_NOT_FOUND")
        bob, bob_token = await self.user("bob")
        self.assertMatrixError(await self.request("POST", f"{API}/invites/{expired.code}", token=bob_token),
                               404, "M_NOT_FOUND")
        self.assertEqual(await self.uses(space, token, expired.code), 0)
        self.assertEqual(await self.members(space, token), [alice])
        # One that expires in an hour works.
        fresh = await self.ok("POST", self.invites_of(space), {"max_age_secs": 3600}, token=token)
        await self.ok("POST", f"{API}/invites/{fresh['code']}", token=bob_token)
        self.assertEqual(await self.members(space, token), sorted([alice, bob]))

    @inline
    async def test_concurrent_redemptions_never_pass_max_uses(self):
        (alice, token), space, _general = await self.setup_server()
        invite = await self.ok("POST", self.invites_of(space), {"max_uses": 3}, token=token)
        users = [await self.user(f"racer{i}") for i in range(8)]
        results = await defer.gatherResults([
            defer.ensureDeferred(self.request("POST", f"{API}/invites/{invite['code']}", token=t))
            for _u, t in users])
        statuses = sorted(status for status, _body in results)
        self.assertEqual(statuses, [200, 200, 200, 404, 404, 404, 404, 404], results)
        winners = sorted(u for (u, _t), (status, _b) in zip(users, results) if status == 200)
        self.assertEqual(await self.uses(space, token, invite["code"]), 3)
        self.assertEqual(await self.members(space, token), sorted([alice, *winners]))
        self.assertMatrixError(await self.request("GET", f"{API}/invites/{invite['code']}"), 404, "M_NOT_FOUND")

    @inline
    async def test_the_store_takes_uses_atomically(self):
        # Many takes at once on the database threads (several connections on PostgreSQL):
        # exactly max_uses of them get the code.
        (alice, token), space, _general = await self.setup_server()
        invite = await self.ok("POST", self.invites_of(space), {"max_uses": 7}, token=token)
        now = self.hs.clock.time_ms()
        taken = await defer.gatherResults([defer.ensureDeferred(self.hs.invite_codes.take_use(invite["code"], now))
                                           for _ in range(30)])
        granted = [t for t in taken if t is not None]
        self.assertEqual(len(granted), 7)
        self.assertEqual(await self.uses(space, token, invite["code"]), 7)

    @inline
    async def test_banned_users_are_refused_without_a_use(self):
        (alice, token), space, _general = await self.setup_server()
        invite = await self.ok("POST", self.invites_of(space), {"max_uses": 5}, token=token)
        bob, bob_token = await self.user("bob")
        await self.ok("POST", f"{API}/invites/{invite['code']}", token=bob_token)
        await self.ok("POST", f"{V3}/rooms/{q(space)}/ban", {"user_id": bob, "reason": "spam"}, token=token)
        self.assertMatrixError(await self.request("POST", f"{API}/invites/{invite['code']}", token=bob_token),
                               403, "M_FORBIDDEN")
        self.assertEqual(await self.uses(space, token, invite["code"]), 1)
        self.assertEqual(await self.members(space, token), [alice])
        self.assertMatrixError(await self.request("GET", f"{API}/servers/{q(space)}", token=bob_token),
                               403, "M_FORBIDDEN")

    @inline
    async def test_a_failed_join_gives_its_use_back(self):
        (alice, token), space, _general = await self.setup_server()
        invite = await self.ok("POST", self.invites_of(space), {"max_uses": 1}, token=token)
        bob, bob_token = await self.user("bob")
        membership = self.hs.membership
        real_join = membership.join

        async def failing_join(*args, **kwargs):
            raise MatrixError(500, "M_UNKNOWN", "the join failed")
        membership.join = failing_join
        try:
            self.assertMatrixError(await self.request("POST", f"{API}/invites/{invite['code']}", token=bob_token),
                                   500, "M_UNKNOWN")
        finally:
            membership.join = real_join
        self.assertEqual(await self.uses(space, token, invite["code"]), 0)
        # Nothing is left behind: the invite was withdrawn.
        member = await self.ok("GET", f"{V3}/rooms/{q(space)}/state/m.room.member/{q(bob)}", token=token)
        self.assertEqual(member["membership"], "leave")
        # The code still has its one use.
        await self.ok("POST", f"{API}/invites/{invite['code']}", token=bob_token)
        self.assertEqual(await self.uses(space, token, invite["code"]), 1)
        self.assertEqual(await self.members(space, token), sorted([alice, bob]))


class SqliteInviteTests(InviteTests, HomeserverTestCase):
    engine = "sqlite"


class PostgresInviteTests(InviteTests, HomeserverTestCase):
    engine = "postgres"

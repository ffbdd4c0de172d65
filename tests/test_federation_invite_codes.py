"""Invite codes across instances: a user of B previews and redeems a code of A through
B's /api/v1, joins A's server and #general over federation, and talks there; used-up
codes and bans are refused by A."""

from __future__ import annotations

from urllib.parse import quote

from tests.support.api import API, V3, q
from tests.support.federation import TwoServerTestCase
from tests.support.server import inline


class CrossInstanceInviteTests(TwoServerTestCase):
    def assertError(self, result, status, errcode):
        got_status, body = result
        self.assertEqual((got_status, body.get("errcode")), (status, errcode), body)

    @inline
    async def test_user_of_another_instance_joins_and_talks(self):
        server = await self.ok(self.a, "POST", f"{API}/servers", {"name": "Guild"}, token=self.alice)
        space, general = server["id"], server["channels"][0]["id"]
        invite = await self.ok(self.a, "POST", f"{API}/servers/{q(space)}/invites", {"max_uses": 2},
                               token=self.alice)
        code, a_name = invite["code"], quote(self.a.server_name, safe="")

        # The preview through B, without an account.
        preview = await self.ok(self.b, "GET", f"{API}/invites/{code}?server={a_name}")
        self.assertEqual((preview["code"], preview["server"]["id"], preview["server"]["name"],
                          preview["server"]["member_count"], preview["instance"]),
                         (code, space, "Guild", 1, self.a.server_name))
        self.assertError(await self.b.request("GET", f"{API}/invites/ABCDEFGHJKLM?server={a_name}"),
                         404, "M_NOT_FOUND")

        bob, bob_id = self.bob, self.bob_id
        joined = await self.ok(self.b, "POST", f"{API}/invites/{code}?server={a_name}", token=bob)
        self.assertEqual(joined["id"], space)
        self.assertEqual([c["id"] for c in joined["channels"]], [general])
        listed = await self.ok(self.a, "GET", f"{API}/servers/{q(space)}/invites", token=self.alice)
        self.assertEqual(listed[0]["uses"], 1)

        mine = await self.ok(self.b, "GET", f"{API}/users/@me/servers", token=bob)
        self.assertEqual([(s["id"], s["name"]) for s in mine], [(space, "Guild")])
        got = await self.ok(self.b, "GET", f"{API}/servers/{q(space)}", token=bob)
        self.assertEqual([c["name"] for c in got["channels"]], ["general"])

        sent = await self.ok(self.b, "POST", f"{API}/channels/{q(general)}/messages", {"content": "hi from b"},
                             token=bob)

        async def alice_reads_it():
            status, messages = await self.a.request("GET", f"{API}/channels/{q(general)}/messages",
                                                    token=self.alice)
            return [m for m in messages if m["id"] == sent["id"]] if status == 200 else None
        [message] = await self.a.wait_for(alice_reads_it, what="bob's message on A")
        self.assertEqual((message["content"], message["author"]["id"]), ("hi from b", bob_id))

        # Redeeming again (code@servername form) counts no use.
        await self.ok(self.b, "POST", f"{API}/invites/{code}@{a_name}", token=bob)
        listed = await self.ok(self.a, "GET", f"{API}/servers/{q(space)}/invites", token=self.alice)
        self.assertEqual(listed[0]["uses"], 1)

        # The second use goes to dave; the code is then used up for erin.
        dave = await self.b.register("dave")
        await self.ok(self.b, "POST", f"{API}/invites/{code}@{a_name}", token=dave)
        # B was in the space already: dave's join and #general are built on B.
        dave_view = await self.ok(self.b, "GET", f"{API}/servers/{q(space)}", token=dave)
        self.assertEqual([c["id"] for c in dave_view["channels"]], [general])
        from_dave = await self.ok(self.b, "POST", f"{API}/channels/{q(general)}/messages", {"content": "me too"},
                                  token=dave)

        async def alice_reads_dave():
            status, messages = await self.a.request("GET", f"{API}/channels/{q(general)}/messages",
                                                    token=self.alice)
            return status == 200 and any(m["id"] == from_dave["id"] for m in messages)
        await self.a.wait_for(alice_reads_dave, what="dave's message on A")
        erin = await self.b.register("erin")
        self.assertError(await self.b.request("POST", f"{API}/invites/{code}@{a_name}", token=erin),
                         404, "M_NOT_FOUND")
        members = await self.ok(self.a, "GET", f"{V3}/rooms/{q(space)}/joined_members", token=self.alice)
        self.assertEqual(sorted(members["joined"]),
                         sorted([self.a.user_id("alice"), bob_id, self.b.user_id("dave")]))

    @inline
    async def test_banned_remote_user_is_refused(self):
        server = await self.ok(self.a, "POST", f"{API}/servers", {"name": "Guild"}, token=self.alice)
        space = server["id"]
        invite = await self.ok(self.a, "POST", f"{API}/servers/{q(space)}/invites", {}, token=self.alice)
        a_name = quote(self.a.server_name, safe="")
        eve = await self.b.register("eve")
        eve_id = self.b.user_id("eve")
        await self.ok(self.a, "POST", f"{V3}/rooms/{q(space)}/ban", {"user_id": eve_id}, token=self.alice)
        self.assertError(await self.b.request("POST", f"{API}/invites/{invite['code']}?server={a_name}", token=eve),
                         403, "M_FORBIDDEN")
        listed = await self.ok(self.a, "GET", f"{API}/servers/{q(space)}/invites", token=self.alice)
        self.assertEqual(listed[0]["uses"], 0)
        self.assertEqual(await self.ok(self.b, "GET", f"{API}/users/@me/servers", token=eve), [])

    @inline
    async def test_a_server_may_redeem_only_for_its_own_users(self):
        server = await self.ok(self.a, "POST", f"{API}/servers", {"name": "Guild"}, token=self.alice)
        space = server["id"]
        invite = await self.ok(self.a, "POST", f"{API}/servers/{q(space)}/invites", {}, token=self.alice)
        # B asks for a user of yet another server.
        from federation.client import FederationHttpError, path_of
        from federation.invite_codes import PREFIX
        with self.assertRaises(FederationHttpError) as caught:
            await self.b.hs.federation_client.post_json(
                self.a.server_name, path_of(PREFIX, invite["code"], "redeem"), {"user_id": "@mallory:elsewhere.test"})
        self.assertEqual((caught.exception.status, caught.exception.errcode), (403, "M_FORBIDDEN"))
        listed = await self.ok(self.a, "GET", f"{API}/servers/{q(space)}/invites", token=self.alice)
        self.assertEqual(listed[0]["uses"], 0)

"""/api/v1 friends, friend requests, blocks and user search, seen by both users, on both engines."""

from __future__ import annotations

from tests.support.api import API, V3, ApiHelpers, q
from tests.support.federation import TwoServerTestCase
from tests.support.server import HomeserverTestCase, inline


class RelationshipTests(ApiHelpers):
    def one(self, user_id):
        return f"{API}/relationships/{q(user_id)}"

    async def relationships(self, token):
        return {r["user_id"]: r["type"] for r in await self.ok("GET", f"{API}/relationships", token=token)}

    async def search(self, term, token):
        return [u["id"] for u in await self.ok("GET", f"{API}/users/search?q={q(term)}", token=token)]

    async def account_data(self, user_id, data_type, token):
        status, body = await self.request("GET", f"{V3}/user/{q(user_id)}/account_data/{data_type}", token=token)
        return body if status == 200 else None

    @inline
    async def test_request_accept_remove(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        since = (await self.ok("GET", f"{V3}/sync?timeout=0", token=bob_token))["next_batch"]
        self.assertEqual(await self.ok("PUT", self.one(bob), {}, token=alice_token), {"type": "pending_outgoing"})
        # The change is on bob's account-data stream: an incremental sync (and the gateway) sees it.
        synced = await self.ok("GET", f"{V3}/sync?timeout=0&since={since}", token=bob_token)
        self.assertIn({"type": "io.drocsid.relationships", "content": {alice: "pending_incoming"}},
                      synced["account_data"]["events"])
        self.assertEqual(await self.relationships(alice_token), {bob: "pending_outgoing"})
        self.assertEqual(await self.relationships(bob_token), {alice: "pending_incoming"})
        listed = await self.ok("GET", f"{API}/relationships", token=bob_token)
        self.assertEqual(listed, [{"user_id": alice, "type": "pending_incoming",
                                   "user": {"id": alice, "display_name": "alice"}}])
        # Asking again changes nothing; the asker cannot accept their own request.
        self.assertEqual(await self.ok("PUT", self.one(bob), {}, token=alice_token), {"type": "pending_outgoing"})
        self.assertMatrixError(await self.request("POST", self.one(bob) + "/accept", {}, token=alice_token),
                               404, "M_NOT_FOUND")

        self.assertEqual(await self.ok("POST", self.one(alice) + "/accept", {}, token=bob_token), {"type": "friend"})
        self.assertEqual(await self.relationships(alice_token), {bob: "friend"})
        self.assertEqual(await self.relationships(bob_token), {alice: "friend"})
        # Kept as account data, which advances the user's stream (what /sync and the gateway follow).
        self.assertEqual(await self.account_data(alice, "io.drocsid.relationships", alice_token), {bob: "friend"})

        await self.ok("DELETE", self.one(alice), token=bob_token)
        self.assertEqual(await self.relationships(alice_token), {})
        self.assertEqual(await self.relationships(bob_token), {})
        self.assertMatrixError(await self.request("DELETE", self.one(alice), token=bob_token), 404, "M_NOT_FOUND")

    @inline
    async def test_crossed_requests_decline_and_cancel(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        # Asking someone who asked you accepts.
        await self.ok("PUT", self.one(bob), {}, token=alice_token)
        self.assertEqual(await self.ok("PUT", self.one(alice), {}, token=bob_token), {"type": "friend"})
        self.assertEqual(await self.relationships(alice_token), {bob: "friend"})
        await self.ok("DELETE", self.one(bob), token=alice_token)

        # Declining removes the request on both sides.
        await self.ok("PUT", self.one(bob), {}, token=alice_token)
        self.assertEqual(await self.ok("POST", self.one(alice) + "/decline", {}, token=bob_token), {"type": None})
        self.assertEqual(await self.relationships(alice_token), {})
        self.assertEqual(await self.relationships(bob_token), {})
        self.assertMatrixError(await self.request("POST", self.one(alice) + "/decline", {}, token=bob_token),
                               404, "M_NOT_FOUND")

        # The asker cancels.
        await self.ok("PUT", self.one(bob), {}, token=alice_token)
        await self.ok("DELETE", self.one(bob), token=alice_token)
        self.assertEqual(await self.relationships(bob_token), {})

    @inline
    async def test_bad_input_changes_nothing(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        await self.ok("PUT", self.one(bob), {}, token=alice_token)
        for method, suffix in (("PUT", ""), ("POST", "/accept"), ("POST", "/decline"), ("DELETE", ""),
                               ("PUT", "/block"), ("DELETE", "/block")):
            body = {} if method != "DELETE" else None
            self.assertMatrixError(await self.request(method, self.one("@nobody:test.local") + suffix, body,
                                                      token=alice_token), 404, "M_NOT_FOUND")
            self.assertMatrixError(await self.request(method, self.one(alice) + suffix, body, token=alice_token),
                                   400, "M_INVALID_PARAM")
            self.assertMatrixError(await self.request(method, self.one("nobody") + suffix, body,
                                                      token=alice_token), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("DELETE", self.one(bob) + "/block", token=alice_token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{API}/relationships"), 401, "M_MISSING_TOKEN")
        self.assertEqual(await self.relationships(alice_token), {bob: "pending_outgoing"})
        self.assertEqual(await self.relationships(bob_token), {alice: "pending_incoming"})
        self.assertIsNone(await self.account_data(alice, "m.ignored_user_list", alice_token))

    @inline
    async def test_block_ends_friendship_and_stops_requests(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        await self.ok("PUT", self.one(bob), {}, token=alice_token)
        await self.ok("POST", self.one(alice) + "/accept", {}, token=bob_token)

        self.assertEqual(await self.ok("PUT", self.one(bob) + "/block", {}, token=alice_token), {"type": "blocked"})
        self.assertEqual(await self.relationships(alice_token), {bob: "blocked"})
        self.assertEqual(await self.relationships(bob_token), {})
        # A block is the Matrix ignore list.
        self.assertEqual(await self.account_data(alice, "m.ignored_user_list", alice_token),
                         {"ignored_users": {bob: {}}})
        # Neither can send the other a friend request.
        self.assertMatrixError(await self.request("PUT", self.one(alice), {}, token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PUT", self.one(bob), {}, token=alice_token), 403, "M_FORBIDDEN")
        self.assertEqual(await self.relationships(alice_token), {bob: "blocked"})
        self.assertEqual(await self.relationships(bob_token), {})

        # Unblocking restores the ability, not the friendship.
        self.assertEqual(await self.ok("DELETE", self.one(bob) + "/block", token=alice_token), {"type": None})
        self.assertEqual(await self.relationships(alice_token), {})
        self.assertEqual(await self.account_data(alice, "m.ignored_user_list", alice_token), {"ignored_users": {}})
        self.assertEqual(await self.ok("PUT", self.one(alice), {}, token=bob_token), {"type": "pending_outgoing"})
        self.assertEqual(await self.relationships(alice_token), {bob: "pending_incoming"})

    @inline
    async def test_ignore_list_from_a_matrix_client_is_a_block(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        await self.ok("PUT", f"{V3}/user/{q(alice)}/account_data/m.ignored_user_list",
                      {"ignored_users": {bob: {}}}, token=alice_token)
        self.assertEqual(await self.relationships(alice_token), {bob: "blocked"})
        self.assertMatrixError(await self.request("PUT", self.one(alice), {}, token=bob_token), 403, "M_FORBIDDEN")
        await self.ok("DELETE", self.one(bob) + "/block", token=alice_token)
        self.assertEqual(await self.relationships(alice_token), {})

    @inline
    async def test_user_search(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        bobby, _ = await self.user("bobby")
        robert, robert_token = await self.user("robert")
        await self.ok("PUT", f"{V3}/profile/{q(robert)}/displayname", {"displayname": "Bob Roberts"},
                      token=robert_token)
        found = await self.ok("GET", f"{API}/users/search?q=bob", token=alice_token)
        self.assertEqual([u["id"] for u in found], [bob, bobby, robert])
        self.assertEqual(found[0], {"id": bob, "username": "bob", "display_name": "bob", "avatar_url": None})
        self.assertEqual(found[2]["display_name"], "Bob Roberts")
        self.assertEqual(await self.search("BOBBY", alice_token), [bobby])
        self.assertEqual(await self.search("test.local", alice_token), [])
        self.assertEqual(await self.search("%", alice_token), [])
        # One does not find oneself.
        self.assertEqual(await self.search("alice", alice_token), [])
        for term in ("", "x" * 33):
            self.assertMatrixError(await self.request("GET", f"{API}/users/search?q={term}", token=alice_token),
                                   400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", f"{API}/users/search", token=alice_token),
                               400, "M_INVALID_PARAM")

        # A block hides both ways, and unblocking shows again.
        await self.ok("PUT", self.one(bob) + "/block", {}, token=alice_token)
        self.assertEqual(await self.search("bob", alice_token), [bobby, robert])
        self.assertEqual(await self.search("ali", bob_token), [])
        self.assertEqual(await self.search("ali", robert_token), [alice])
        await self.ok("DELETE", self.one(bob) + "/block", token=alice_token)
        self.assertEqual(await self.search("bob", alice_token), [bob, bobby, robert])
        self.assertEqual(await self.search("ali", bob_token), [alice])

    @inline
    async def test_openapi_lists_the_routes(self):
        _status, document = await self.request("GET", f"{API}/openapi.json")
        paths = document["paths"]
        self.assertLessEqual({"put", "delete"}, set(paths["/relationships/{user_id}"]))
        self.assertLessEqual({"get", "post"}, set(paths["/dms"]))
        self.assertIn("get", paths["/users/search"])


class RelationshipSqliteTests(RelationshipTests, HomeserverTestCase):
    engine = "sqlite"


class RelationshipPostgresTests(RelationshipTests, HomeserverTestCase):
    engine = "postgres"


class FederatedFriendTests(TwoServerTestCase):
    """Friend requests between two instances travel as the io.drocsid.friend_request EDU."""

    async def wait_relationships(self, peer, token, expected, what):
        async def probe():
            found = {r["user_id"]: r["type"] for r in await self.call(peer, "GET", "/relationships", token)}
            return found == expected
        await peer.wait_for(probe, what=what)

    @inline
    async def test_request_accept_remove_across_instances(self):
        await self.call(self.a, "PUT", f"/relationships/{q(self.bob_id)}", self.alice, {})
        await self.wait_relationships(self.b, self.bob, {self.alice_id: "pending_incoming"}, "the request")
        await self.wait_relationships(self.a, self.alice, {self.bob_id: "pending_outgoing"}, "the request sent")

        self.assertEqual(await self.call(self.b, "POST", f"/relationships/{q(self.alice_id)}/accept", self.bob,
                                         {}), {"type": "friend"})
        await self.wait_relationships(self.a, self.alice, {self.bob_id: "friend"}, "the acceptance")

        await self.call(self.a, "DELETE", f"/relationships/{q(self.bob_id)}", self.alice)
        await self.wait_relationships(self.b, self.bob, {}, "the removal")

        # bob blocks alice: her next request is dropped on arrival.
        await self.call(self.b, "PUT", f"/relationships/{q(self.alice_id)}/block", self.bob, {})
        await self.call(self.a, "PUT", f"/relationships/{q(self.bob_id)}", self.alice, {})
        # A later EDU from the same origin arrives after it: its effect proves the first was handled.
        carol_token = await self.a.register("carol")
        carol = self.a.user_id("carol")
        await self.call(self.a, "PUT", f"/relationships/{q(self.bob_id)}", carol_token, {})
        await self.wait_relationships(self.b, self.bob, {self.alice_id: "blocked", carol: "pending_incoming"},
                                      "carol's request, after alice's")
        status, stored = await self.b.request("GET", f"{V3}/user/{q(self.bob_id)}/account_data/io.drocsid.relationships",
                                              token=self.bob)
        self.assertEqual((status, stored), (200, {self.alice_id: "blocked", carol: "pending_incoming"}))


class FederatedFriendPostgresTests(FederatedFriendTests):
    engine = "postgres"

"""/api/v1 message search: only channels the user may view and read now (and their
direct messages), with the author/channel/server/has/before/after filters, on both
engines."""

from __future__ import annotations

from urllib.parse import quote

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline


class SearchTests(ApiHelpers):
    async def setup_search_server(self):
        """alice owns a server with #general and a private #secret; bob is a plain member."""
        (alice, token), (bob, bob_token), space, general = await self.setup_server()
        secret = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "secret", "private": True},
                               token=token)
        return (alice, token), (bob, bob_token), space, general, secret["id"]

    async def send(self, channel, content, token):
        return await self.ok("POST", f"{API}/channels/{q(channel)}/messages", {"content": content}, token=token)

    async def search(self, token, **query):
        return await self.ok("GET", self.path(**query), token=token)

    def path(self, **query):
        return f"{API}/search?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())

    async def found(self, token, **query):
        return [m["content"] for m in (await self.search(token, **query))["messages"]]

    async def set_everyone(self, space, token, bits):
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/{perms.ROLE_EVENT}/",
                      {"name": "@everyone", "permissions": str(int(bits)), "position": 0}, token=token)

    @inline
    async def test_only_readable_channels_are_searched(self):
        (alice, token), (bob, bob_token), space, general, secret = await self.setup_search_server()
        pie = await self.send(general, "apple pie recipe", token)
        juice = await self.send(general, "apple juice at https://juice.example/now", bob_token)
        await self.send(secret, "apple secret plans", token)
        await self.send(general, "nothing to see", token)

        answer = await self.search(bob_token, q="apple")
        self.assertEqual(answer["total"], 2)
        self.assertEqual([m["id"] for m in answer["messages"]], [juice["id"], pie["id"]])
        first = answer["messages"][0]
        self.assertEqual((first["channel_id"], first["author"]["id"], first["content"]),
                         (general, bob, "apple juice at https://juice.example/now"))
        self.assertIn("reactions", first)
        # The owner reads #secret too.
        self.assertEqual(await self.found(token, q="apple"),
                         ["apple secret plans", "apple juice at https://juice.example/now", "apple pie recipe"])
        self.assertEqual(await self.found(token, q="secret plans"), ["apple secret plans"])
        self.assertEqual((await self.search(bob_token, q="secret plans"))["total"], 0)
        # Asking for #secret by name does not help bob (refused as /channels/{id} refuses him).
        self.assertMatrixError(await self.request("GET", self.path(q="apple", channel_id=secret), token=bob_token),
                               403, "M_FORBIDDEN")
        # For someone outside the server, the channel is as unknown as a made-up room.
        self.assertMatrixError(await self.request("GET", self.path(q="apple", channel_id=general),
                                                  token=(await self.user("dave"))[1]), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", self.path(q="apple", channel_id="!nope:test.local"),
                                                  token=bob_token), 404, "M_NOT_FOUND")

        # Given VIEW_CHANNEL in #secret (a member overwrite), bob finds it there.
        # (The overwrite route lets him into the room before it answers.)
        await self.ok("PUT", f"{API}/channels/{q(secret)}/overwrites/member/{q(bob)}",
                      {"allow": str(int(perms.P.VIEW_CHANNEL)), "deny": "0"}, token=token)
        self.assertEqual(await self.found(bob_token, q="apple", channel_id=secret), ["apple secret plans"])

        # carol is in no server: nothing, and the server is not hers to search.
        carol, carol_token = await self.user("carol")
        self.assertEqual(await self.search(carol_token, q="apple"), {"messages": [], "total": 0})
        self.assertMatrixError(await self.request("GET", self.path(q="apple", server_id=space), token=carol_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("GET", self.path(q="apple", server_id="!nope:test.local"),
                                                  token=carol_token), 404, "M_NOT_FOUND")

        # Without READ_MESSAGE_HISTORY for @everyone, bob reads no channel's history.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.READ_MESSAGE_HISTORY)
        self.assertEqual(await self.found(bob_token, q="apple", server_id=space), [])
        self.assertMatrixError(await self.request("GET", self.path(q="apple", channel_id=general),
                                                  token=bob_token), 403, "M_FORBIDDEN")

    @inline
    async def test_filters(self):
        (alice, token), (bob, bob_token), space, general, secret = await self.setup_search_server()
        first = await self.send(general, "report one", token)
        second = await self.send(general, "report two https://docs.example/x", bob_token)
        third = await self.send(secret, "report three", token)
        fourth = await self.send(general, "report four", token)
        image = await self.ok("PUT", f"{V3}/rooms/{q(general)}/send/m.room.message/img1",
                      {"msgtype": "m.image", "body": "report photo", "url": "mxc://test.local/abc"}, token=token)

        self.assertEqual(await self.found(token, q="report", author_id=bob), ["report two https://docs.example/x"])
        self.assertEqual(await self.found(token, q="report", channel_id=secret), ["report three"])
        self.assertEqual(await self.found(token, q="report", server_id=space, channel_id=secret), ["report three"])
        self.assertEqual(await self.found(token, q="report", has="link"), ["report two https://docs.example/x"])
        attached = (await self.search(token, q="report", has="attachment"))["messages"]
        self.assertEqual([m["id"] for m in attached], [image["event_id"]])
        self.assertEqual(await self.found(token, q="report", before=third["id"]),
                         ["report two https://docs.example/x", "report one"])
        self.assertEqual(await self.found(token, q="report", after=second["id"], before=fourth["id"]),
                         ["report three"])
        self.assertEqual([m["id"] for m in (await self.search(token, q="report", after=fourth["id"]))["messages"]],
                         [image["event_id"]])
        self.assertEqual(len(await self.found(token, q="report", after="2000-01-01")), 5)
        self.assertEqual(await self.found(token, q="report", before="2000-01-01T00:00:00Z"), [])
        # Paging: limit and offset over the same total.
        page = await self.search(token, q="report", limit=2, offset=1)
        self.assertEqual(page["total"], 5)
        self.assertEqual([m["content"] for m in page["messages"]], ["report four", "report three"])
        self.assertEqual(await self.found(token, q="report", offset=5), [])
        # Words, phrases and exclusions.
        self.assertEqual(await self.found(token, q="report -two -three -four -photo"), ["report one"])
        self.assertEqual(await self.found(token, q='"report one"'), ["report one"])

        # An edit's text finds the message (shown edited); a deleted message is never found.
        await self.ok("PATCH", f"{API}/channels/{q(general)}/messages/{q(first['id'])}",
                      {"content": "report one, now with bananas"}, token=token)
        found = (await self.search(token, q="bananas"))["messages"]
        self.assertEqual([(m["id"], m["content"]) for m in found], [(first["id"], "report one, now with bananas")])
        await self.ok("DELETE", f"{API}/channels/{q(general)}/messages/{q(first['id'])}", token=token)
        self.assertEqual(await self.found(token, q="bananas"), [])
        self.assertEqual((await self.search(token, q="report"))["total"], 4)

    @inline
    async def test_direct_messages_are_searched_by_their_members(self):
        (alice, token), (bob, bob_token), space, general, secret = await self.setup_search_server()
        carol, carol_token = await self.user("carol")
        room = await self.ok("POST", f"{V3}/createRoom", {"is_direct": True, "invite": [bob],
                                                           "preset": "trusted_private_chat"}, token=token)
        dm = room["room_id"]
        await self.ok("POST", f"{V3}/join/{q(dm)}", {}, token=bob_token)
        await self.ok("PUT", f"{V3}/user/{q(alice)}/account_data/m.direct", {bob: [dm]}, token=token)
        await self.ok("PUT", f"{V3}/user/{q(bob)}/account_data/m.direct", {alice: [dm]}, token=bob_token)
        await self.ok("PUT", f"{V3}/rooms/{q(dm)}/send/m.room.message/d1",
                      {"msgtype": "m.text", "body": "lunch tomorrow?"}, token=token)
        await self.send(general, "lunch in the channel", bob_token)

        found = (await self.search(bob_token, q="lunch"))["messages"]
        self.assertEqual([(m["channel_id"], m["content"]) for m in found],
                         [(general, "lunch in the channel"), (dm, "lunch tomorrow?")])
        self.assertEqual(found[1]["author"]["id"], alice)
        self.assertEqual(await self.found(bob_token, q="lunch", channel_id=dm), ["lunch tomorrow?"])
        # carol is not in it, even if she lists it as hers.
        await self.ok("PUT", f"{V3}/user/{q(carol)}/account_data/m.direct", {alice: [dm]}, token=carol_token)
        self.assertEqual((await self.search(carol_token, q="lunch"))["total"], 0)
        self.assertMatrixError(await self.request("GET", self.path(q="lunch", channel_id=dm), token=carol_token),
                               404, "M_NOT_FOUND")
        # A DM is not part of a server.
        self.assertMatrixError(await self.request("GET", self.path(q="lunch", channel_id=dm, server_id=space),
                                                  token=bob_token), 404, "M_NOT_FOUND")

    @inline
    async def test_bad_queries(self):
        (alice, token), (bob, bob_token), space, general, secret = await self.setup_search_server()
        await self.send(general, "anything", token)
        self.assertMatrixError(await self.request("GET", f"{API}/search", token=token), 400, "M_MISSING_PARAM")
        for query in ({"q": ""}, {"q": "  "}, {"q": "!!"}, {"q": "x", "has": "image"}, {"q": "x", "limit": 0},
                      {"q": "x", "limit": "many"}, {"q": "x", "offset": -1}, {"q": "x", "before": "yesterday"},
                      {"q": "x", "after": "$unknown"}):
            status, body = await self.request("GET", self.path(**query), token=token)
            self.assertEqual(status, 400, (query, body))
        # limit is capped at 100.
        self.assertEqual((await self.search(token, q="anything", limit=1000))["total"], 1)
        status, body = await self.request("GET", self.path(q="anything"))
        self.assertEqual(status, 401, body)


class SearchSqliteTests(SearchTests, HomeserverTestCase):
    engine = "sqlite"


class SearchPostgresTests(SearchTests, HomeserverTestCase):
    engine = "postgres"

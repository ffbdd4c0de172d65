"""Threads, edits, reactions, references and context, as clients use them."""

from __future__ import annotations

from urllib.parse import quote

from tests.support.server import HomeserverTestCase, inline

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


def q(value: str) -> str:
    return quote(value, safe="")


class RelationsTests:
    async def setup_room(self):
        self.alice = (await self.register("alice"))["access_token"]
        self.bob = (await self.register("bob"))["access_token"]
        status, body = await self.request("POST", f"{V3}/createRoom", {"preset": "public_chat"}, token=self.alice)
        self.room_id = body["room_id"]
        await self.request("POST", f"{V3}/join/{q(self.room_id)}", {}, token=self.bob)

    async def send(self, token, content, event_type="m.room.message"):
        self._n = getattr(self, "_n", 0) + 1
        status, body = await self.request("PUT", f"{V3}/rooms/{q(self.room_id)}/send/{event_type}/r{self._n}",
                                          content, token=token)
        self.assertEqual(status, 200, body)
        return body["event_id"]

    async def get_event(self, token, event_id):
        status, body = await self.request("GET", f"{V3}/rooms/{q(self.room_id)}/event/{q(event_id)}", token=token)
        self.assertEqual(status, 200, body)
        return body

    @inline
    async def test_threads_summaries_and_listing(self):
        await self.setup_room()
        root = await self.send(self.alice, {"msgtype": "m.text", "body": "root"})
        other_root = await self.send(self.alice, {"msgtype": "m.text", "body": "other root"})
        replies = []
        for i in range(3):
            replies.append(await self.send(self.bob, {"msgtype": "m.text", "body": f"reply {i}", "m.relates_to": {
                "rel_type": "m.thread", "event_id": root}}))
        await self.send(self.alice, {"msgtype": "m.text", "body": "elsewhere", "m.relates_to": {
            "rel_type": "m.thread", "event_id": other_root}})
        event = await self.get_event(self.bob, root)
        summary = event["unsigned"]["m.relations"]["m.thread"]
        self.assertEqual(summary["count"], 3)
        self.assertEqual(summary["latest_event"]["event_id"], replies[-1])
        self.assertTrue(summary["current_user_participated"])
        status, threads = await self.request("GET", f"{V1}/rooms/{q(self.room_id)}/threads", token=self.bob)
        self.assertEqual([t["event_id"] for t in threads["chunk"]], [other_root, root])
        status, mine = await self.request("GET", f"{V1}/rooms/{q(self.room_id)}/threads", token=self.bob,
                                          query={"include": "participated"})
        self.assertEqual([t["event_id"] for t in mine["chunk"]], [root])
        status, page = await self.request("GET", f"{V1}/rooms/{q(self.room_id)}/relations/{q(root)}/m.thread",
                                          token=self.bob, query={"limit": "2"})
        self.assertEqual([e["event_id"] for e in page["chunk"]], replies[:0:-1])
        status, rest = await self.request("GET", f"{V1}/rooms/{q(self.room_id)}/relations/{q(root)}/m.thread",
                                          token=self.bob, query={"limit": "2", "from": page["next_batch"]})
        self.assertEqual([e["event_id"] for e in rest["chunk"]], [replies[0]])
        self.assertNotIn("next_batch", rest)
        # The summary travels in /sync too.
        status, sync = await self.request("GET", f"{V3}/sync", token=self.alice,
                                          query={"filter": '{"room": {"timeline": {"limit": 50}}}'})
        timeline = sync["rooms"]["join"][self.room_id]["timeline"]["events"]
        root_in_sync, = [e for e in timeline if e["event_id"] == root]
        self.assertEqual(root_in_sync["unsigned"]["m.relations"]["m.thread"]["count"], 3)

    @inline
    async def test_edits_only_by_the_sender(self):
        await self.setup_room()
        original = await self.send(self.alice, {"msgtype": "m.text", "body": "helo"})
        edit = await self.send(self.alice, {"msgtype": "m.text", "body": "* hello", "m.new_content": {
            "msgtype": "m.text", "body": "hello"}, "m.relates_to": {"rel_type": "m.replace", "event_id": original}})
        await self.send(self.bob, {"msgtype": "m.text", "body": "* hijack", "m.new_content": {
            "msgtype": "m.text", "body": "hijack"}, "m.relates_to": {"rel_type": "m.replace", "event_id": original}})
        event = await self.get_event(self.bob, original)
        self.assertEqual(event["unsigned"]["m.relations"]["m.replace"]["event_id"], edit)
        self.assertEqual(event["unsigned"]["m.relations"]["m.replace"]["sender"], "@alice:test.local")

    @inline
    async def test_reactions_and_their_redaction(self):
        await self.setup_room()
        message = await self.send(self.alice, {"msgtype": "m.text", "body": "react to me"})
        thumbs = await self.send(self.bob, {"m.relates_to": {"rel_type": "m.annotation", "event_id": message,
                                                             "key": "👍"}}, "m.reaction")
        await self.send(self.alice, {"m.relates_to": {"rel_type": "m.annotation", "event_id": message,
                                                      "key": "🎉"}}, "m.reaction")
        path = f"{V1}/rooms/{q(self.room_id)}/relations/{q(message)}/m.annotation/m.reaction"
        status, page = await self.request("GET", path, token=self.alice)
        self.assertEqual(sorted(e["content"]["m.relates_to"]["key"] for e in page["chunk"]), ["🎉", "👍"])
        await self.request("PUT", f"{V3}/rooms/{q(self.room_id)}/redact/{q(thumbs)}/undo", {}, token=self.bob)
        status, page = await self.request("GET", path, token=self.alice)
        self.assertEqual([e["content"]["m.relates_to"]["key"] for e in page["chunk"]], ["🎉"])

    @inline
    async def test_references(self):
        await self.setup_room()
        message = await self.send(self.alice, {"msgtype": "m.text", "body": "poll"})
        ref = await self.send(self.bob, {"m.relates_to": {"rel_type": "m.reference", "event_id": message}},
                              "org.example.answer")
        event = await self.get_event(self.alice, message)
        self.assertEqual(event["unsigned"]["m.relations"]["m.reference"], {"chunk": [{"event_id": ref}]})

    @inline
    async def test_context_around_an_event(self):
        await self.setup_room()
        ids = [await self.send(self.alice, {"msgtype": "m.text", "body": f"c{i}"}) for i in range(9)]
        status, body = await self.request("GET", f"{V3}/rooms/{q(self.room_id)}/context/{q(ids[4])}",
                                          token=self.bob, query={"limit": "4"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["event"]["event_id"], ids[4])
        self.assertEqual([e["event_id"] for e in body["events_before"]], [ids[3], ids[2]])
        self.assertEqual([e["event_id"] for e in body["events_after"]], [ids[5], ids[6]])
        self.assertIn("m.room.create", [e["type"] for e in body["state"]])
        status, more = await self.request("GET", f"{V3}/rooms/{q(self.room_id)}/messages", token=self.bob,
                                          query={"dir": "f", "from": body["end"], "limit": "5"})
        self.assertEqual([e["event_id"] for e in more["chunk"]][:2], [ids[7], ids[8]])

    @inline
    async def test_strangers_see_no_relations(self):
        await self.setup_room()
        eve = (await self.register("eve"))["access_token"]
        message = await self.send(self.alice, {"msgtype": "m.text", "body": "private-ish"})
        self.assertMatrixError(await self.request("GET", f"{V1}/rooms/{q(self.room_id)}/relations/{q(message)}",
                                                  token=eve), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{V3}/rooms/{q(self.room_id)}/context/{q(message)}",
                                                  token=eve), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{V1}/rooms/{q(self.room_id)}/threads", token=eve),
                               403, "M_FORBIDDEN")


class RelationsSqliteTests(RelationsTests, HomeserverTestCase):
    engine = "sqlite"


class RelationsPostgresTests(RelationsTests, HomeserverTestCase):
    engine = "postgres"

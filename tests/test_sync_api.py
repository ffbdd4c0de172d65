"""/sync, /messages, typing, receipts, account data, filters and profiles over HTTP, on
both engines, as a client sees them."""

from __future__ import annotations

import json
from urllib.parse import quote

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from tests.support.server import HomeserverTestCase, inline

V3 = "/_matrix/client/v3"


def q(value: str) -> str:
    return quote(value, safe="")


class SyncTestCase(HomeserverTestCase):
    async def user(self, name: str) -> str:
        return (await self.register(name))["access_token"]

    async def sync(self, token: str, since: str | None = None, **params):
        query = {k: (json.dumps(v) if isinstance(v, dict) else str(v)) for k, v in params.items()}
        if since:
            query["since"] = since
        status, body = await self.request("GET", f"{V3}/sync", token=token, query=query)
        self.assertEqual(status, 200, body)
        return body

    async def room(self, token: str, **body) -> str:
        status, answer = await self.request("POST", f"{V3}/createRoom", body, token=token)
        self.assertEqual(status, 200, answer)
        return answer["room_id"]

    async def say(self, token: str, room_id: str, text: str) -> str:
        self._n = getattr(self, "_n", 0) + 1
        status, body = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/{self._n}",
                                          {"msgtype": "m.text", "body": text}, token=token)
        self.assertEqual(status, 200, body)
        return body["event_id"]

    def bodies(self, section: dict) -> list[str]:
        return [e["content"].get("body") for e in section["timeline"]["events"] if e["type"] == "m.room.message"]


class SyncTests:
    @inline
    async def test_initial_then_incremental(self):
        alice = await self.user("alice")
        room_id = await self.room(alice, name="Chat")
        await self.say(alice, room_id, "one")
        first = await self.sync(alice)
        push_rules, = [e["content"] for e in first["account_data"]["events"] if e["type"] == "m.push_rules"]
        self.assertIn("override", push_rules["global"])
        joined = first["rooms"]["join"][room_id]
        self.assertEqual(self.bodies(joined), ["one"])
        types = {e["type"] for e in joined["timeline"]["events"]} | {e["type"] for e in joined["state"]["events"]}
        self.assertTrue({"m.room.create", "m.room.name", "m.room.power_levels", "m.room.member"} <= types)
        self.assertNotIn("room_id", joined["timeline"]["events"][0])
        self.assertEqual(joined["summary"]["m.joined_member_count"], 1)

        await self.say(alice, room_id, "two")
        second = await self.sync(alice, first["next_batch"])
        section = second["rooms"]["join"][room_id]
        self.assertEqual(self.bodies(section), ["two"])
        # The sending device gets its transaction ID back, to match its local echo.
        self.assertEqual(section["timeline"]["events"][-1]["unsigned"]["transaction_id"], str(self._n))
        self.assertFalse(section["timeline"]["limited"])
        # Nothing new: the room is not listed at all.
        third = await self.sync(alice, second["next_batch"])
        self.assertNotIn(room_id, third["rooms"]["join"])

    @inline
    async def test_long_poll_returns_when_a_message_arrives(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.room(alice, preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)
        since = (await self.sync(bob))["next_batch"]
        waiting = defer.ensureDeferred(self.sync(bob, since, timeout=20000))
        await deferLater(reactor, 0.2, lambda: None)
        self.assertFalse(waiting.called)
        await self.say(alice, room_id, "wake up")
        body = await waiting
        self.assertEqual(self.bodies(body["rooms"]["join"][room_id]), ["wake up"])

    @inline
    async def test_long_poll_times_out_empty(self):
        alice = await self.user("alice")
        since = (await self.sync(alice))["next_batch"]
        body = await self.sync(alice, since, timeout=300)
        self.assertEqual(body["rooms"]["join"], {})
        self.assertEqual(body["next_batch"], since)

    @inline
    async def test_limited_timeline_and_back_pagination(self):
        alice = await self.user("alice")
        room_id = await self.room(alice, topic="history")
        for i in range(12):
            await self.say(alice, room_id, f"m{i}")
        body = await self.sync(alice, filter={"room": {"timeline": {"limit": 5}}})
        section = body["rooms"]["join"][room_id]
        self.assertTrue(section["timeline"]["limited"])
        self.assertEqual(self.bodies(section), [f"m{i}" for i in range(7, 12)])
        state_types = {e["type"] for e in section["state"]["events"]}
        self.assertIn("m.room.topic", state_types)
        # Page back from prev_batch to the start of the room.
        seen, token = [], section["timeline"]["prev_batch"]
        for _ in range(10):
            status, page = await self.request("GET", f"{V3}/rooms/{q(room_id)}/messages", token=alice,
                                              query={"dir": "b", "from": token, "limit": "4"})
            self.assertEqual(status, 200, page)
            seen += [e["content"].get("body") for e in page["chunk"] if e["type"] == "m.room.message"]
            if "end" not in page:
                break
            token = page["end"]
        self.assertEqual(seen, [f"m{i}" for i in range(6, -1, -1)])
        self.assertEqual(page["chunk"][-1]["type"], "m.room.create")
        # Forwards from the start.
        status, forward = await self.request("GET", f"{V3}/rooms/{q(room_id)}/messages", token=alice,
                                             query={"dir": "f", "from": "t0", "limit": "3"})
        self.assertEqual(forward["chunk"][0]["type"], "m.room.create")

    @inline
    async def test_invite_join_and_leave_sections(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        since = (await self.sync(bob))["next_batch"]
        room_id = await self.room(alice, name="Secret", invite=["@bob:test.local"])
        body = await self.sync(bob, since)
        invite = body["rooms"]["invite"][room_id]["invite_state"]["events"]
        self.assertIn(("m.room.name", "Secret"), [(e["type"], e["content"].get("name")) for e in invite])
        self.assertIn("invite", [e["content"].get("membership") for e in invite if e["type"] == "m.room.member"])
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)
        body = await self.sync(bob, body["next_batch"])
        joined = body["rooms"]["join"][room_id]
        all_types = {e["type"] for e in joined["state"]["events"] + joined["timeline"]["events"]}
        self.assertIn("m.room.name", all_types)
        self.assertNotIn(room_id, body["rooms"]["invite"])
        await self.request("POST", f"{V3}/rooms/{q(room_id)}/kick", {"user_id": "@bob:test.local"}, token=alice)
        body = await self.sync(bob, body["next_batch"])
        left = body["rooms"]["leave"][room_id]
        self.assertEqual(left["timeline"]["events"][-1]["content"]["membership"], "leave")
        self.assertNotIn(room_id, body["rooms"]["join"])

    @inline
    async def test_typing_and_receipts(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.room(alice, preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)
        event_id = await self.say(alice, room_id, "read me")
        since = (await self.sync(bob))["next_batch"]
        status, _ = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/typing/{q('@alice:test.local')}",
                                       {"typing": True, "timeout": 10000}, token=alice)
        self.assertEqual(status, 200)
        body = await self.sync(bob, since)
        ephemeral = body["rooms"]["join"][room_id]["ephemeral"]["events"]
        self.assertIn({"type": "m.typing", "content": {"user_ids": ["@alice:test.local"]}}, ephemeral)
        await self.request("PUT", f"{V3}/rooms/{q(room_id)}/typing/{q('@alice:test.local')}", {"typing": False},
                           token=alice)
        body = await self.sync(bob, body["next_batch"])
        ephemeral = body["rooms"]["join"][room_id]["ephemeral"]["events"]
        self.assertIn({"type": "m.typing", "content": {"user_ids": []}}, ephemeral)

        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/receipt/m.read/{q(event_id)}",
                                       {"thread_id": "main"}, token=bob)
        self.assertEqual(status, 200)
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/receipt/m.read.private/{q(event_id)}",
                                       {}, token=alice)
        body = await self.sync(alice, since)
        receipts = [e for e in body["rooms"]["join"][room_id]["ephemeral"]["events"] if e["type"] == "m.receipt"]
        reads = receipts[0]["content"][event_id]
        self.assertEqual(reads["m.read"]["@bob:test.local"]["thread_id"], "main")
        self.assertIn("@alice:test.local", reads["m.read.private"])
        body = await self.sync(bob, since)
        receipts = [e for e in body["rooms"]["join"][room_id]["ephemeral"]["events"] if e["type"] == "m.receipt"]
        self.assertNotIn("m.read.private", receipts[0]["content"][event_id])
        self.assertMatrixError(await self.request("POST", f"{V3}/rooms/{q(room_id)}/receipt/m.bogus/{q(event_id)}",
                                                  {}, token=bob), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request(
            "PUT", f"{V3}/rooms/{q(room_id)}/typing/{q('@bob:test.local')}", {"typing": True}, token=alice),
            403, "M_FORBIDDEN")

    @inline
    async def test_push_rule_changes_arrive_as_account_data(self):
        alice = await self.user("alice")
        since = (await self.sync(alice))["next_batch"]
        status, _ = await self.request("PUT", f"{V3}/pushrules/global/override/.m.rule.master/enabled",
                                       {"enabled": True}, token=alice)
        self.assertEqual(status, 200)
        body = await self.sync(alice, since, timeout=5000)
        rules, = [e["content"] for e in body["account_data"]["events"] if e["type"] == "m.push_rules"]
        master, = [r for r in rules["global"]["override"] if r["rule_id"] == ".m.rule.master"]
        self.assertTrue(master["enabled"])

    @inline
    async def test_account_data_global_and_per_room(self):
        alice = await self.user("alice")
        room_id = await self.room(alice)
        since = (await self.sync(alice))["next_batch"]
        path = f"{V3}/user/{q('@alice:test.local')}/account_data/m.direct"
        status, _ = await self.request("PUT", path, {"@bob:test.local": [room_id]}, token=alice)
        self.assertEqual(status, 200)
        status, content = await self.request("GET", path, token=alice)
        self.assertEqual(content, {"@bob:test.local": [room_id]})
        room_path = f"{V3}/user/{q('@alice:test.local')}/rooms/{q(room_id)}/account_data/m.tag"
        await self.request("PUT", room_path, {"tags": {"u.work": {}}}, token=alice)
        body = await self.sync(alice, since)
        self.assertIn({"type": "m.direct", "content": {"@bob:test.local": [room_id]}},
                      body["account_data"]["events"])
        self.assertEqual(body["rooms"]["join"][room_id]["account_data"]["events"],
                         [{"type": "m.tag", "content": {"tags": {"u.work": {}}}}])
        bob = await self.user("bob")
        self.assertMatrixError(await self.request("GET", path, token=bob), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("GET", f"{V3}/user/{q('@alice:test.local')}/account_data/x.none",
                                                  token=alice), 404, "M_NOT_FOUND")

    @inline
    async def test_filters_uploaded_and_inline(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.room(alice, preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)
        await self.say(alice, room_id, "hello")
        definition = {"room": {"timeline": {"types": ["m.room.message"]}, "state": {"lazy_load_members": True}}}
        status, created = await self.request("POST", f"{V3}/user/{q('@bob:test.local')}/filter", definition,
                                             token=bob)
        self.assertEqual(status, 200)
        status, fetched = await self.request("GET", f"{V3}/user/{q('@bob:test.local')}/filter/{created['filter_id']}",
                                             token=bob)
        self.assertEqual(fetched, definition)
        body = await self.sync(bob, filter=created["filter_id"])
        section = body["rooms"]["join"][room_id]
        self.assertEqual({e["type"] for e in section["timeline"]["events"]}, {"m.room.message"})
        members = {e["state_key"] for e in section["state"]["events"] if e["type"] == "m.room.member"}
        self.assertEqual(members, {"@alice:test.local", "@bob:test.local"})
        self.assertMatrixError(await self.request("GET", f"{V3}/sync", token=bob, query={"filter": "99"}),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{V3}/sync", token=bob, query={"filter": "{bad"}),
                               400, "M_NOT_JSON")
        self.assertMatrixError(await self.request("GET", f"{V3}/sync", token=bob, query={"since": "nonsense"}),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{V3}/user/{q('@bob:test.local')}/filter",
                                                  {"room": {"timeline": {"limit": "x"}}}, token=bob),
                               400, "M_INVALID_PARAM")

    @inline
    async def test_profile_propagates_into_rooms(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.room(alice, preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)
        status, profile = await self.request("GET", f"{V3}/profile/{q('@alice:test.local')}")
        self.assertEqual(profile, {"displayname": "alice"})
        status, _ = await self.request("PUT", f"{V3}/profile/{q('@alice:test.local')}/displayname",
                                       {"displayname": "Alice A."}, token=alice)
        self.assertEqual(status, 200)
        status, name = await self.request("GET", f"{V3}/profile/{q('@alice:test.local')}/displayname")
        self.assertEqual(name, {"displayname": "Alice A."})
        status, members = await self.request("GET", f"{V3}/rooms/{q(room_id)}/joined_members", token=bob)
        self.assertEqual(members["joined"]["@alice:test.local"]["display_name"], "Alice A.")
        self.assertMatrixError(await self.request("PUT", f"{V3}/profile/{q('@alice:test.local')}/displayname",
                                                  {"displayname": "x"}, token=bob), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PUT", f"{V3}/profile/{q('@alice:test.local')}/avatar_url",
                                                  {"avatar_url": "http://x"}, token=alice), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", f"{V3}/profile/{q('@nobody:test.local')}"),
                               404, "M_NOT_FOUND")

    @inline
    async def test_messages_needs_membership(self):
        alice, eve = await self.user("alice"), await self.user("eve")
        room_id = await self.room(alice)
        self.assertMatrixError(await self.request("GET", f"{V3}/rooms/{q(room_id)}/messages", token=eve),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("GET", f"{V3}/rooms/{q(room_id)}/messages", token=alice,
                                                  query={"dir": "x"}), 400, "M_INVALID_PARAM")


class SyncSqliteTests(SyncTests, SyncTestCase):
    engine = "sqlite"


class SyncPostgresTests(SyncTests, SyncTestCase):
    engine = "postgres"


class UnreadCountTests:
    @inline
    async def test_counts_follow_messages_mentions_and_receipts(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.room(alice, preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=await self.user("carol"))
        for text in ("one", "two"):
            await self.say(alice, room_id, text)
        self._n += 1
        status, mention = await self.request(
            "PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/{self._n}",
            {"msgtype": "m.text", "body": "bob: look", "m.mentions": {"user_ids": ["@bob:test.local"]}}, token=alice)
        body = await self.sync(bob)
        counts = body["rooms"]["join"][room_id]["unread_notifications"]
        self.assertEqual(counts, {"notification_count": 3, "highlight_count": 1})
        # alice's own messages never count for her.
        body = await self.sync(alice)
        self.assertEqual(body["rooms"]["join"][room_id]["unread_notifications"]["notification_count"], 0)
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/receipt/m.read/{q(mention['event_id'])}",
                                       {}, token=bob)
        body = await self.sync(bob)
        self.assertEqual(body["rooms"]["join"][room_id]["unread_notifications"],
                         {"notification_count": 0, "highlight_count": 0})


    @inline
    async def test_counts_add_up_across_syncs_and_restart_at_a_receipt(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.room(alice, preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)

        async def counts():
            body = await self.sync(bob)
            return body["rooms"]["join"][room_id]["unread_notifications"]["notification_count"]
        seen = []
        for round_number in range(3):
            for text in ("a", "b"):
                await self.say(alice, room_id, f"{text}{round_number}")
            seen.append(await counts())
        self.assertEqual(seen, [2, 4, 6])
        last = await self.say(alice, room_id, "read up to here")
        status, _ = await self.request("POST", f"{V3}/rooms/{q(room_id)}/receipt/m.read/{q(last)}", {}, token=bob)
        self.assertEqual(await counts(), 0)
        await self.say(alice, room_id, "one more")
        self.assertEqual(await counts(), 1)


class UnreadCountSqliteTests(UnreadCountTests, SyncTestCase):
    engine = "sqlite"


class UnreadCountPostgresTests(UnreadCountTests, SyncTestCase):
    engine = "postgres"


class PresenceTests:
    @inline
    async def test_presence_reaches_room_mates_only(self):
        alice, bob, eve = await self.user("alice"), await self.user("bob"), await self.user("eve")
        room_id = await self.room(alice, preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)
        since = (await self.sync(bob))["next_batch"]
        eve_since = (await self.sync(eve))["next_batch"]
        status, _ = await self.request("PUT", f"{V3}/presence/{q('@alice:test.local')}/status",
                                       {"presence": "unavailable", "status_msg": "dnd: in a meeting"}, token=alice)
        self.assertEqual(status, 200)
        body = await self.sync(bob, since, timeout=5000, set_presence="offline")
        alice_presence = [e for e in body["presence"]["events"] if e["sender"] == "@alice:test.local"]
        self.assertEqual(alice_presence[-1]["content"]["presence"], "unavailable")
        self.assertEqual(alice_presence[-1]["content"]["status_msg"], "dnd: in a meeting")
        body = await self.sync(eve, eve_since, set_presence="offline")
        self.assertNotIn("@alice:test.local", [e["sender"] for e in body["presence"]["events"]])
        status, got = await self.request("GET", f"{V3}/presence/{q('@alice:test.local')}/status", token=bob)
        self.assertEqual((got["presence"], got["status_msg"]), ("unavailable", "dnd: in a meeting"))
        self.assertMatrixError(await self.request("PUT", f"{V3}/presence/{q('@alice:test.local')}/status",
                                                  {"presence": "online"}, token=bob), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PUT", f"{V3}/presence/{q('@bob:test.local')}/status",
                                                  {"presence": "busy"}, token=bob), 400, "M_INVALID_PARAM")


class PresenceSqliteTests(PresenceTests, SyncTestCase):
    engine = "sqlite"


class PresencePostgresTests(PresenceTests, SyncTestCase):
    engine = "postgres"


class SyncRestartTests:
    @inline
    async def test_tokens_stay_valid_across_a_restart(self):
        from homeserver.app import Homeserver
        from homeserver.config import load_config
        from tests.support.server import HttpClient

        alice = await self.user("alice")
        room_id = await self.room(alice)
        await self.say(alice, room_id, "before")
        since = (await self.sync(alice))["next_batch"]
        await self.client.close()
        await self.hs.stop()
        self.hs = Homeserver(load_config(self.config_path, environ={}), reactor)
        await self.hs.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.hs.stop()))
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")
        self.addCleanup(lambda: defer.ensureDeferred(self.client.close()))
        # Nothing new: the old token is not a reason to send everything again.
        body = await self.sync(alice, since, set_presence="offline")
        self.assertNotIn(room_id, body["rooms"]["join"])
        await self.say(alice, room_id, "after")
        body = await self.sync(alice, since, set_presence="offline")
        self.assertEqual(self.bodies(body["rooms"]["join"][room_id]), ["after"])
        self.assertFalse(body["rooms"]["join"][room_id]["timeline"]["limited"])


class SyncRestartSqliteTests(SyncRestartTests, SyncTestCase):
    engine = "sqlite"


class SyncRestartPostgresTests(SyncRestartTests, SyncTestCase):
    engine = "postgres"


class IgnoredUserTests:
    @inline
    async def test_ignored_users_messages_and_invites_are_hidden(self):
        alice, troll = await self.user("alice"), await self.user("troll")
        room_id = await self.room(alice, preset="public_chat")
        await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=troll)
        await self.request("PUT", f"{V3}/user/{q('@alice:test.local')}/account_data/m.ignored_user_list",
                           {"ignored_users": {"@troll:test.local": {}}}, token=alice)
        await self.say(troll, room_id, "spam")
        await self.say(alice, room_id, "hello")
        body = await self.sync(alice)
        self.assertEqual(self.bodies(body["rooms"]["join"][room_id]), ["hello"])
        status, page = await self.request("GET", f"{V3}/rooms/{q(room_id)}/messages", token=alice)
        self.assertNotIn("spam", [e["content"].get("body") for e in page["chunk"]])
        # The troll's join (state) is still there: the room's state must stay whole.
        members = [e["state_key"] for e in body["rooms"]["join"][room_id]["state"]["events"]
                   + body["rooms"]["join"][room_id]["timeline"]["events"] if e["type"] == "m.room.member"]
        self.assertIn("@troll:test.local", members)
        other = await self.room(troll, invite=["@alice:test.local"])
        body = await self.sync(alice)
        self.assertNotIn(other, body["rooms"]["invite"])


class IgnoredUserSqliteTests(IgnoredUserTests, SyncTestCase):
    engine = "sqlite"


class IgnoredUserPostgresTests(IgnoredUserTests, SyncTestCase):
    engine = "postgres"


class KnockTests:
    @inline
    async def test_knock_then_invite_then_join(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.room(alice, name="Knockable", room_version="11",
                                  initial_state=[{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}])
        since = (await self.sync(alice))["next_batch"]
        bob_since = (await self.sync(bob))["next_batch"]
        self.assertMatrixError(await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob),
                               403, "M_FORBIDDEN")
        status, body = await self.request("POST", f"{V3}/knock/{q(room_id)}", {"reason": "let me in"}, token=bob)
        self.assertEqual((status, body), (200, {"room_id": room_id}))
        knocked = await self.sync(bob, bob_since)
        knock_state = knocked["rooms"]["knock"][room_id]["knock_state"]["events"]
        self.assertIn(("m.room.name", "Knockable"), [(e["type"], e["content"].get("name")) for e in knock_state])
        seen = await self.sync(alice, since)
        members = [e for e in seen["rooms"]["join"][room_id]["timeline"]["events"] if e["type"] == "m.room.member"]
        self.assertEqual(members[-1]["content"]["membership"], "knock")
        await self.request("POST", f"{V3}/rooms/{q(room_id)}/invite", {"user_id": "@bob:test.local"}, token=alice)
        status, _ = await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=bob)
        self.assertEqual(status, 200)
        # Knocking on a room that does not allow it is refused and stores nothing.
        public = await self.room(alice, preset="public_chat")
        self.assertMatrixError(await self.request("POST", f"{V3}/knock/{q(public)}", {}, token=bob),
                               403, "M_FORBIDDEN")


class KnockSqliteTests(KnockTests, SyncTestCase):
    engine = "sqlite"


class KnockPostgresTests(KnockTests, SyncTestCase):
    engine = "postgres"

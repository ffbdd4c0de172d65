"""Rooms across homeservers: joins, messages, invites, bans, leaves over real federation
(TLS listeners on loopback, signed requests, both database engines)."""

from __future__ import annotations

import json


from tests.support.federation import TwoServerTestCase, path_id
from tests.support.server import inline


class TwoServerRoomTests(TwoServerTestCase):
    @inline
    async def test_join_and_talk_both_ways(self):
        room_id = await self.a.create_room(self.alice, preset="public_chat", name="Lobby")
        status, body = await self.b.join(self.bob, room_id, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        self.assertEqual(body["room_id"], room_id)

        # The join reached the resident: bob is a member there.
        async def bob_joined_on_a():
            state = await self.a.state(self.alice, room_id)
            return any(e["type"] == "m.room.member" and e["state_key"] == self.b.user_id("bob")
                       and e["content"]["membership"] == "join" for e in state)
        await self.a.wait_for(bob_joined_on_a, what="bob's join")

        from_bob = await self.b.send_text(self.bob, room_id, "hello from b")
        event = await self.a.wait_for_event(self.alice, room_id, from_bob)
        self.assertEqual(event["content"]["body"], "hello from b")
        self.assertEqual(event["sender"], self.b.user_id("bob"))

        from_alice = await self.a.send_text(self.alice, room_id, "hello from a")
        event = await self.b.wait_for_event(self.bob, room_id, from_alice)
        self.assertEqual(event["content"]["body"], "hello from a")

        # B holds the room's name from the state it got on joining.
        status, name = await self.b.request("GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/state/m.room.name",
                                            token=self.bob)
        self.assertEqual((status, name), (200, {"name": "Lobby"}))

    @inline
    async def test_invite_across_servers_then_ban(self):
        room_id = await self.a.create_room(self.alice, preset="private_chat")
        bob_id = self.b.user_id("bob")
        status, body = await self.a.request("POST", f"/_matrix/client/v3/rooms/{path_id(room_id)}/invite",
                                            {"user_id": bob_id}, token=self.alice)
        self.assertEqual(status, 200, body)

        async def invited():
            status, body = await self.b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=self.bob)
            return body["rooms"]["invite"].get(room_id) if status == 200 else None
        invite = await self.b.wait_for(invited, what="the invite in bob's sync")
        types = {e["type"] for e in invite["invite_state"]["events"]}
        self.assertIn("m.room.member", types)
        self.assertIn("m.room.create", types)

        status, body = await self.b.join(self.bob, room_id)
        self.assertEqual(status, 200, body)
        message = await self.b.send_text(self.bob, room_id, "thanks for the invite")
        await self.a.wait_for_event(self.alice, room_id, message)

        status, body = await self.a.request("POST", f"/_matrix/client/v3/rooms/{path_id(room_id)}/ban",
                                            {"user_id": bob_id, "reason": "spam"}, token=self.alice)
        self.assertEqual(status, 200, body)

        async def banned_on_b():
            status, body = await self.b.request(
                "GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/state/m.room.member/{path_id(bob_id)}",
                token=self.bob)
            return status == 200 and body.get("membership") == "ban"
        await self.b.wait_for(banned_on_b, what="the ban on b")
        status, body = await self.b.request(
            "PUT", f"/_matrix/client/v3/rooms/{path_id(room_id)}/send/m.room.message/after-ban",
            {"msgtype": "m.text", "body": "still here?"}, token=self.bob)
        self.assertEqual(status, 403, body)


    @inline
    async def test_history_from_before_the_join_is_backfilled(self):
        room_id = await self.a.create_room(self.alice, preset="public_chat", name="old room")
        history = [await self.a.send_text(self.alice, room_id, f"old message {i}") for i in range(40)]
        status, body = await self.b.join(self.bob, room_id, via=[self.a.server_name])
        self.assertEqual(status, 200, body)

        status, initial = await self.b.request("GET", "/_matrix/client/v3/sync?timeout=0", token=self.bob)
        self.assertEqual(status, 200, initial)
        # Page back from the present with small pages, as a client scrolling up does.
        seen, token = [], None
        for _ in range(40):
            path = f"/_matrix/client/v3/rooms/{path_id(room_id)}/messages?dir=b&limit=15"
            if token:
                path += f"&from={token}"
            status, page = await self.b.request("GET", path, token=self.bob)
            self.assertEqual(status, 200, page)
            seen += page["chunk"]
            token = page.get("end")
            if not token:
                break
        ids = [e["event_id"] for e in seen]
        self.assertEqual([e for e in reversed(ids) if e in history], history)
        self.assertEqual(seen[-1]["type"], "m.room.create")
        self.assertEqual(len(ids), len(set(ids)))
        # Backfilled history is not news: an incremental sync does not carry it.
        status, later = await self.b.request("GET", f"/_matrix/client/v3/sync?timeout=0&since={initial['next_batch']}",
                                             token=self.bob)
        self.assertNotIn(room_id, later["rooms"]["join"])


    @inline
    async def test_leave_and_join_again(self):
        room_id = await self.a.create_room(self.alice, preset="public_chat")
        status, body = await self.b.join(self.bob, room_id, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        status, body = await self.b.request("POST", f"/_matrix/client/v3/rooms/{path_id(room_id)}/leave", {},
                                            token=self.bob)
        self.assertEqual(status, 200, body)
        bob_id = self.b.user_id("bob")

        async def membership_on_a(expected):
            status, body = await self.a.request(
                "GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/state/m.room.member/{path_id(bob_id)}",
                token=self.alice)
            return status == 200 and body["membership"] == expected
        await self.a.wait_for(lambda: membership_on_a("leave"), what="bob's leave on a")
        missed = await self.a.send_text(self.alice, room_id, "while bob was away")

        # B is no longer in the room: joining again goes through A, with today's state.
        status, body = await self.b.join(self.bob, room_id, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        await self.a.wait_for(lambda: membership_on_a("join"), what="bob's new join on a")
        back = await self.a.send_text(self.alice, room_id, "welcome back")
        await self.b.wait_for_event(self.bob, room_id, back)
        reply = await self.b.send_text(self.bob, room_id, "thanks")
        await self.a.wait_for_event(self.alice, room_id, reply)
        self.assertIsNotNone(missed)

    @inline
    async def test_history_hidden_from_newcomers_stays_hidden_over_federation(self):
        room_id = await self.a.create_room(self.alice, preset="public_chat", initial_state=[{
            "type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}])
        secret = await self.a.send_text(self.alice, room_id, "before bob: for members only")
        status, body = await self.b.join(self.bob, room_id, via=[self.a.server_name])
        self.assertEqual(status, 200, body)
        after = await self.a.send_text(self.alice, room_id, "after bob joined")
        await self.b.wait_for_event(self.bob, room_id, after)

        status, page = await self.b.request(
            "GET", f"/_matrix/client/v3/rooms/{path_id(room_id)}/messages?dir=b&limit=50", token=self.bob)
        self.assertEqual(status, 200, page)
        self.assertNotIn("for members only", json.dumps(page))
        self.assertIn("after bob joined", json.dumps(page))
        # The event itself reached B only in its redacted form.
        event = await self.b.hs.events.get_event(secret)
        self.assertIsNotNone(event)
        self.assertEqual(event.content, {})


class TwoServerRoomPostgresTests(TwoServerRoomTests):
    engine = "postgres"

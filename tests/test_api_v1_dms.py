"""/api/v1 direct messages and group DMs as Matrix rooms, seen by both sides, on both engines."""

from __future__ import annotations

from tests.support.api import API, V3, ApiHelpers, q
from tests.support.federation import TwoServerTestCase
from tests.support.server import HomeserverTestCase, inline


class DmTests(ApiHelpers):
    async def direct(self, user_id, token):
        status, body = await self.request("GET", f"{V3}/user/{q(user_id)}/account_data/m.direct", token=token)
        return body if status == 200 else {}

    async def send(self, room_id, content, token):
        return await self.ok("POST", f"{API}/channels/{q(room_id)}/messages", {"content": content}, token=token)

    @inline
    async def test_open_reuse_list_and_talk(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        dm = await self.ok("POST", f"{API}/dms", {"recipient_id": bob}, token=alice_token)
        self.assertEqual((dm["type"], dm["recipients"], dm["last_message_id"]),
                         ("dm", [{"id": bob, "display_name": "bob"}], None))
        room_id = dm["id"]
        # The same DM again, from either side.
        self.assertEqual((await self.ok("POST", f"{API}/dms", {"recipient_id": bob}, token=alice_token))["id"],
                         room_id)
        self.assertEqual((await self.ok("POST", f"{API}/dms", {"recipient_id": alice}, token=bob_token))["id"],
                         room_id)
        # A Matrix room both are in, recorded in both users' m.direct.
        self.assertEqual((await self.direct(alice, alice_token)).get(bob), [room_id])
        self.assertEqual((await self.direct(bob, bob_token)).get(alice), [room_id])
        members = await self.ok("GET", f"{V3}/rooms/{q(room_id)}/joined_members", token=bob_token)
        self.assertEqual(set(members["joined"]), {alice, bob})

        sent = await self.send(room_id, "hi **bob**", alice_token)
        self.assertEqual(sent["channel_id"], room_id)
        reply = await self.send(room_id, "hello", bob_token)
        listed = await self.ok("GET", f"{API}/channels/{q(room_id)}/messages", token=alice_token)
        self.assertEqual([m["id"] for m in listed], [reply["id"], sent["id"]])
        mine = await self.ok("GET", f"{API}/dms", token=alice_token)
        self.assertEqual(mine, [{"id": room_id, "type": "dm", "recipients": [{"id": bob, "display_name": "bob"}],
                                 "last_message_id": reply["id"]}])
        theirs = await self.ok("GET", f"{API}/dms", token=bob_token)
        self.assertEqual([(d["id"], d["recipients"][0]["id"]) for d in theirs], [(room_id, alice)])

        # A stranger sees neither the DM nor its messages.
        _carol, carol_token = await self.user("carol")
        self.assertEqual(await self.ok("GET", f"{API}/dms", token=carol_token), [])
        self.assertMatrixError(await self.request("GET", f"{API}/channels/{q(room_id)}/messages",
                                                  token=carol_token), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{API}/dms/{q(room_id)}", token=carol_token),
                               404, "M_NOT_FOUND")

    @inline
    async def test_bad_recipients_change_nothing(self):
        alice, alice_token = await self.user("alice")
        self.assertMatrixError(await self.request("POST", f"{API}/dms", {"recipient_id": alice},
                                                  token=alice_token), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{API}/dms", {"recipient_id": "@nobody:test.local"},
                                                  token=alice_token), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("POST", f"{API}/dms", {"recipient_id": "not a user"},
                                                  token=alice_token), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{API}/dms", {}, token=alice_token),
                               400, "M_MISSING_PARAM")
        self.assertMatrixError(await self.request("POST", f"{API}/dms", {"recipient_id": "@bob:elsewhere.example"},
                                                  token=alice_token), 404, "M_NOT_FOUND")  # no federation here
        self.assertMatrixError(await self.request("POST", f"{API}/dms/group", {"recipient_ids": []},
                                                  token=alice_token), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{API}/dms/group",
                                                  {"recipient_ids": ["@nobody:test.local"]}, token=alice_token),
                               404, "M_NOT_FOUND")
        self.assertEqual(await self.ok("GET", f"{API}/dms", token=alice_token), [])
        self.assertEqual(await self.direct(alice, alice_token), {})
        self.assertEqual((await self.ok("GET", f"{V3}/joined_rooms", token=alice_token))["joined_rooms"], [])
        self.assertMatrixError(await self.request("GET", f"{API}/dms", token=None), 401, "M_MISSING_TOKEN")

    @inline
    async def test_group_dm_limit_and_add(self):
        alice, alice_token = await self.user("alice")
        others = [await self.user(f"user{i}") for i in range(10)]
        ids = [u for u, _ in others]
        self.assertMatrixError(await self.request("POST", f"{API}/dms/group", {"recipient_ids": ids},
                                                  token=alice_token), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{API}/dms/group", {"recipient_ids": [ids[0], ids[0]]},
                                                  token=alice_token), 400, "M_INVALID_PARAM")
        self.assertEqual(await self.ok("GET", f"{API}/dms", token=alice_token), [])

        group = await self.ok("POST", f"{API}/dms/group", {"recipient_ids": ids[:8]}, token=alice_token)
        room_id = group["id"]
        self.assertEqual(group["type"], "group_dm")
        self.assertEqual(sorted(r["id"] for r in group["recipients"]), sorted(ids[:8]))
        # A member other than the creator adds the 10th member; the 11th is refused.
        first_token = others[0][1]
        added = await self.ok("PUT", f"{API}/dms/{q(room_id)}/recipients/{q(ids[8])}", {}, token=first_token)
        self.assertEqual(len(added["recipients"]), 9)
        self.assertMatrixError(await self.request("PUT", f"{API}/dms/{q(room_id)}/recipients/{q(ids[9])}", {},
                                                  token=alice_token), 400, "M_INVALID_PARAM")
        members = await self.ok("GET", f"{V3}/rooms/{q(room_id)}/joined_members", token=alice_token)
        self.assertEqual(len(members["joined"]), 10)
        self.assertNotIn(ids[9], members["joined"])
        # Adding someone already in changes nothing.
        again = await self.ok("PUT", f"{API}/dms/{q(room_id)}/recipients/{q(ids[8])}", {}, token=alice_token)
        self.assertEqual(len(again["recipients"]), 9)

        # Everyone in it can talk; the newest member sees it listed.
        sent = await self.send(room_id, "welcome", alice_token)
        listed = await self.ok("GET", f"{API}/dms", token=others[8][1])
        self.assertEqual([(d["id"], d["type"], d["last_message_id"]) for d in listed],
                         [(room_id, "group_dm", sent["id"])])
        # An outsider cannot add anyone; a 1:1 DM takes no recipients.
        self.assertMatrixError(await self.request("PUT", f"{API}/dms/{q(room_id)}/recipients/{q(alice)}", {},
                                                  token=others[9][1]), 404, "M_NOT_FOUND")
        dm = await self.ok("POST", f"{API}/dms", {"recipient_id": ids[0]}, token=alice_token)
        self.assertNotEqual(dm["id"], room_id)
        self.assertMatrixError(await self.request("PUT", f"{API}/dms/{q(dm['id'])}/recipients/{q(ids[1])}", {},
                                                  token=alice_token), 400, "M_INVALID_PARAM")
        # Nine recipients at once make a full group of ten.
        full = await self.ok("POST", f"{API}/dms/group", {"recipient_ids": ids[1:]}, token=alice_token)
        self.assertEqual(len(full["recipients"]), 9)
        self.assertEqual(await self.ok("GET", f"{API}/dms/{q(full['id'])}", token=others[9][1]),
                         {**full, "recipients": sorted([{"id": alice, "display_name": "alice"}]
                                                       + [r for r in full["recipients"] if r["id"] != ids[9]],
                                                       key=lambda r: r["id"])})
        self.assertMatrixError(await self.request("PUT", f"{API}/dms/{q(full['id'])}/recipients/{q(ids[0])}", {},
                                                  token=alice_token), 400, "M_INVALID_PARAM")

    @inline
    async def test_close_and_reopen_keeps_history(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        dm = await self.ok("POST", f"{API}/dms", {"recipient_id": bob}, token=alice_token)
        sent = await self.send(dm["id"], "before closing", bob_token)
        await self.ok("DELETE", f"{API}/dms/{q(dm['id'])}", token=alice_token)
        self.assertEqual(await self.ok("GET", f"{API}/dms", token=alice_token), [])
        self.assertMatrixError(await self.request("DELETE", f"{API}/dms/{q(dm['id'])}", token=alice_token),
                               404, "M_NOT_FOUND")
        # Bob still has it; writing there brings alice back into the same room.
        self.assertEqual([d["id"] for d in await self.ok("GET", f"{API}/dms", token=bob_token)], [dm["id"]])
        again = await self.ok("POST", f"{API}/dms", {"recipient_id": alice}, token=bob_token)
        self.assertEqual(again["id"], dm["id"])
        listed = await self.ok("GET", f"{API}/channels/{q(dm['id'])}/messages", token=alice_token)
        self.assertEqual([m["id"] for m in listed], [sent["id"]])

        # Reopened from the side that closed it, too.
        await self.ok("DELETE", f"{API}/dms/{q(dm['id'])}", token=alice_token)
        reopened = await self.ok("POST", f"{API}/dms", {"recipient_id": bob}, token=alice_token)
        self.assertEqual(reopened["id"], dm["id"])
        self.assertEqual([d["id"] for d in await self.ok("GET", f"{API}/dms", token=alice_token)], [dm["id"]])

    @inline
    async def test_blocks_stop_dms_and_hide_messages(self):
        alice, alice_token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        carol, carol_token = await self.user("carol")
        dm = await self.ok("POST", f"{API}/dms", {"recipient_id": bob}, token=alice_token)
        group = await self.ok("POST", f"{API}/dms/group", {"recipient_ids": [carol]}, token=alice_token)
        old = await self.send(dm["id"], "before the block", bob_token)
        in_group = await self.send(group["id"], "bob is not here yet", alice_token)

        await self.ok("PUT", f"{API}/relationships/{q(bob)}/block", {}, token=alice_token)
        # bob can open no new DM with alice, nor add her anywhere; nor she him.
        self.assertMatrixError(await self.request("POST", f"{API}/dms", {"recipient_id": alice}, token=bob_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/dms", {"recipient_id": bob}, token=alice_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/dms/group", {"recipient_ids": [carol, alice]},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PUT", f"{API}/dms/{q(group['id'])}/recipients/{q(bob)}", {},
                                                  token=alice_token), 403, "M_FORBIDDEN")
        # In the existing DM nobody can write any more; history stays readable.
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(dm['id'])}/messages",
                                                  {"content": "hello?"}, token=bob_token), 403, "M_FORBIDDEN")
        self.assertEqual([m["id"] for m in await self.ok("GET", f"{API}/channels/{q(dm['id'])}/messages",
                                                          token=bob_token)], [old["id"]])
        # carol adds bob to the group: alice no longer sees what bob writes there.
        await self.ok("PUT", f"{API}/dms/{q(group['id'])}/recipients/{q(bob)}", {}, token=carol_token)
        hidden = await self.send(group["id"], "from bob", bob_token)
        seen = await self.ok("GET", f"{API}/channels/{q(group['id'])}/messages", token=alice_token)
        self.assertEqual([m["id"] for m in seen], [in_group["id"]])
        seen = await self.ok("GET", f"{API}/channels/{q(group['id'])}/messages", token=carol_token)
        self.assertEqual([m["id"] for m in seen], [hidden["id"], in_group["id"]])
        self.assertEqual([m["id"] for m in await self.ok("GET", f"{API}/channels/{q(dm['id'])}/messages",
                                                          token=alice_token)], [])

        # Unblocking restores all of it.
        await self.ok("DELETE", f"{API}/relationships/{q(bob)}/block", token=alice_token)
        self.assertEqual((await self.ok("POST", f"{API}/dms", {"recipient_id": alice}, token=bob_token))["id"],
                         dm["id"])
        await self.send(dm["id"], "hello again", bob_token)
        seen = await self.ok("GET", f"{API}/channels/{q(group['id'])}/messages", token=alice_token)
        self.assertEqual([m["id"] for m in seen], [hidden["id"], in_group["id"]])


class DmSqliteTests(DmTests, HomeserverTestCase):
    engine = "sqlite"


class DmPostgresTests(DmTests, HomeserverTestCase):
    engine = "postgres"


class FederatedDmTests(TwoServerTestCase):
    """A DM with a user of another instance: an is_direct invite they accept by opening the DM."""

    @inline
    async def test_remote_dm(self):
        dm = await self.call(self.a, "POST", "/dms", self.alice, {"recipient_id": self.bob_id})
        self.assertEqual([r["id"] for r in dm["recipients"]], [self.bob_id])

        async def invited():
            status, body = await self.b.request("GET", f"{V3}/sync?timeout=0", token=self.bob)
            invite = body["rooms"]["invite"].get(dm["id"]) if status == 200 else None
            return invite
        invite = await self.b.wait_for(invited, what="the DM invite")
        member = [e for e in invite["invite_state"]["events"]
                  if e["type"] == "m.room.member" and e["state_key"] == self.bob_id]
        self.assertTrue(member[0]["content"].get("is_direct"))

        # bob opens the DM with alice: that accepts the invite into the same room.
        opened = await self.call(self.b, "POST", "/dms", self.bob, {"recipient_id": self.alice_id})
        self.assertEqual((opened["id"], opened["type"]), (dm["id"], "dm"))
        listed = await self.call(self.b, "GET", "/dms", self.bob)
        self.assertEqual([d["id"] for d in listed], [dm["id"]])
        sent = await self.call(self.b, "POST", f"/channels/{q(dm['id'])}/messages", self.bob,
                               {"content": "hi alice"})

        async def arrived():
            found = await self.call(self.a, "GET", f"/channels/{q(dm['id'])}/messages", self.alice)
            return [m["id"] for m in found] == [sent["id"]]
        await self.a.wait_for(arrived, what="bob's message")


class FederatedDmPostgresTests(FederatedDmTests):
    engine = "postgres"

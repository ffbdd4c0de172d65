"""Discovery over the client-server API, on both engines: the published room directory,
the space hierarchy, the user directory and server-side search (ranking, pagination,
context, no leaks, redactions, catching up after a restart)."""

from __future__ import annotations

from urllib.parse import quote

from twisted.internet import defer, reactor

from homeserver.app import Homeserver
from homeserver.config import load_config
from tests.support.server import HomeserverTestCase, HttpClient, inline

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


def q(value: str) -> str:
    return quote(value, safe="")


class DiscoveryTestCase(HomeserverTestCase):
    async def user(self, name: str) -> str:
        return (await self.register(name))["access_token"]

    async def room(self, token: str, **body) -> str:
        status, answer = await self.request("POST", f"{V3}/createRoom", body, token=token)
        self.assertEqual(status, 200, answer)
        return answer["room_id"]

    async def join(self, token: str, room_id: str) -> None:
        status, body = await self.request("POST", f"{V3}/join/{q(room_id)}", {}, token=token)
        self.assertEqual(status, 200, body)

    async def say(self, token: str, room_id: str, text: str) -> str:
        self._n = getattr(self, "_n", 0) + 1
        status, body = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/t{self._n}",
                                          {"msgtype": "m.text", "body": text}, token=token)
        self.assertEqual(status, 200, body)
        return body["event_id"]

    async def put_state(self, token: str, room_id: str, event_type: str, state_key: str, content: dict) -> str:
        status, body = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/state/{event_type}/{q(state_key)}",
                                          content, token=token)
        self.assertEqual(status, 200, body)
        return body["event_id"]

    async def search(self, token: str, term: str, next_batch: str | None = None, expect: int = 200, **criteria):
        body = {"search_categories": {"room_events": {"search_term": term, **criteria}}}
        status, answer = await self.request("POST", f"{V3}/search", body, token=token,
                                            query={"next_batch": next_batch} if next_batch else None)
        self.assertEqual(status, expect, answer)
        return answer["search_categories"]["room_events"] if expect == 200 else answer

    def bodies(self, found: dict) -> list[str]:
        return [r["result"]["content"].get("body") for r in found["results"]]


class PublicRoomsTests:
    @inline
    async def test_publish_list_and_unpublish(self):
        alice = await self.user("alice")
        lobby = await self.room(alice, visibility="public", name="Lobby", topic="Say hi", room_alias_name="lobby")
        hidden = await self.room(alice, name="Hidden", preset="public_chat")
        status, listing = await self.request("GET", f"{V3}/publicRooms")
        self.assertEqual(status, 200, listing)
        self.assertEqual([r["room_id"] for r in listing["chunk"]], [lobby])
        self.assertEqual(listing["chunk"][0], {
            "room_id": lobby, "name": "Lobby", "topic": "Say hi", "canonical_alias": "#lobby:test.local",
            "num_joined_members": 1, "world_readable": False, "guest_can_join": False, "join_rule": "public"})
        self.assertEqual(listing["total_room_count_estimate"], 1)
        self.assertEqual(await self.request("GET", f"{V3}/directory/list/room/{q(hidden)}"),
                         (200, {"visibility": "private"}))

        status, body = await self.request("PUT", f"{V3}/directory/list/room/{q(hidden)}", {"visibility": "public"},
                                          token=alice)
        self.assertEqual(status, 200, body)
        self.assertEqual(await self.request("GET", f"{V3}/directory/list/room/{q(hidden)}"),
                         (200, {"visibility": "public"}))
        status, listing = await self.request("GET", f"{V3}/publicRooms")
        self.assertEqual({r["room_id"] for r in listing["chunk"]}, {lobby, hidden})

        status, body = await self.request("PUT", f"{V3}/directory/list/room/{q(lobby)}", {"visibility": "private"},
                                          token=alice)
        self.assertEqual(status, 200, body)
        status, listing = await self.request("GET", f"{V3}/publicRooms")
        self.assertEqual([r["room_id"] for r in listing["chunk"]], [hidden])

    @inline
    async def test_only_creator_or_moderators_may_publish(self):
        alice, bob, carol = await self.user("alice"), await self.user("bob"), await self.user("carol")
        room_id = await self.room(alice, preset="public_chat", name="Club")
        await self.join(bob, room_id)
        path = f"{V3}/directory/list/room/{q(room_id)}"
        self.assertMatrixError(await self.request("PUT", path, {"visibility": "public"}, token=bob),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PUT", path, {"visibility": "public"}, token=carol),
                               403, "M_FORBIDDEN")
        self.assertEqual(await self.request("GET", path), (200, {"visibility": "private"}))
        # Once bob may set the canonical alias, he may publish.
        status, power = await self.request("GET", f"{V3}/rooms/{q(room_id)}/state/m.room.power_levels",
                                           token=alice)
        power["users"]["@bob:test.local"] = 50
        await self.put_state(alice, room_id, "m.room.power_levels", "", power)
        status, body = await self.request("PUT", path, {"visibility": "public"}, token=bob)
        self.assertEqual(status, 200, body)
        self.assertEqual(await self.request("GET", path), (200, {"visibility": "public"}))
        self.assertMatrixError(await self.request("PUT", f"{V3}/directory/list/room/{q('!nope:test.local')}",
                                                  {"visibility": "public"}, token=alice), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{V3}/directory/list/room/{q('!nope:test.local')}"),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("PUT", path, {"visibility": "hidden"}, token=alice),
                               400, "M_INVALID_PARAM")

    @inline
    async def test_filter_by_term_and_room_type(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        cats = await self.room(alice, visibility="public", name="Cat pictures", topic="Only cats")
        dogs = await self.room(alice, visibility="public", name="Dogs", topic="Woof", room_alias_name="doggos")
        space = await self.room(alice, visibility="public", name="Pets space", creation_content={"type": "m.space"})
        await self.join(bob, dogs)

        async def post(**body):
            status, answer = await self.request("POST", f"{V3}/publicRooms", body, token=bob)
            self.assertEqual(status, 200, answer)
            return [r["room_id"] for r in answer["chunk"]]

        self.assertEqual(await post(), [dogs, *sorted([cats, space])])
        self.assertEqual(await post(filter={"generic_search_term": "CAT"}), [cats])
        self.assertEqual(await post(filter={"generic_search_term": "woof"}), [dogs])
        self.assertEqual(await post(filter={"generic_search_term": "doggos"}), [dogs])
        self.assertEqual(await post(filter={"generic_search_term": "pets"}), [space])
        self.assertEqual(await post(filter={"room_types": ["m.space"]}), [space])
        self.assertEqual(sorted(await post(filter={"room_types": [None]})), sorted([cats, dogs]))
        self.assertEqual(sorted(await post(filter={"room_types": [None, "m.space"]})), sorted([cats, dogs, space]))
        status, answer = await self.request("POST", f"{V3}/publicRooms", {"filter": {"room_types": ["m.space"]}},
                                             token=bob)
        self.assertEqual(answer["chunk"][0]["room_type"], "m.space")
        self.assertMatrixError(await self.request("POST", f"{V3}/publicRooms", {}), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("POST", f"{V3}/publicRooms", {"filter": {"room_types": "x"}},
                                                  token=bob), 400, "M_INVALID_PARAM")

    @inline
    async def test_pagination(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        big = await self.room(alice, visibility="public", name="Big")
        await self.join(bob, big)
        others = sorted([await self.room(alice, visibility="public", name=f"R{i}") for i in range(3)])
        status, first = await self.request("GET", f"{V3}/publicRooms", query={"limit": 2})
        self.assertEqual([r["room_id"] for r in first["chunk"]], [big, others[0]])
        self.assertNotIn("prev_batch", first)
        self.assertEqual(first["total_room_count_estimate"], 4)
        status, second = await self.request("GET", f"{V3}/publicRooms",
                                            query={"limit": 2, "since": first["next_batch"]})
        self.assertEqual([r["room_id"] for r in second["chunk"]], others[1:])
        self.assertNotIn("next_batch", second)
        status, back = await self.request("GET", f"{V3}/publicRooms",
                                          query={"limit": 2, "since": second["prev_batch"]})
        self.assertEqual(back["chunk"], first["chunk"])
        status, posted = await self.request("POST", f"{V3}/publicRooms",
                                            {"limit": 2, "since": first["next_batch"]}, token=bob)
        self.assertEqual(posted["chunk"], second["chunk"])
        self.assertMatrixError(await self.request("GET", f"{V3}/publicRooms", query={"since": "bogus"}),
                               400, "M_INVALID_PARAM")


class HierarchyTests:
    async def make_space(self, alice: str) -> dict[str, str]:
        """space -> [general (suggested, order "a"), sub (space, order "b") -> [deep], private, random]"""
        rooms = {
            "space": await self.room(alice, preset="public_chat", name="Space", creation_content={"type": "m.space"}),
            "general": await self.room(alice, preset="public_chat", name="General", topic="Chat"),
            "sub": await self.room(alice, preset="public_chat", name="Sub", creation_content={"type": "m.space"}),
            "deep": await self.room(alice, preset="public_chat", name="Deep"),
            "private": await self.room(alice, preset="private_chat", name="Private"),
            "random": await self.room(alice, preset="public_chat", name="Random"),
            "unlinked": await self.room(alice, preset="public_chat", name="Unlinked"),
        }
        via = {"via": ["test.local"]}
        await self.put_state(alice, rooms["space"], "m.space.child", rooms["general"],
                             {**via, "suggested": True, "order": "a"})
        await self.put_state(alice, rooms["space"], "m.space.child", rooms["sub"], {**via, "order": "b"})
        await self.put_state(alice, rooms["space"], "m.space.child", rooms["private"], via)
        await self.put_state(alice, rooms["space"], "m.space.child", rooms["random"], via)
        await self.put_state(alice, rooms["space"], "m.space.child", rooms["unlinked"], {})  # no via: not a child
        await self.put_state(alice, rooms["sub"], "m.space.child", rooms["deep"], via)
        await self.put_state(alice, rooms["sub"], "m.space.child", rooms["space"], via)  # a loop
        return rooms

    async def hierarchy(self, token: str, room_id: str, expect: int = 200, **query):
        status, body = await self.request("GET", f"{V1}/rooms/{q(room_id)}/hierarchy", token=token,
                                          query={k: str(v).lower() if isinstance(v, bool) else v
                                                 for k, v in query.items()} or None)
        self.assertEqual(status, expect, body)
        return body

    def names(self, rooms: dict[str, str], body: dict) -> list[str]:
        by_id = {v: k for k, v in rooms.items()}
        return [by_id[r["room_id"]] for r in body["rooms"]]

    @inline
    async def test_walks_depth_first_and_hides_private_children(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        rooms = await self.make_space(alice)
        mine = await self.hierarchy(alice, rooms["space"])
        self.assertEqual(self.names(rooms, mine), ["space", "general", "sub", "deep", "private", "random"])
        self.assertNotIn("next_batch", mine)
        theirs = await self.hierarchy(bob, rooms["space"])
        self.assertEqual(self.names(rooms, theirs), ["space", "general", "sub", "deep", "random"])
        top = theirs["rooms"][0]
        self.assertEqual(top["room_type"], "m.space")
        self.assertEqual(top["name"], "Space")
        self.assertEqual(top["num_joined_members"], 1)
        self.assertEqual(top["join_rule"], "public")
        self.assertFalse(top["world_readable"])
        self.assertEqual([c["state_key"] for c in top["children_state"]],
                         [rooms["general"], rooms["sub"], rooms["private"], rooms["random"]])
        child = top["children_state"][0]
        self.assertEqual(set(child), {"type", "state_key", "content", "sender", "origin_server_ts"})
        self.assertEqual(child["content"], {"via": ["test.local"], "suggested": True, "order": "a"})
        general = theirs["rooms"][1]
        self.assertEqual(general["children_state"], [])
        self.assertEqual(general["topic"], "Chat")
        self.assertNotIn("room_type", general)
        # Joining the private room shows it.
        status, _ = await self.request("POST", f"{V3}/rooms/{q(rooms['private'])}/invite",
                                       {"user_id": "@bob:test.local"}, token=alice)
        self.assertIn("private", self.names(rooms, await self.hierarchy(bob, rooms["space"])))

    @inline
    async def test_suggested_only_and_max_depth(self):
        alice = await self.user("alice")
        rooms = await self.make_space(alice)
        suggested = await self.hierarchy(alice, rooms["space"], suggested_only=True)
        self.assertEqual(self.names(rooms, suggested), ["space", "general"])
        self.assertEqual([c["state_key"] for c in suggested["rooms"][0]["children_state"]], [rooms["general"]])
        self.assertEqual(self.names(rooms, await self.hierarchy(alice, rooms["space"], max_depth=0)), ["space"])
        self.assertEqual(self.names(rooms, await self.hierarchy(alice, rooms["space"], max_depth=1)),
                         ["space", "general", "sub", "private", "random"])
        self.assertEqual(self.names(rooms, await self.hierarchy(alice, rooms["sub"])), ["sub", "deep", "space",
                                                                                          "general", "private",
                                                                                          "random"])

    @inline
    async def test_pagination_and_errors(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        rooms = await self.make_space(alice)
        seen, token, pages = [], None, 0
        while True:
            query = {"limit": 2, **({"from": token} if token else {})}
            page = await self.hierarchy(alice, rooms["space"], **query)
            self.assertLessEqual(len(page["rooms"]), 2)
            seen += self.names(rooms, page)
            pages += 1
            token = page.get("next_batch")
            if token is None:
                break
        self.assertEqual(seen, ["space", "general", "sub", "deep", "private", "random"])
        self.assertEqual(pages, 3)
        first = await self.hierarchy(alice, rooms["space"], limit=1)
        body = await self.hierarchy(alice, rooms["space"], expect=400, limit=1, max_depth=1,
                                    **{"from": first["next_batch"]})
        self.assertEqual(body["errcode"], "M_INVALID_PARAM")
        body = await self.hierarchy(alice, rooms["space"], expect=400, suggested_only=True,
                                    **{"from": first["next_batch"]})
        self.assertEqual(body["errcode"], "M_INVALID_PARAM")
        body = await self.hierarchy(bob, rooms["space"], expect=400, **{"from": first["next_batch"]})
        self.assertEqual(body["errcode"], "M_INVALID_PARAM")
        body = await self.hierarchy(alice, rooms["space"], expect=400, **{"from": "unknown"})
        self.assertEqual(body["errcode"], "M_INVALID_PARAM")
        body = await self.hierarchy(alice, rooms["space"], expect=400, limit=0)
        self.assertEqual(body["errcode"], "M_INVALID_PARAM")
        body = await self.hierarchy(bob, rooms["private"], expect=403)
        self.assertEqual(body["errcode"], "M_FORBIDDEN")
        body = await self.hierarchy(bob, "!unknown:test.local", expect=403)
        self.assertEqual(body["errcode"], "M_FORBIDDEN")


class UserDirectoryTests:
    async def find(self, token: str, term: str, limit: int | None = None) -> dict:
        body = {"search_term": term, **({"limit": limit} if limit is not None else {})}
        status, answer = await self.request("POST", f"{V3}/user_directory/search", body, token=token)
        self.assertEqual(status, 200, answer)
        return answer

    def ids(self, answer: dict) -> list[str]:
        return [r["user_id"] for r in answer["results"]]

    @inline
    async def test_shared_rooms_and_public_rooms_but_not_strangers(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        carol, dave = await self.user("carol"), await self.user("dave")
        private = await self.room(alice, preset="private_chat")
        await self.request("POST", f"{V3}/rooms/{q(private)}/invite", {"user_id": "@bob:test.local"}, token=alice)
        await self.join(bob, private)
        await self.room(carol, preset="private_chat")  # carol shares nothing with alice
        await self.room(dave, preset="public_chat")  # dave is in a public room
        status, _ = await self.request("PUT", f"{V3}/profile/{q('@bob:test.local')}/displayname",
                                       {"displayname": "Bobby Tables"}, token=bob)
        self.assertEqual(status, 200)
        self.assertEqual(await self.find(alice, "bob"), {"results": [
            {"user_id": "@bob:test.local", "display_name": "Bobby Tables"}], "limited": False})
        self.assertEqual(self.ids(await self.find(alice, "TABLES")), ["@bob:test.local"])
        self.assertEqual(self.ids(await self.find(alice, "bobby tab")), ["@bob:test.local"])
        self.assertEqual(self.ids(await self.find(alice, "carol")), [])
        self.assertEqual(self.ids(await self.find(alice, "dave")), ["@dave:test.local"])
        self.assertEqual(self.ids(await self.find(carol, "bob")), [])
        self.assertEqual(self.ids(await self.find(alice, "%")), [])  # LIKE wildcards are literal
        self.assertEqual(self.ids(await self.find(alice, "_ob")), [])
        # Bob leaves: alice no longer finds him.
        await self.request("POST", f"{V3}/rooms/{q(private)}/leave", {}, token=bob)
        self.assertEqual(self.ids(await self.find(alice, "bob")), [])
        self.assertMatrixError(await self.request("POST", f"{V3}/user_directory/search", {}, token=alice),
                               400, "M_MISSING_PARAM")

    @inline
    async def test_ranking_and_limit(self):
        tokens = {n: await self.user(n) for n in ("alice", "sam", "samantha", "bigsam", "zed")}
        await self.request("PUT", f"{V3}/profile/{q('@bigsam:test.local')}/displayname",
                           {"displayname": "Big Sam"}, token=tokens["bigsam"])
        await self.request("PUT", f"{V3}/profile/{q('@zed:test.local')}/displayname",
                           {"displayname": "Issam"}, token=tokens["zed"])
        room_id = await self.room(tokens["alice"], preset="public_chat")
        for name in ("sam", "samantha", "bigsam", "zed"):
            await self.join(tokens[name], room_id)
        found = await self.find(tokens["alice"], "sam")
        self.assertEqual(self.ids(found), ["@sam:test.local", "@samantha:test.local", "@bigsam:test.local",
                                           "@zed:test.local"])
        self.assertFalse(found["limited"])
        limited = await self.find(tokens["alice"], "sam", limit=2)
        self.assertEqual(self.ids(limited), ["@sam:test.local", "@samantha:test.local"])
        self.assertTrue(limited["limited"])


class SearchTests:
    @inline
    async def test_ranking_recent_and_highlights(self):
        alice = await self.user("alice")
        room_id = await self.room(alice, name="Fruit stand", topic="apples and pears")
        await self.say(alice, room_id, "an apple pie with cream and plenty of other toppings")
        await self.say(alice, room_id, "apple apple apple")
        await self.say(alice, room_id, "bananas only")
        found = await self.search(alice, "apple")
        self.assertEqual(found["count"], 3)  # and the topic, "apples and pears"
        self.assertEqual(sorted(r["result"]["type"] for r in found["results"]),
                         ["m.room.message", "m.room.message", "m.room.topic"])
        self.assertEqual(self.bodies(found)[0], "apple apple apple")
        bodies = await self.search(alice, "apple", keys=["content.body"])
        self.assertEqual(self.bodies(bodies), ["apple apple apple",
                                               "an apple pie with cream and plenty of other toppings"])
        ranks = [r["rank"] for r in found["results"]]
        self.assertEqual(ranks, sorted(ranks, reverse=True))
        self.assertIn("apple", found["highlights"])
        self.assertIn("apples", found["highlights"])
        self.assertNotIn("next_batch", found)
        result = found["results"][0]["result"]
        self.assertEqual(result["room_id"], room_id)
        self.assertEqual(result["sender"], "@alice:test.local")
        recent = await self.search(alice, "apple", order_by="recent", keys=["content.body"])
        self.assertEqual(self.bodies(recent), ["apple apple apple",
                                               "an apple pie with cream and plenty of other toppings"])
        self.assertEqual(self.bodies(await self.search(alice, "appl")), self.bodies(found))  # prefixes match
        self.assertEqual(self.bodies(await self.search(alice, '"apple pie"')),
                         ["an apple pie with cream and plenty of other toppings"])
        self.assertEqual(self.bodies(await self.search(alice, "apple -pie", keys=["content.body"])),
                         ["apple apple apple"])
        self.assertEqual(sorted(self.bodies(await self.search(alice, "bananas OR cream"))),
                         ["an apple pie with cream and plenty of other toppings", "bananas only"])
        names = await self.search(alice, "fruit", keys=["content.name"])
        self.assertEqual([r["result"]["type"] for r in names["results"]], ["m.room.name"])
        self.assertEqual((await self.search(alice, "fruit", keys=["content.body"]))["results"], [])
        self.assertEqual((await self.search(alice, "!!!"))["results"], [])
        self.assertEqual((await self.search(alice, "x", expect=400, order_by="sideways"))["errcode"],
                         "M_INVALID_PARAM")
        self.assertEqual((await self.search(alice, "x", expect=400, keys=["content.url"]))["errcode"],
                         "M_INVALID_PARAM")

    @inline
    async def test_pagination_filters_and_groups(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        first = await self.room(alice, preset="public_chat")
        second = await self.room(alice, preset="public_chat")
        await self.join(bob, first)
        for i in range(5):
            await self.say(alice if i % 2 == 0 else bob, first, f"needle number {i}")
        await self.say(alice, second, "needle elsewhere")
        pages, token = [], None
        for order in ("recent", "rank"):
            pages, token = [], None
            while True:
                found = await self.search(alice, "needle", token, order_by=order, filter={"limit": 2})
                pages.append(self.bodies(found))
                self.assertEqual(found["count"], 6)
                token = found.get("next_batch")
                if token is None:
                    break
            flat = [b for page in pages for b in page]
            self.assertEqual(len(flat), 6, pages)
            self.assertEqual(len(set(flat)), 6, pages)
            self.assertTrue(all(len(p) == 2 for p in pages[:3]), pages)
        recent = await self.search(alice, "needle", order_by="recent", filter={"limit": 10})
        self.assertEqual(self.bodies(recent), ["needle elsewhere"] + [f"needle number {i}" for i in range(4, -1, -1)])

        only_bob = await self.search(alice, "needle", filter={"senders": ["@bob:test.local"]})
        self.assertEqual(sorted(self.bodies(only_bob)), ["needle number 1", "needle number 3"])
        not_first = await self.search(alice, "needle", filter={"not_rooms": [first]})
        self.assertEqual(self.bodies(not_first), ["needle elsewhere"])
        in_second = await self.search(alice, "needle", filter={"rooms": [second]})
        self.assertEqual(self.bodies(in_second), ["needle elsewhere"])
        self.assertEqual((await self.search(alice, "needle", filter={"types": ["m.room.topic"]}))["results"], [])

        grouped = await self.search(alice, "needle", order_by="recent", filter={"limit": 3},
                                    groupings={"group_by": [{"key": "room_id"}, {"key": "sender"}]})
        rooms = grouped["groups"]["room_id"]
        self.assertEqual(set(rooms), {first, second})
        self.assertEqual(rooms[second]["order"], 1)
        self.assertEqual(len(rooms[first]["results"]), 2)
        self.assertEqual(set(grouped["groups"]["sender"]), {"@alice:test.local", "@bob:test.local"})
        # Paging within a group stays in it.
        rest = await self.search(alice, "needle", rooms[first]["next_batch"], order_by="recent", filter={"limit": 10},
                                 groupings={"group_by": [{"key": "room_id"}]})
        self.assertEqual(self.bodies(rest), [f"needle number {i}" for i in range(2, -1, -1)])
        self.assertEqual((await self.search(alice, "needle", "garbage", expect=400))["errcode"], "M_INVALID_PARAM")
        self.assertEqual((await self.search(alice, "needle", grouped["next_batch"], expect=400))["errcode"],
                         "M_INVALID_PARAM")  # a recent token used with rank order

    @inline
    async def test_event_context_and_profiles(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        room_id = await self.room(alice, preset="public_chat")
        await self.join(bob, room_id)
        await self.request("PUT", f"{V3}/profile/{q('@bob:test.local')}/displayname", {"displayname": "Bob B"},
                           token=bob)
        for text in ("one", "two", "the target", "three", "four"):
            await self.say(bob if text == "the target" else alice, room_id, text)
        found = await self.search(alice, "target", event_context={"before_limit": 2, "after_limit": 1,
                                                                  "include_profile": True},
                                  include_state=True)
        context = found["results"][0]["context"]
        self.assertEqual([e["content"]["body"] for e in context["events_before"]], ["two", "one"])
        self.assertEqual([e["content"]["body"] for e in context["events_after"]], ["three"])
        self.assertEqual(context["profile_info"]["@bob:test.local"], {"displayname": "Bob B"})
        self.assertIn("@alice:test.local", context["profile_info"])
        self.assertTrue(context["start"].startswith("t") and context["end"].startswith("t"))
        status, page = await self.request("GET", f"{V3}/rooms/{q(room_id)}/messages", token=alice,
                                          query={"from": context["end"], "dir": "f", "limit": 5})
        self.assertEqual([e["content"]["body"] for e in page["chunk"]], ["four"])
        state_types = {e["type"] for e in found["state"][room_id]}
        self.assertIn("m.room.create", state_types)

    @inline
    async def test_no_leaks_across_rooms_and_history(self):
        alice, bob, eve = await self.user("alice"), await self.user("bob"), await self.user("eve")
        room_id = await self.room(alice, preset="public_chat")
        await self.say(alice, room_id, "secret before bob")
        await self.join(bob, room_id)
        await self.say(bob, room_id, "secret while bob is here")
        await self.request("POST", f"{V3}/rooms/{q(room_id)}/leave", {}, token=bob)
        await self.say(alice, room_id, "secret after bob left")
        await self.room(eve, preset="private_chat", name="Eve's secret lair")

        self.assertEqual(len((await self.search(alice, "secret"))["results"]), 3)
        # Shared history shows what came before a join only while joined: having left,
        # bob finds what was said while he was there, nothing before or after.
        self.assertEqual(self.bodies(await self.search(bob, "secret")), ["secret while bob is here"])
        nothing = await self.search(eve, "secret", filter={"rooms": [room_id]})
        self.assertEqual(nothing["results"], [])
        self.assertEqual(nothing["count"], 0)
        eves = await self.search(eve, "secret")
        self.assertEqual([r["result"]["type"] for r in eves["results"]], ["m.room.name"])
        # A forgotten room is not searched.
        await self.request("POST", f"{V3}/rooms/{q(room_id)}/forget", {}, token=bob)
        self.assertEqual((await self.search(bob, "secret"))["results"], [])
        # History visibility "joined": a late joiner finds nothing from before.
        hidden = await self.room(alice, preset="public_chat",
                                 initial_state=[{"type": "m.room.history_visibility",
                                                 "content": {"history_visibility": "joined"}}])
        await self.say(alice, hidden, "whisper early")
        await self.join(eve, hidden)
        await self.say(alice, hidden, "whisper late")
        self.assertEqual(self.bodies(await self.search(eve, "whisper")), ["whisper late"])

    @inline
    async def test_redacted_messages_drop_out(self):
        alice = await self.user("alice")
        room_id = await self.room(alice)
        event_id = await self.say(alice, room_id, "my password is hunter2")
        await self.say(alice, room_id, "the hunter returns")
        self.assertEqual(len((await self.search(alice, "hunter"))["results"]), 2)
        status, body = await self.request("PUT", f"{V3}/rooms/{q(room_id)}/redact/{q(event_id)}/r1",
                                          {"reason": "oops"}, token=alice)
        self.assertEqual(status, 200, body)
        found = await self.search(alice, "hunter")
        self.assertEqual(self.bodies(found), ["the hunter returns"])
        self.assertEqual(found["count"], 1)
        self.assertEqual((await self.search(alice, "password"))["results"], [])
        # The row itself is gone from the index, not merely hidden.
        rows = await self.hs.db.run_interaction("rows", lambda txn: txn.select_all(
            "SELECT event_id FROM event_search WHERE event_id = ?", (event_id,)))
        self.assertEqual(rows, [])

    @inline
    async def test_index_catches_up_after_a_restart(self):
        alice = await self.user("alice")
        room_id = await self.room(alice)
        await self.say(alice, room_id, "indexed while running")
        self.assertEqual(len((await self.search(alice, "running"))["results"]), 1)
        # Events written while nothing follows them (as if the server died before indexing).
        self.hs.discovery_follower.poke = lambda: None
        missed = await self.say(alice, room_id, "written while the follower slept")
        await self.client.close()
        await self.hs.stop()

        self.hs = Homeserver(load_config(self.config_path, environ={}), reactor)
        await self.hs.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.hs.stop()))
        self.client = HttpClient(f"http://127.0.0.1:{self.hs.listening_port}")
        self.addCleanup(lambda: defer.ensureDeferred(self.client.close()))

        async def indexed() -> list[str]:
            rows = await self.hs.db.run_interaction("rows", lambda txn: txn.select_all(
                "SELECT event_id FROM event_search ORDER BY stream_ordering"))
            return [r[0] for r in rows]

        self.assertNotIn(missed, await indexed())
        found = await self.search(alice, "slept")
        self.assertEqual(self.bodies(found), ["written while the follower slept"])
        self.assertIn(missed, await indexed())
        position = await self.hs.db.run_interaction("position", lambda txn: txn.select_one(
            "SELECT stream_ordering FROM discovery_positions WHERE name = 'discovery'"))
        self.assertEqual(position[0], await self.hs.events.max_stream_ordering())


class DiscoverySqliteTests(PublicRoomsTests, HierarchyTests, UserDirectoryTests, SearchTests, DiscoveryTestCase):
    engine = "sqlite"


class DiscoveryPostgresTests(PublicRoomsTests, HierarchyTests, UserDirectoryTests, SearchTests, DiscoveryTestCase):
    engine = "postgres"

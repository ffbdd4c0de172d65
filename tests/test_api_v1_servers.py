"""/api/v1 servers and channels: spaces and rooms laid out as DESIGN.md §2 says, with
Drocsid permissions, on both engines."""

from __future__ import annotations

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline


class ServerTests(ApiHelpers):
    async def state(self, room_id, token, event_type, state_key=""):
        return await self.request("GET", f"{V3}/rooms/{q(room_id)}/state/{event_type}/{q(state_key)}",
                                  token=token)

    async def make_server(self, token, name="Guild", **extra):
        return await self.ok("POST", f"{API}/servers", {"name": name, **extra}, token=token)

    async def member(self, server_id, owner_token, user_id, user_token):
        await self.ok("POST", f"{V3}/rooms/{q(server_id)}/invite", {"user_id": user_id}, token=owner_token)
        await self.ok("POST", f"{V3}/join/{q(server_id)}", {}, token=user_token)

    @inline
    async def test_create_server_layout(self):
        alice, token = await self.user("alice")
        server = await self.make_server(token, "Guild", description="A place", icon_url="mxc://test.local/abc")
        self.assertEqual(server["name"], "Guild")
        self.assertEqual(server["description"], "A place")
        self.assertEqual(server["icon_url"], "mxc://test.local/abc")
        self.assertEqual(server["owner_id"], alice)
        self.assertRegex(server["created_at"], r"^\d{4}-\d\d-\d\dT")
        [general] = server["channels"]
        self.assertEqual((general["name"], general["type"], general["server_id"], general["parent_id"],
                          general["position"]), ("general", "text", server["id"], None, 0))
        space, channel = server["id"], general["id"]

        # The space: an m.space with @everyone and the mirror as power levels.
        status, create = await self.state(space, token, "m.room.create")
        self.assertEqual((status, create.get("type")), (200, "m.space"))
        status, everyone = await self.state(space, token, perms.ROLE_EVENT, "")
        self.assertEqual(status, 200, everyone)
        self.assertEqual(everyone["permissions"], str(perms.DEFAULT_EVERYONE))
        roles = {"": perms.parse_role("", everyone)}
        status, levels = await self.state(space, token, "m.room.power_levels")
        expected = perms.power_levels_mirror(alice, roles, {alice: ()})
        for key in ("users", "events_default", "state_default", "invite", "kick", "ban", "redact", "events"):
            self.assertEqual(levels[key], expected[key], key)
        # The link both ways, with via and order.
        status, child = await self.state(space, token, "m.space.child", channel)
        self.assertEqual(status, 200, child)
        self.assertEqual(child["via"], ["test.local"])
        self.assertIsInstance(child["order"], str)
        status, parent = await self.state(channel, token, "m.space.parent", space)
        self.assertEqual((status, parent["canonical"], parent["via"]), (200, True, ["test.local"]))
        status, rules = await self.state(channel, token, "m.room.join_rules")
        self.assertEqual(rules, {"join_rule": "restricted",
                                 "allow": [{"type": "m.room_membership", "room_id": space}]})
        status, levels = await self.state(channel, token, "m.room.power_levels")
        expected = perms.power_levels_mirror(alice, roles, {alice: ()}, overwrites={})
        self.assertEqual((levels["users"], levels["events_default"]), (expected["users"], expected["events_default"]))

        # Listed, and readable.
        mine = await self.ok("GET", f"{API}/users/@me/servers", token=token)
        self.assertEqual([s["id"] for s in mine], [space])
        got = await self.ok("GET", f"{API}/servers/{q(space)}", token=token)
        self.assertEqual(got, server)
        # A plain room is not a server.
        room = await self.ok("POST", f"{V3}/createRoom", {}, token=token)
        self.assertMatrixError(await self.request("GET", f"{API}/servers/{q(room['room_id'])}", token=token),
                               404, "M_NOT_FOUND")
        self.assertEqual(len(await self.ok("GET", f"{API}/users/@me/servers", token=token)), 1)

    @inline
    async def test_members_see_what_they_may_view(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.make_server(token)
        space, general = server["id"], server["channels"][0]["id"]
        # Not yet a member: 403, and not listed.
        self.assertMatrixError(await self.request("GET", f"{API}/servers/{q(space)}", token=bob_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("GET", f"{API}/servers/{q(space)}/channels", token=bob_token),
                               403, "M_FORBIDDEN")
        self.assertEqual(await self.ok("GET", f"{API}/users/@me/servers", token=bob_token), [])

        secret = await self.ok("POST", f"{API}/servers/{q(space)}/channels",
                               {"name": "mods", "private": True, "topic": "shh"}, token=token)
        self.assertTrue(secret["private"])
        status, overwrite = await self.state(secret["id"], token, perms.OVERWRITE_EVENT, "")
        self.assertEqual(int(overwrite["deny"]) & perms.P.VIEW_CHANNEL, perms.P.VIEW_CHANNEL)
        status, rules = await self.state(secret["id"], token, "m.room.join_rules")
        self.assertEqual(rules["join_rule"], "invite")

        await self.member(space, token, bob, bob_token)
        self.assertEqual([s["id"] for s in await self.ok("GET", f"{API}/users/@me/servers", token=bob_token)],
                         [space])
        seen = await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=bob_token)
        self.assertEqual([c["id"] for c in seen], [general])
        got = await self.ok("GET", f"{API}/servers/{q(space)}", token=bob_token)
        self.assertEqual([c["id"] for c in got["channels"]], [general])
        owner_view = await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=token)
        self.assertEqual({c["id"] for c in owner_view}, {general, secret["id"]})
        self.assertMatrixError(await self.request("GET", f"{API}/channels/{q(secret['id'])}", token=bob_token),
                               403, "M_FORBIDDEN")

        # Bob joins #general (restricted to the space's members), not the private one.
        self.assertEqual(await self.ok("POST", f"{API}/channels/{q(general)}/join", {}, token=bob_token),
                         {"channel_id": general})
        joined = await self.ok("GET", f"{V3}/joined_rooms", token=bob_token)
        self.assertIn(general, joined["joined_rooms"])
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(secret['id'])}/join", {},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        # A Matrix client joins through the space too: its join names an authorising user.
        dave, dave_token = await self.user("dave")
        await self.member(space, token, dave, dave_token)
        await self.ok("POST", f"{V3}/join/{q(general)}", {}, token=dave_token)
        status, member = await self.state(general, token, "m.room.member", dave)
        self.assertEqual((member["membership"], member["join_authorised_via_users_server"]), ("join", alice))
        # Someone outside the server cannot join #general, through either face.
        carol, carol_token = await self.user("carol")
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(general)}/join", {},
                                                  token=carol_token), 404, "M_NOT_FOUND")
        status, _ = await self.request("POST", f"{V3}/join/{q(general)}", {}, token=carol_token)
        self.assertEqual(status, 403)

    @inline
    async def test_channel_permissions(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.make_server(token)
        space, general = server["id"], server["channels"][0]["id"]
        await self.member(space, token, bob, bob_token)
        before = await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=token)

        # Bob lacks MANAGE_CHANNELS / MANAGE_SERVER; nothing changes.
        self.assertMatrixError(await self.request("POST", f"{API}/servers/{q(space)}/channels", {"name": "x"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PATCH", f"{API}/channels/{q(general)}", {"name": "x"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("DELETE", f"{API}/channels/{q(general)}", token=bob_token),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PATCH", f"{API}/servers/{q(space)}", {"name": "x"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("DELETE", f"{API}/servers/{q(space)}", token=bob_token),
                               403, "M_FORBIDDEN")
        self.assertEqual(await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=token), before)

        # The owner creates a category, a voice channel in it, edits and deletes.
        category = await self.ok("POST", f"{API}/servers/{q(space)}/channels",
                                 {"name": "Talk", "type": "category"}, token=token)
        self.assertEqual((category["type"], category["position"]), ("category", 1))
        voice = await self.ok("POST", f"{API}/servers/{q(space)}/channels",
                              {"name": "lounge", "type": "voice", "parent_id": category["id"]}, token=token)
        self.assertEqual((voice["type"], voice["parent_id"]), ("voice", category["id"]))
        status, create = await self.state(voice["id"], token, "m.room.create")
        self.assertEqual(create["type"], "io.drocsid.voice")
        status, child = await self.state(category["id"], token, "m.space.child", voice["id"])
        self.assertEqual(child["via"], ["test.local"])
        seen = await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=bob_token)
        self.assertEqual({c["id"] for c in seen}, {general, category["id"], voice["id"]})

        patched = await self.ok("PATCH", f"{API}/channels/{q(general)}",
                                {"name": "lobby", "topic": "hello", "position": 5}, token=token)
        self.assertEqual((patched["name"], patched["topic"], patched["position"]), ("lobby", "hello", 5))
        moved = await self.ok("PATCH", f"{API}/channels/{q(voice['id'])}", {"parent_id": None}, token=token)
        self.assertIsNone(moved["parent_id"])
        status, child = await self.state(category["id"], token, "m.space.child", voice["id"])
        self.assertEqual(child, {})

        self.assertEqual(await self.ok("DELETE", f"{API}/channels/{q(voice['id'])}", token=token), {})
        status, child = await self.state(space, token, "m.space.child", voice["id"])
        self.assertEqual(child, {})
        ids = {c["id"] for c in await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=token)}
        self.assertEqual(ids, {general, category["id"]})
        self.assertMatrixError(await self.request("GET", f"{API}/channels/{q(voice['id'])}", token=token),
                               404, "M_NOT_FOUND")

        # Server edits: MANAGE_SERVER (the owner), into standard state.
        edited = await self.ok("PATCH", f"{API}/servers/{q(space)}",
                               {"name": "Renamed", "description": "d", "icon_url": "mxc://test.local/i"},
                               token=token)
        self.assertEqual((edited["name"], edited["description"], edited["icon_url"]),
                         ("Renamed", "d", "mxc://test.local/i"))
        status, name = await self.state(space, token, "m.room.name")
        self.assertEqual(name, {"name": "Renamed"})

    @inline
    async def test_member_with_manage_channels(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        carol, carol_token = await self.user("carol")
        server = await self.make_server(token)
        space, general = server["id"], server["channels"][0]["id"]
        for user_id, user_token in ((bob, bob_token), (carol, carol_token)):
            await self.member(space, token, user_id, user_token)
        # A role with MANAGE_CHANNELS, given to Bob as room state (the owner writes both).
        role = {"name": "Mod", "permissions": str(int(perms.P.MANAGE_CHANNELS)), "position": 1}
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/{perms.ROLE_EVENT}/mod", role, token=token)
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/{perms.MEMBER_EVENT}/{q(perms.member_state_key(bob))}",
                      {"roles": ["mod"]}, token=token)
        self.assertMatrixError(await self.request("POST", f"{API}/servers/{q(space)}/channels", {"name": "x"},
                                                  token=carol_token), 403, "M_FORBIDDEN")

        public = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "bobs"}, token=bob_token)
        secret = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "hidden", "private": True},
                               token=bob_token)
        # The owner is in every channel; the link is in the space although Bob has no power there.
        joined = (await self.ok("GET", f"{V3}/joined_rooms", token=token))["joined_rooms"]
        self.assertLessEqual({public["id"], secret["id"]}, set(joined))
        status, child = await self.state(space, token, "m.space.child", secret["id"])
        self.assertEqual(child["via"], ["test.local"])
        # Bob keeps seeing his private channel; Carol does not see it.
        ids = lambda channels: {c["id"] for c in channels}
        self.assertEqual(ids(await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=bob_token)),
                         {general, public["id"], secret["id"]})
        self.assertEqual(ids(await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=carol_token)),
                         {general, public["id"]})
        # Bob edits a channel he is not in, and deletes his own; Carol may do neither.
        self.assertMatrixError(await self.request("PATCH", f"{API}/channels/{q(general)}", {"topic": "t"},
                                                  token=carol_token), 403, "M_FORBIDDEN")
        edited = await self.ok("PATCH", f"{API}/channels/{q(general)}", {"topic": "t"}, token=bob_token)
        self.assertEqual(edited["topic"], "t")
        self.assertEqual(await self.ok("DELETE", f"{API}/channels/{q(public['id'])}", token=bob_token), {})
        self.assertEqual(ids(await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=carol_token)),
                         {general})
        # MANAGE_CHANNELS is not MANAGE_SERVER, nor ownership.
        self.assertMatrixError(await self.request("PATCH", f"{API}/servers/{q(space)}", {"name": "x"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("DELETE", f"{API}/servers/{q(space)}", token=bob_token),
                               403, "M_FORBIDDEN")

    @inline
    async def test_bad_input_changes_nothing(self):
        alice, token = await self.user("alice")
        server = await self.make_server(token)
        space, general = server["id"], server["channels"][0]["id"]
        before = await self.ok("GET", f"{API}/servers/{q(space)}", token=token)
        for body, errcode in (({}, "M_MISSING_PARAM"), ({"name": ""}, "M_INVALID_PARAM"),
                              ({"name": 5}, "M_INVALID_PARAM"), ({"name": "x" * 101}, "M_INVALID_PARAM"),
                              ({"name": "x", "icon_url": "http://evil"}, "M_INVALID_PARAM")):
            self.assertMatrixError(await self.request("POST", f"{API}/servers", body, token=token), 400, errcode)
        self.assertEqual(len(await self.ok("GET", f"{API}/users/@me/servers", token=token)), 1)
        channels = f"{API}/servers/{q(space)}/channels"
        for body in ({"name": "x", "type": "forum"}, {"name": "x", "parent_id": general},
                     {"name": "x", "position": -1}, {"name": "x", "type": "category", "private": True}):
            self.assertMatrixError(await self.request("POST", channels, body, token=token), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("PATCH", f"{API}/channels/{q(general)}", {"name": ""}, token=token),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("PATCH", f"{API}/servers/{q(space)}", {"name": None},
                                                  token=token), 400, "M_INVALID_PARAM")
        self.assertEqual(await self.ok("GET", f"{API}/servers/{q(space)}", token=token), before)
        self.assertMatrixError(await self.request("GET", f"{API}/servers/{q('!nope:test.local')}", token=token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{API}/servers/nope", token=token), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{API}/users/@me/servers"), 401, "M_MISSING_TOKEN")

    @inline
    async def test_delete_server(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.make_server(token)
        space, general = server["id"], server["channels"][0]["id"]
        await self.member(space, token, bob, bob_token)
        await self.ok("POST", f"{API}/channels/{q(general)}/join", {}, token=bob_token)
        self.assertEqual(await self.ok("DELETE", f"{API}/servers/{q(space)}", token=token), {})
        for who in (token, bob_token):
            self.assertEqual(await self.ok("GET", f"{API}/users/@me/servers", token=who), [])
            self.assertMatrixError(await self.request("GET", f"{API}/servers/{q(space)}", token=who),
                                   404, "M_NOT_FOUND")
            joined = (await self.ok("GET", f"{V3}/joined_rooms", token=who))["joined_rooms"]
            self.assertNotIn(space, joined)
            self.assertNotIn(general, joined)

    @inline
    async def test_reorder_channels(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.make_server(token)
        space, general = server["id"], server["channels"][0]["id"]
        await self.member(space, token, bob, bob_token)
        path = f"{API}/servers/{q(space)}/channels"
        talk = await self.ok("POST", path, {"name": "Talk", "type": "category"}, token=token)
        memes = await self.ok("POST", path, {"name": "memes"}, token=token)
        order = [{"id": memes["id"], "position": 0, "parent_id": talk["id"]}, {"id": general, "position": 3}]
        # Bob may not; an unknown channel or a bad entry refuses the whole request.
        before = await self.ok("GET", path, token=token)
        self.assertMatrixError(await self.request("PATCH", path, {"channels": order}, token=bob_token),
                               403, "M_FORBIDDEN")
        for bad in ([*order, {"id": "!nope:test.local", "position": 1}], [{"id": general}],
                    [{"id": general, "position": "first"}], [], [order[1], order[1]]):
            status, body = await self.request("PATCH", path, {"channels": bad}, token=token)
            self.assertIn(status, (400, 404), body)
        self.assertEqual(await self.ok("GET", path, token=token), before)

        listed = await self.ok("PATCH", path, {"channels": order}, token=token)
        by_id = {c["id"]: c for c in listed}
        self.assertEqual((by_id[memes["id"]]["parent_id"], by_id[memes["id"]]["position"]), (talk["id"], 0))
        self.assertEqual(by_id[general]["position"], 3)
        status, child = await self.state(talk["id"], token, "m.space.child", memes["id"])
        self.assertEqual(child["order"], "000000")
        self.assertEqual(await self.ok("GET", path, token=bob_token), listed)

    @inline
    async def test_icon_upload(self):
        import io
        from PIL import Image

        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        server = await self.make_server(token)
        space = server["id"]
        await self.member(space, token, bob, bob_token)
        png = io.BytesIO()
        Image.new("RGB", (8, 8), (200, 30, 30)).save(png, "PNG")
        icon = f"{API}/servers/{q(space)}/icon"
        # Bob lacks MANAGE_SERVER; text is not an image; neither changes anything.
        status, body = await self.client.request("POST", icon, token=bob_token, raw=png.getvalue(),
                                                 headers={"Content-Type": "image/png"})
        self.assertMatrixError((status, body), 403, "M_FORBIDDEN")
        status, body = await self.client.request("POST", icon, token=token, raw=b"not an image",
                                                 headers={"Content-Type": "image/png"})
        self.assertMatrixError((status, body), 400, "M_INVALID_PARAM")
        self.assertIsNone((await self.ok("GET", f"{API}/servers/{q(space)}", token=token))["icon_url"])

        status, updated = await self.client.request("POST", icon, token=token, raw=png.getvalue(),
                                                    headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(status, 200, updated)
        self.assertTrue(updated["icon_url"].startswith("mxc://"))
        status, avatar = await self.state(space, bob_token, "m.room.avatar")
        self.assertEqual(avatar["url"], updated["icon_url"])
        server_name, media_id = updated["icon_url"][len("mxc://"):].split("/")
        status, raw = await self.client.request("GET", f"/_matrix/client/v1/media/download/{server_name}/{media_id}",
                                                token=bob_token)
        self.assertEqual((status, raw), (200, png.getvalue()))
        self.assertEqual(self.client.last_headers.getRawHeaders("Content-Type"), ["image/png"])

    @inline
    async def test_owned_server_limit(self):
        from homeserver.drocsid import servers as writer
        self.patch(writer, "MAX_OWNED_SERVERS", 2)
        alice, token = await self.user("alice")
        first = await self.make_server(token, "one")
        await self.make_server(token, "two")
        self.assertMatrixError(await self.request("POST", f"{API}/servers", {"name": "three"}, token=token),
                               403, "M_FORBIDDEN")
        self.assertEqual(len(await self.ok("GET", f"{API}/users/@me/servers", token=token)), 2)
        # Deleting one frees a place.
        await self.ok("DELETE", f"{API}/servers/{q(first['id'])}", token=token)
        await self.make_server(token, "three")

    @inline
    async def test_openapi_lists_routes(self):
        status, document = await self.request("GET", f"{API}/openapi.json")
        self.assertEqual(status, 200)
        paths = document["paths"]
        for path, methods in (("/servers", {"post"}), ("/users/@me/servers", {"get"}),
                              ("/servers/{server_id}", {"get", "patch", "delete"}),
                              ("/servers/{server_id}/channels", {"get", "post"}),
                              ("/channels/{channel_id}", {"get", "patch", "delete"}),
                              ("/channels/{channel_id}/join", {"post"})):
            self.assertLessEqual(methods, set(paths[path]), path)
        self.assertIn("Server", document["components"]["schemas"])
        self.assertIn("Channel", document["components"]["schemas"])


class ServerSqliteTests(ServerTests, HomeserverTestCase):
    engine = "sqlite"


class ServerPostgresTests(ServerTests, HomeserverTestCase):
    engine = "postgres"

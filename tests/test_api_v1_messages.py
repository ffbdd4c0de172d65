"""/api/v1 channel messages: send, list, edit, delete, reply, reactions and pins as Matrix
events, with Drocsid permissions, on both engines."""

from __future__ import annotations

from urllib.parse import quote

from homeserver.drocsid import permissions as perms
from tests.support.server import HomeserverTestCase, inline
from tests.support.api import API, V3, ApiHelpers, q


class MessageTests(ApiHelpers):
    def messages(self, channel):
        return f"{API}/channels/{q(channel)}/messages"

    def one(self, channel, message_id):
        return f"{self.messages(channel)}/{q(message_id)}"

    async def set_everyone(self, space, token, bits):
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/{perms.ROLE_EVENT}/",
                      {"name": "@everyone", "permissions": str(int(bits)), "position": 0}, token=token)

    async def listed(self, channel, token, **query):
        suffix = "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items()) if query else ""
        return await self.ok("GET", self.messages(channel) + suffix, token=token)

    @inline
    async def test_send_list_edit_delete(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        first = await self.ok("POST", self.messages(channel), {"content": "hello **world**"}, token=token)
        self.assertEqual(first["content"], "hello **world**")
        self.assertEqual(first["html"], "<p>hello <strong>world</strong></p>")
        self.assertEqual(first["author"], {"id": alice, "display_name": "alice"})
        self.assertEqual((first["channel_id"], first["edited_at"], first["reply_to"], first["reactions"],
                          first["pinned"], first["mention_everyone"], first["mentions"]),
                         (channel, None, None, [], False, False, []))
        self.assertRegex(first["created_at"], r"^\d{4}-\d\d-\d\dT")
        self.assertTrue(first["id"].startswith("$"))
        second = await self.ok("POST", self.messages(channel), {"content": "second"}, token=bob_token)

        # The Matrix face sees the same events.
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(first['id'])}", token=bob_token)
        self.assertEqual(event["content"]["body"], "hello **world**")
        self.assertEqual(event["content"]["format"], "org.matrix.custom.html")
        self.assertEqual(event["content"]["formatted_body"], "<p>hello <strong>world</strong></p>")

        listed = await self.listed(channel, bob_token)
        self.assertEqual([m["id"] for m in listed], [second["id"], first["id"]])
        self.assertEqual([m["id"] for m in await self.listed(channel, bob_token, limit=1)], [second["id"]])
        self.assertEqual([m["id"] for m in await self.listed(channel, bob_token, before=second["id"])],
                         [first["id"]])

        edited = await self.ok("PATCH", self.one(channel, first["id"]), {"content": "hello *again*"}, token=token)
        self.assertEqual((edited["content"], edited["html"]), ("hello *again*", "<p>hello <em>again</em></p>"))
        self.assertIsNotNone(edited["edited_at"])
        listed = await self.listed(channel, bob_token)
        # The edit event is not a message of its own.
        self.assertEqual([m["id"] for m in listed], [second["id"], first["id"]])
        self.assertEqual(listed[1]["content"], "hello *again*")
        got = await self.ok("GET", self.one(channel, first["id"]), token=bob_token)
        self.assertEqual(got["content"], "hello *again*")

        await self.ok("DELETE", self.one(channel, first["id"]), token=token)
        self.assertEqual([m["id"] for m in await self.listed(channel, bob_token)], [second["id"]])
        self.assertMatrixError(await self.request("GET", self.one(channel, first["id"]), token=bob_token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("PATCH", self.one(channel, first["id"]), {"content": "x"},
                                                  token=token), 404, "M_NOT_FOUND")
        # A deleted message is still a cursor.
        self.assertEqual([m["id"] for m in await self.listed(channel, bob_token, before=first["id"])], [])
        self.assertMatrixError(await self.request("GET", self.messages(channel) + "?before=%24nope",
                                                  token=bob_token), 400, "M_INVALID_PARAM")
        # The owner has MANAGE_MESSAGES: may delete bob's.
        await self.ok("DELETE", self.one(channel, second["id"]), token=token)
        self.assertEqual(await self.listed(channel, bob_token), [])

    @inline
    async def test_markdown_is_sanitized_and_replies(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        hostile = await self.ok("POST", self.messages(channel),
                                {"content": "<script>alert(1)</script> [x](javascript:alert(1))"}, token=token)
        self.assertNotIn("<script", hostile["html"])
        self.assertNotIn("<a", hostile["html"])
        self.assertIn("&lt;script&gt;", hostile["html"])
        reply = await self.ok("POST", self.messages(channel),
                              {"content": "`code` ~~no~~", "reply_to": hostile["id"]}, token=bob_token)
        self.assertEqual(reply["reply_to"], hostile["id"])
        self.assertEqual(reply["html"], "<p><code>code</code> <del>no</del></p>")
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(reply['id'])}", token=token)
        self.assertEqual(event["content"]["m.relates_to"], {"m.in_reply_to": {"event_id": hostile["id"]}})
        # A reply to something that is not a message of this channel.
        self.assertMatrixError(await self.request("POST", self.messages(channel),
                                                  {"content": "x", "reply_to": "$nope"}, token=token),
                               404, "M_NOT_FOUND")
        # Mentions of users.
        mention = await self.ok("POST", self.messages(channel), {"content": f"hi {bob}!"}, token=token)
        self.assertEqual(mention["mentions"], [bob])
        self.assertEqual(len(await self.listed(channel, token)), 3)

    @inline
    async def test_nonce_makes_retries_safe(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        first = await self.ok("POST", self.messages(channel), {"content": "once", "nonce": "n1"}, token=token)
        again = await self.ok("POST", self.messages(channel), {"content": "once", "nonce": "n1"}, token=token)
        self.assertEqual(first["id"], again["id"])
        other = await self.ok("POST", self.messages(channel), {"content": "once", "nonce": "n2"}, token=token)
        self.assertNotEqual(first["id"], other["id"])
        self.assertEqual(len(await self.listed(channel, token)), 2)

    @inline
    async def test_reactions(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        message = await self.ok("POST", self.messages(channel), {"content": "react"}, token=token)
        thumbs = quote("👍", safe="")
        await self.ok("PUT", f"{self.one(channel, message['id'])}/reactions/{thumbs}", token=token)
        await self.ok("PUT", f"{self.one(channel, message['id'])}/reactions/{thumbs}", token=token)  # idempotent
        await self.ok("PUT", f"{self.one(channel, message['id'])}/reactions/{thumbs}", token=bob_token)
        await self.ok("PUT", f"{self.one(channel, message['id'])}/reactions/ok", token=bob_token)
        got = await self.ok("GET", self.one(channel, message["id"]), token=token)
        self.assertEqual(sorted(got["reactions"], key=lambda r: r["key"]),
                         [{"key": "ok", "count": 1, "me": False}, {"key": "👍", "count": 2, "me": True}])
        await self.ok("DELETE", f"{self.one(channel, message['id'])}/reactions/{thumbs}", token=token)
        [listed] = await self.listed(channel, bob_token)
        self.assertEqual(sorted(listed["reactions"], key=lambda r: r["key"]),
                         [{"key": "ok", "count": 1, "me": True}, {"key": "👍", "count": 1, "me": True}])
        # Reactions are not messages.
        self.assertEqual(len(await self.listed(channel, token)), 1)
        # Without ADD_REACTIONS: 403.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.ADD_REACTIONS)
        self.assertMatrixError(await self.request("PUT", f"{self.one(channel, message['id'])}/reactions/x",
                                                  token=bob_token), 403, "M_FORBIDDEN")

    @inline
    async def test_pins(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        message = await self.ok("POST", self.messages(channel), {"content": "pin me"}, token=bob_token)
        pins = f"{API}/channels/{q(channel)}/pins"
        self.assertEqual(await self.ok("GET", pins, token=bob_token), [])
        # bob lacks MANAGE_MESSAGES.
        self.assertMatrixError(await self.request("PUT", f"{pins}/{q(message['id'])}", token=bob_token),
                               403, "M_FORBIDDEN")
        await self.ok("PUT", f"{pins}/{q(message['id'])}", token=token)
        listed = await self.ok("GET", pins, token=bob_token)
        self.assertEqual([m["id"] for m in listed], [message["id"]])
        self.assertTrue(listed[0]["pinned"])
        status, state = await self.request("GET", f"{V3}/rooms/{q(channel)}/state/m.room.pinned_events/",
                                           token=bob_token)
        self.assertEqual(state, {"pinned": [message["id"]]})
        await self.ok("DELETE", f"{pins}/{q(message['id'])}", token=token)
        self.assertEqual(await self.ok("GET", pins, token=bob_token), [])
        self.assertMatrixError(await self.request("DELETE", f"{pins}/{q(message['id'])}", token=token),
                               404, "M_NOT_FOUND")

    @inline
    async def test_permissions(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        mine = await self.ok("POST", self.messages(channel), {"content": "alice's"}, token=token)
        bobs = await self.ok("POST", self.messages(channel), {"content": "bob's"}, token=bob_token)
        # A non-author can't edit, even the owner; bob can't delete alice's.
        self.assertMatrixError(await self.request("PATCH", self.one(channel, mine["id"]), {"content": "x"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("PATCH", self.one(channel, bobs["id"]), {"content": "x"},
                                                  token=token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("DELETE", self.one(channel, mine["id"]), token=bob_token),
                               403, "M_FORBIDDEN")
        # The author may delete their own.
        await self.ok("DELETE", self.one(channel, bobs["id"]), token=bob_token)
        listed = await self.listed(channel, token)
        self.assertEqual([(m["id"], m["content"]) for m in listed], [(mine["id"], "alice's")])

        # @everyone without SEND_MESSAGES: bob can't send; alice (owner) still can.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.SEND_MESSAGES)
        self.assertMatrixError(await self.request("POST", self.messages(channel), {"content": "hi"},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        await self.ok("POST", self.messages(channel), {"content": "still here"}, token=token)
        # Without READ_MESSAGE_HISTORY: no listing.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.READ_MESSAGE_HISTORY)
        self.assertMatrixError(await self.request("GET", self.messages(channel), token=bob_token),
                               403, "M_FORBIDDEN")
        # Not a member of the server: the channel is unknown.
        carol, carol_token = await self.user("carol")
        self.assertMatrixError(await self.request("POST", self.messages(channel), {"content": "hi"},
                                                  token=carol_token), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", self.messages(channel), token=carol_token),
                               404, "M_NOT_FOUND")

    @inline
    async def test_mention_everyone(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        # Default @everyone has MENTION_EVERYONE.
        loud = await self.ok("POST", self.messages(channel), {"content": "@everyone look"}, token=bob_token)
        self.assertTrue(loud["mention_everyone"])
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(loud['id'])}", token=token)
        self.assertIs(event["content"]["m.mentions"].get("room"), True)
        # Without it the message is sent but pings nobody.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.MENTION_EVERYONE)
        quiet = await self.ok("POST", self.messages(channel), {"content": "@here look"}, token=bob_token)
        self.assertFalse(quiet["mention_everyone"])
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(quiet['id'])}", token=token)
        self.assertNotIn("room", event["content"]["m.mentions"])
        self.assertNotIn("@here", event["content"]["body"])
        self.assertEqual(perms.required_permission("m.room.message", event["content"]) & perms.P.MENTION_EVERYONE, 0)
        # The owner still pings.
        owner = await self.ok("POST", self.messages(channel), {"content": "@everyone hi"}, token=token)
        self.assertTrue(owner["mention_everyone"])

    @inline
    async def test_here_pings_who_is_online(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        carol, carol_token = await self.user("carol")
        invite = await self.ok("POST", f"{API}/servers/{q(space)}/invites", {}, token=token)
        await self.ok("POST", f"{API}/invites/{invite['code']}", token=carol_token)
        await self.ok("PATCH", f"{API}/users/@me", {"status": "dnd"}, token=token)      # away but there
        await self.ok("PATCH", f"{API}/users/@me", {"status": "invisible"}, token=carol_token)
        here = await self.ok("POST", self.messages(channel), {"content": "@here standup"}, token=bob_token)
        self.assertTrue(here["mention_everyone"])
        self.assertEqual(here["mentions"], [alice])
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(here['id'])}", token=token)
        self.assertNotIn("room", event["content"]["m.mentions"])
        # @everyone is the whole room.
        everyone = await self.ok("POST", self.messages(channel), {"content": "@everyone @here"}, token=bob_token)
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(everyone['id'])}", token=token)
        self.assertIs(event["content"]["m.mentions"].get("room"), True)

    @inline
    async def test_role_mentions(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        carol, carol_token = await self.user("carol")
        invite = await self.ok("POST", f"{API}/servers/{q(space)}/invites", {}, token=token)
        await self.ok("POST", f"{API}/invites/{invite['code']}", token=carol_token)
        roles = f"{API}/servers/{q(space)}/roles"
        ops = await self.ok("POST", roles, {"name": "ops", "mentionable": False}, token=token)
        crew = await self.ok("POST", roles, {"name": "crew", "mentionable": True}, token=token)
        for role in (ops, crew):
            await self.ok("PUT", f"{API}/servers/{q(space)}/members/{q(carol)}/roles/{role['id']}", {}, token=token)
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.MENTION_EVERYONE)

        # Without MENTION_EVERYONE only mentionable roles ping; their members are mentioned.
        sent = await self.ok("POST", self.messages(channel),
                             {"content": f"<@&{ops['id']}> and <@&{crew['id']}>, deploy"}, token=bob_token)
        self.assertEqual((sent["mention_roles"], sent["mentions"]), ([crew["id"]], [carol]))
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(sent['id'])}", token=token)
        self.assertEqual(event["content"]["m.mentions"]["user_ids"], [carol])
        states = await self.ok("GET", f"{API}/users/@me/read-states", token=carol_token)
        self.assertEqual([s["mention_count"] for s in states if s["channel_id"] == channel], [1])
        # The owner may ping any role.
        loud = await self.ok("POST", self.messages(channel), {"content": f"<@&{ops['id']}> wake up"}, token=token)
        self.assertEqual((loud["mention_roles"], loud["mentions"]), ([ops["id"]], [carol]))
        # An unknown role pings nobody.
        quiet = await self.ok("POST", self.messages(channel), {"content": "<@&nope> hi"}, token=token)
        self.assertEqual((quiet["mention_roles"], quiet["mentions"]), ([], []))

    @inline
    async def test_bad_input_changes_nothing(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        message = await self.ok("POST", self.messages(channel), {"content": "keep"}, token=token)
        for body, errcode in (({}, "M_MISSING_PARAM"), ({"content": ""}, "M_INVALID_PARAM"),
                              ({"content": "   "}, "M_INVALID_PARAM"), ({"content": 5}, "M_INVALID_PARAM"),
                              ({"content": "x" * 4001}, "M_INVALID_PARAM"),
                              ({"content": "x", "reply_to": 3}, "M_INVALID_PARAM")):
            self.assertMatrixError(await self.request("POST", self.messages(channel), body, token=token),
                                   400, errcode)
            if "reply_to" not in body:
                self.assertMatrixError(await self.request("PATCH", self.one(channel, message["id"]), body,
                                                          token=token), 400, errcode)
        status, _ = await self.request("POST", self.messages(channel), {"content": "x" * 4000}, token=token)
        self.assertEqual(status, 200)
        self.assertMatrixError(await self.request("GET", self.messages(channel) + "?limit=abc", token=token),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", self.one(channel, "$unknown"), token=token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", self.messages("!nope:test.local"), token=token),
                               404, "M_NOT_FOUND")
        listed = await self.listed(channel, token)
        self.assertEqual(len(listed), 2)
        self.assertEqual(listed[1]["content"], "keep")
        self.assertIsNone(listed[1]["edited_at"])
        # Unauthenticated.
        status, body = await self.request("GET", self.messages(channel))
        self.assertEqual(status, 401, body)

    @inline
    async def test_openapi_lists_message_routes(self):
        status, document = await self.request("GET", f"{API}/openapi.json")
        paths = document["paths"]
        self.assertLessEqual({"get", "post"}, set(paths["/channels/{channel_id}/messages"]))
        self.assertLessEqual({"get", "patch", "delete"}, set(paths["/channels/{channel_id}/messages/{message_id}"]))
        self.assertIn("Message", document["components"]["schemas"])


class MessageSqliteTests(MessageTests, HomeserverTestCase):
    engine = "sqlite"


class MessagePostgresTests(MessageTests, HomeserverTestCase):
    engine = "postgres"

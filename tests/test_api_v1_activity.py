"""/api/v1 channel activity: attachments through the media repository, threads, typing
and read states with unread and mention counts, as Matrix events, on both engines."""

from __future__ import annotations

import io
from urllib.parse import quote

from PIL import Image

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline

SERVER = "test.local"


def png_bytes(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 90)).save(out, format="PNG")
    return out.getvalue()


class ActivityTests(ApiHelpers):
    # Above the 1 MiB limit of JSON bodies, so that the attachment route is seen to use the media one.
    config_overrides = {"media": {"max_upload_bytes": 2 * 1024 * 1024}}

    def messages(self, channel):
        return f"{API}/channels/{q(channel)}/messages"

    def threads(self, channel):
        return f"{API}/channels/{q(channel)}/threads"

    async def set_everyone(self, space, token, bits):
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/{perms.ROLE_EVENT}/",
                      {"name": "@everyone", "permissions": str(int(bits)), "position": 0}, token=token)

    async def upload(self, channel, token, data, content_type, filename):
        return await self.request("POST", f"{API}/channels/{q(channel)}/attachments", raw=data, token=token,
                                  query={"filename": filename} if filename is not None else None,
                                  headers={"Content-Type": content_type})

    async def listed(self, path, token, **query):
        suffix = "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items()) if query else ""
        return await self.ok("GET", path + suffix, token=token)

    async def read_state(self, token, channel):
        states = await self.ok("GET", f"{API}/users/@me/read-states", token=token)
        return next(s for s in states if s["channel_id"] == channel)

    # --- attachments ---------------------------------------------------------------------

    @inline
    async def test_upload_and_send_attachments(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        image = png_bytes(4, 3)
        status, uploaded = await self.upload(channel, token, image, "image/png", "cat.png")
        self.assertEqual(status, 200, uploaded)
        self.assertTrue(uploaded["id"].startswith(f"mxc://{SERVER}/"))
        self.assertEqual((uploaded["filename"], uploaded["content_type"], uploaded["size"]),
                         ("cat.png", "image/png", len(image)))
        status, notes = await self.upload(channel, token, b"some notes", "text/plain", "notes.txt")
        self.assertEqual(status, 200, notes)

        sent = await self.ok("POST", self.messages(channel),
                             {"content": f"look {bob}", "attachments": [uploaded["id"], notes["id"]]}, token=token)
        self.assertEqual(sent["content"], f"look {bob}")
        self.assertEqual(sent["mentions"], [bob])
        self.assertEqual(sent["attachments"], [{
            "id": uploaded["id"], "filename": "cat.png", "content_type": "image/png", "size": len(image),
            "url": uploaded["url"], "width": 4, "height": 3}])

        # One event per file: the text is the first one's caption (Matrix media captions).
        listed = await self.listed(self.messages(channel), bob_token)
        self.assertEqual(len(listed), 2)
        second, first = listed
        self.assertEqual(first["id"], sent["id"])
        self.assertEqual(first["attachments"][0]["filename"], "cat.png")
        self.assertEqual(second["content"], "")
        self.assertEqual(second["attachments"], [{
            "id": notes["id"], "filename": "notes.txt", "content_type": "text/plain", "size": 10,
            "url": notes["url"]}])
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(sent['id'])}", token=bob_token)
        content = event["content"]
        self.assertEqual((content["msgtype"], content["url"], content["filename"], content["body"]),
                         ("m.image", uploaded["id"], "cat.png", f"look {bob}"))
        self.assertEqual(content["info"], {"mimetype": "image/png", "size": len(image), "w": 4, "h": 3})
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(second['id'])}", token=bob_token)
        self.assertEqual((event["content"]["msgtype"], event["content"]["body"]), ("m.file", "notes.txt"))

        # The bytes come back through the media repository, with and without the new URL.
        status, data = await self.request("GET", first["attachments"][0]["url"], token=bob_token)
        self.assertEqual(status, 200)
        self.assertEqual(data, image)
        media_id = uploaded["id"].rsplit("/", 1)[1]
        status, data = await self.request("GET", f"/_matrix/media/v3/download/{SERVER}/{media_id}")
        self.assertEqual((status, data), (200, image))

        # A file alone, and editing its caption keeps the file.
        status, alone = await self.upload(channel, bob_token, b"\x00\x01", "application/octet-stream", "x.bin")
        only = await self.ok("POST", self.messages(channel), {"attachments": [alone["id"]]}, token=bob_token)
        self.assertEqual((only["content"], only["html"], only["attachments"][0]["filename"]), ("", None, "x.bin"))
        edited = await self.ok("PATCH", f"{self.messages(channel)}/{q(only['id'])}", {"content": "a *binary*"},
                               token=bob_token)
        self.assertEqual((edited["content"], edited["attachments"][0]["id"]), ("a *binary*", alone["id"]))
        self.assertEqual(edited["html"], "<p>a <em>binary</em></p>")

    @inline
    async def test_attach_files_permission_and_bad_uploads(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        status, early = await self.upload(channel, bob_token, b"early", "text/plain", "early.txt")
        self.assertEqual(status, 200, early)
        status, alices = await self.upload(channel, token, b"hers", "text/plain", "hers.txt")
        self.assertEqual(status, 200, alices)
        # Someone else's upload, an unknown one, a remote one, junk: refused, nothing sent.
        for attachments in ([alices["id"]], [f"mxc://{SERVER}/unknownmedia"], ["mxc://elsewhere.example/abc"],
                            ["https://example.com/x.png"], [early["id"], early["id"]], [5], "nope"):
            self.assertMatrixError(await self.request("POST", self.messages(channel),
                                                      {"content": "x", "attachments": attachments},
                                                      token=bob_token), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", self.messages(channel), {"attachments": []},
                                                  token=bob_token), 400, "M_MISSING_PARAM")
        # Bad uploads.
        self.assertMatrixError(await self.upload(channel, bob_token, b"data", "text/plain", None),
                               400, "M_MISSING_PARAM")
        self.assertMatrixError(await self.upload(channel, bob_token, b"", "text/plain", "empty.txt"),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.upload("!nope:test.local", bob_token, b"x", "text/plain", "a.txt"),
                               404, "M_NOT_FOUND")

        # Without ATTACH_FILES: no upload, no sending an earlier upload; text still goes.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.ATTACH_FILES)
        self.assertMatrixError(await self.upload(channel, bob_token, b"late", "text/plain", "late.txt"),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", self.messages(channel),
                                                  {"content": "file", "attachments": [early["id"]]},
                                                  token=bob_token), 403, "M_FORBIDDEN")
        self.assertEqual(await self.listed(self.messages(channel), token), [])
        await self.ok("POST", self.messages(channel), {"content": "just text"}, token=bob_token)
        # The owner is not bound by @everyone.
        await self.ok("POST", self.messages(channel), {"attachments": [alices["id"]]}, token=token)
        listed = await self.listed(self.messages(channel), token)
        self.assertEqual([(m["content"], len(m["attachments"])) for m in listed], [("", 1), ("just text", 0)])

    @inline
    async def test_upload_size_follows_the_media_limit(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        big = b"x" * (1024 * 1024 + 512 * 1024)
        status, uploaded = await self.upload(channel, bob_token, big, "application/octet-stream", "big.bin")
        self.assertEqual(status, 200, uploaded)
        self.assertEqual(uploaded["size"], len(big))
        self.assertMatrixError(await self.upload(channel, bob_token, b"x" * (2 * 1024 * 1024 + 1),
                                                 "application/octet-stream", "huge.bin"), 413, "M_TOO_LARGE")
        sent = await self.ok("POST", self.messages(channel), {"attachments": [uploaded["id"]]}, token=bob_token)
        status, data = await self.request("GET", sent["attachments"][0]["url"], token=token)
        self.assertEqual((status, len(data)), (200, len(big)))

    # --- threads -------------------------------------------------------------------------

    @inline
    async def test_threads(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        root = await self.ok("POST", self.messages(channel), {"content": "let's plan"}, token=token)
        thread = await self.ok("POST", self.threads(channel), {"name": "Plans", "message_id": root["id"]},
                               token=bob_token)
        self.assertEqual((thread["id"], thread["message_id"], thread["name"], thread["owner_id"],
                          thread["message_count"], thread["last_message_id"], thread["channel_id"]),
                         (root["id"], root["id"], "Plans", bob, 0, None, channel))
        first = await self.ok("POST", self.messages(channel), {"content": "in the thread", "thread_id": root["id"]},
                              token=bob_token)
        self.assertEqual((first["thread_id"], first["reply_to"]), (root["id"], None))
        second = await self.ok("POST", self.messages(channel),
                               {"content": "answer", "thread_id": root["id"], "reply_to": first["id"]}, token=token)
        self.assertEqual((second["thread_id"], second["reply_to"]), (root["id"], first["id"]))

        # Matrix sees m.thread relations and the naming event.
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(first['id'])}", token=token)
        self.assertEqual(event["content"]["m.relates_to"]["rel_type"], "m.thread")
        self.assertEqual(event["content"]["m.relates_to"]["event_id"], root["id"])
        related = await self.ok("GET", f"/_matrix/client/v1/rooms/{q(channel)}/relations/{q(root['id'])}/m.thread",
                                token=token)
        names = [e["content"].get("io.drocsid.thread_name") for e in related["chunk"]]
        self.assertEqual(names, [None, None, "Plans"])
        matrix_threads = await self.ok("GET", f"/_matrix/client/v1/rooms/{q(channel)}/threads", token=token)
        self.assertEqual([e["event_id"] for e in matrix_threads["chunk"]], [root["id"]])

        listed = await self.ok("GET", self.threads(channel), token=token)
        self.assertEqual(len(listed), 1)
        self.assertEqual((listed[0]["id"], listed[0]["name"], listed[0]["message_count"],
                          listed[0]["last_message_id"]), (root["id"], "Plans", 2, second["id"]))
        got = await self.ok("GET", f"{self.threads(channel)}/{q(root['id'])}", token=bob_token)
        self.assertEqual(got["message_count"], 2)
        path = f"{self.threads(channel)}/{q(root['id'])}/messages"
        self.assertEqual([m["id"] for m in await self.listed(path, bob_token)], [second["id"], first["id"]])
        self.assertEqual([m["id"] for m in await self.listed(path, bob_token, limit=1)], [second["id"]])
        self.assertEqual([m["id"] for m in await self.listed(path, bob_token, before=second["id"])], [first["id"]])
        # The channel itself shows the root only (thread replies stay in the thread).
        self.assertEqual([m["id"] for m in await self.listed(self.messages(channel), bob_token)], [root["id"]])

        # A thread without a starter message starts from one carrying its name.
        fresh = await self.ok("POST", self.threads(channel), {"name": "Fresh"}, token=token)
        starter = await self.ok("GET", f"{self.messages(channel)}/{q(fresh['id'])}", token=token)
        self.assertEqual(starter["content"], "Fresh")
        self.assertEqual([t["name"] for t in await self.ok("GET", self.threads(channel), token=token)],
                         ["Fresh", "Plans"])

        # Refused: a second thread on a message, a thread on a thread message, unknown roots.
        for body, status, errcode in (({"name": "Again", "message_id": root["id"]}, 400, "M_INVALID_PARAM"),
                                      ({"name": "Nested", "message_id": first["id"]}, 400, "M_INVALID_PARAM"),
                                      ({"name": "Ghost", "message_id": "$unknown"}, 404, "M_NOT_FOUND"),
                                      ({"name": "", "message_id": root["id"]}, 400, "M_INVALID_PARAM"),
                                      ({"name": "x" * 101, "message_id": root["id"]}, 400, "M_INVALID_PARAM"),
                                      ({"message_id": root["id"]}, 400, "M_MISSING_PARAM"),
                                      ({"name": 5}, 400, "M_INVALID_PARAM")):
            self.assertMatrixError(await self.request("POST", self.threads(channel), body, token=bob_token),
                                   status, errcode)
        self.assertMatrixError(await self.request("POST", self.messages(channel),
                                                  {"content": "x", "thread_id": "$unknown"}, token=bob_token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("POST", self.messages(channel),
                                                  {"content": "x", "thread_id": first["id"]}, token=bob_token),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", path + "?limit=abc", token=bob_token),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", path + "?before=" + q(root["id"]), token=bob_token),
                               400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("GET", f"{self.threads(channel)}/{q('$unknown')}/messages",
                                                  token=bob_token), 404, "M_NOT_FOUND")
        self.assertEqual([m["id"] for m in await self.listed(path, bob_token)], [second["id"], first["id"]])
        self.assertEqual(len(await self.ok("GET", self.threads(channel), token=token)), 2)

        # Without SEND_MESSAGES no thread is started; without READ_MESSAGE_HISTORY none listed.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.SEND_MESSAGES)
        other = await self.ok("POST", self.messages(channel), {"content": "another"}, token=token)
        self.assertMatrixError(await self.request("POST", self.threads(channel),
                                                  {"name": "No", "message_id": other["id"]}, token=bob_token),
                               403, "M_FORBIDDEN")
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.READ_MESSAGE_HISTORY)
        self.assertMatrixError(await self.request("GET", self.threads(channel), token=bob_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("GET", path, token=bob_token), 403, "M_FORBIDDEN")

    # --- typing --------------------------------------------------------------------------

    @inline
    async def test_typing_reaches_matrix_sync(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        status, body = await self.request("POST", f"{API}/channels/{q(channel)}/typing", token=token)
        self.assertEqual(status, 204, body)
        status, synced = await self.request("GET", f"{V3}/sync", token=bob_token)
        self.assertEqual(status, 200, synced)
        room = synced["rooms"]["join"][channel]
        typing = [e["content"]["user_ids"] for e in room["ephemeral"]["events"] if e["type"] == "m.typing"]
        self.assertEqual(typing, [[alice]])
        # Unknown channel; not allowed to send.
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q('!nope:test.local')}/typing",
                                                  token=bob_token), 404, "M_NOT_FOUND")
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.SEND_MESSAGES)
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(channel)}/typing", token=bob_token),
                               403, "M_FORBIDDEN")

    # --- read states ---------------------------------------------------------------------

    @inline
    async def test_ack_unread_and_mentions(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        mine = await self.ok("POST", self.messages(channel), {"content": "mine"}, token=token)
        status, body = await self.request("PUT", f"{API}/channels/{q(channel)}/ack", {"message_id": mine["id"]},
                                          token=token)
        self.assertEqual(status, 204, body)
        self.assertEqual(await self.read_state(token, channel),
                         {"channel_id": channel, "last_read_message_id": mine["id"], "unread_count": 0,
                          "mention_count": 0})

        await self.ok("POST", self.messages(channel), {"content": f"hey {alice}"}, token=bob_token)
        await self.ok("POST", self.messages(channel), {"content": "plain"}, token=bob_token)
        last = await self.ok("POST", self.messages(channel), {"content": f"{alice} again"}, token=bob_token)
        state = await self.read_state(token, channel)
        self.assertEqual((state["unread_count"], state["mention_count"], state["last_read_message_id"]),
                         (3, 2, mine["id"]))
        # The same counts a Matrix client gets.
        status, synced = await self.request("GET", f"{V3}/sync", token=token)
        self.assertEqual(synced["rooms"]["join"][channel]["unread_notifications"],
                         {"notification_count": 3, "highlight_count": 2})

        status, _ = await self.request("PUT", f"{API}/channels/{q(channel)}/ack", {"message_id": last["id"]},
                                       token=token)
        self.assertEqual(status, 204)
        self.assertEqual(await self.read_state(token, channel),
                         {"channel_id": channel, "last_read_message_id": last["id"], "unread_count": 0,
                          "mention_count": 0})
        marker = await self.ok("GET", f"{V3}/user/{q(alice)}/rooms/{q(channel)}/account_data/m.fully_read",
                               token=token)
        self.assertEqual(marker, {"event_id": last["id"]})
        # Acknowledging an older message does not move the marker back.
        status, _ = await self.request("PUT", f"{API}/channels/{q(channel)}/ack", {"message_id": mine["id"]},
                                       token=token)
        self.assertEqual(status, 204)
        self.assertEqual((await self.read_state(token, channel))["last_read_message_id"], last["id"])

        # @everyone from the owner is a mention for bob; the channel lists for both.
        await self.ok("POST", self.messages(channel), {"content": "@everyone meeting"}, token=token)
        state = await self.read_state(bob_token, channel)
        self.assertGreaterEqual(state["unread_count"], 1)
        self.assertEqual(state["mention_count"], 1)

        # Bad input changes nothing.
        ack = f"{API}/channels/{q(channel)}/ack"
        for body, status, errcode in (({}, 400, "M_MISSING_PARAM"), ({"message_id": 5}, 400, "M_INVALID_PARAM"),
                                      ({"message_id": "$unknown"}, 404, "M_NOT_FOUND"),
                                      ({"message_id": "12345"}, 404, "M_NOT_FOUND")):
            self.assertMatrixError(await self.request("PUT", ack, body, token=token), status, errcode)
        self.assertMatrixError(await self.request("PUT", f"{API}/channels/{q('!nope:test.local')}/ack",
                                                  {"message_id": last["id"]}, token=token), 404, "M_NOT_FOUND")
        carol, carol_token = await self.user("carol")
        self.assertMatrixError(await self.request("PUT", ack, {"message_id": last["id"]}, token=carol_token),
                               404, "M_NOT_FOUND")
        self.assertEqual(await self.ok("GET", f"{API}/users/@me/read-states", token=carol_token), [])
        self.assertEqual((await self.read_state(token, channel))["last_read_message_id"], last["id"])
        status, body = await self.request("GET", f"{API}/users/@me/read-states")
        self.assertEqual(status, 401, body)

    @inline
    async def test_dm_typing_and_read_state(self):
        alice, token = await self.user("alice")
        bob, bob_token = await self.user("bob")
        room = (await self.ok("POST", f"{V3}/createRoom", {"is_direct": True, "invite": [bob],
                                                           "preset": "trusted_private_chat"}, token=token))["room_id"]
        await self.ok("POST", f"{V3}/join/{q(room)}", {}, token=bob_token)
        for user, other, user_token in ((alice, bob, token), (bob, alice, bob_token)):
            await self.ok("PUT", f"{V3}/user/{q(user)}/account_data/m.direct", {other: [room]}, token=user_token)
        sent = await self.ok("PUT", f"{V3}/rooms/{q(room)}/send/m.room.message/t1",
                             {"msgtype": "m.text", "body": "hi alice", "m.mentions": {"user_ids": [alice]}},
                             token=bob_token)
        self.assertEqual(await self.read_state(token, room),
                         {"channel_id": room, "last_read_message_id": None, "unread_count": 1, "mention_count": 1})
        status, body = await self.request("POST", f"{API}/channels/{q(room)}/typing", token=token)
        self.assertEqual(status, 204, body)
        status, body = await self.request("PUT", f"{API}/channels/{q(room)}/ack", {"message_id": sent["event_id"]},
                                          token=token)
        self.assertEqual(status, 204, body)
        self.assertEqual(await self.read_state(token, room),
                         {"channel_id": room, "last_read_message_id": sent["event_id"], "unread_count": 0,
                          "mention_count": 0})
        # Someone else's DM is not theirs to touch.
        carol, carol_token = await self.user("carol")
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(room)}/typing", token=carol_token),
                               404, "M_NOT_FOUND")

    @inline
    async def test_openapi_lists_activity_routes(self):
        status, document = await self.request("GET", f"{API}/openapi.json")
        paths = document["paths"]
        for path in ("/channels/{channel_id}/attachments", "/channels/{channel_id}/threads",
                     "/channels/{channel_id}/threads/{thread_id}/messages", "/channels/{channel_id}/typing",
                     "/channels/{channel_id}/ack", "/users/@me/read-states"):
            self.assertIn(path, paths)
        self.assertLessEqual({"Attachment", "Thread", "ReadState"}, set(document["components"]["schemas"]))


class ActivitySqliteTests(ActivityTests, HomeserverTestCase):
    engine = "sqlite"


class ActivityPostgresTests(ActivityTests, HomeserverTestCase):
    engine = "postgres"

"""/api/v1 webhooks: managing them with MANAGE_WEBHOOKS, executing them with their token
(posting as a virtual user with per-message name and avatar), and the rate limits of
webhook executions and message sends, on both engines."""

from __future__ import annotations

from homeserver.drocsid import permissions as perms
from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline


class WebhookHelpers(ApiHelpers):
    def hooks(self, channel):
        return f"{API}/channels/{q(channel)}/webhooks"

    def execute_path(self, hook, token=None):
        return f"{API}/webhooks/{hook['id']}/{token or hook['token']}"

    async def execute(self, hook, body, token=None):
        return await self.request("POST", self.execute_path(hook, token), body)

    async def listed(self, channel, token):
        return await self.ok("GET", f"{API}/channels/{q(channel)}/messages", token=token)

    async def set_everyone(self, space, token, bits):
        await self.ok("PUT", f"{V3}/rooms/{q(space)}/state/{perms.ROLE_EVENT}/",
                      {"name": "@everyone", "permissions": str(int(bits)), "position": 0}, token=token)


class WebhookTests(WebhookHelpers):
    @inline
    async def test_create_list_patch_delete_and_permissions(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        hook = await self.ok("POST", self.hooks(channel), {"name": "Deploys", "avatar_url": "mxc://x/y"},
                             token=token)
        self.assertEqual((hook["server_id"], hook["channel_id"], hook["creator_id"], hook["name"],
                          hook["avatar_url"]), (space, channel, alice, "Deploys", "mxc://x/y"))
        self.assertRegex(hook["id"], r"^[0-9a-f]{24}$")
        self.assertRegex(hook["token"], r"^[A-Za-z0-9_-]{68}$")
        self.assertEqual(hook["user_id"], f"@_webhook_{hook['id']}:{self.hs.config.server_name}")
        self.assertRegex(hook["created_at"], r"^\d{4}-\d\d-\d\dT")
        self.assertEqual((await self.hs.users.get_user(hook["user_id"])).appservice_id, "io.drocsid.webhooks")

        # The token is shown once: listings and reads leave it out.
        listed = await self.ok("GET", self.hooks(channel), token=token)
        self.assertEqual([(h["id"], h["token"]) for h in listed], [(hook["id"], None)])
        self.assertEqual([h["id"] for h in await self.ok("GET", f"{API}/servers/{q(space)}/webhooks",
                                                          token=token)], [hook["id"]])
        self.assertIsNone((await self.ok("GET", f"{API}/webhooks/{hook['id']}", token=token))["token"])
        # Only its hash is stored.
        stored = await self.hs.webhooks_store.get(hook["id"])
        self.assertNotIn(hook["token"], repr(stored))

        # bob is a member without MANAGE_WEBHOOKS.
        one = f"{API}/webhooks/{hook['id']}"
        for method, path, body in (("POST", self.hooks(channel), {"name": "Mine"}),
                                   ("GET", self.hooks(channel), None),
                                   ("GET", f"{API}/servers/{q(space)}/webhooks", None),
                                   ("GET", one, None), ("PATCH", one, {"name": "Hijack"}), ("DELETE", one, None)):
            self.assertMatrixError(await self.request(method, path, body, token=bob_token), 403, "M_FORBIDDEN")
        # carol is not in the server: the channel and the webhook are unknown to her.
        carol, carol_token = await self.user("carol")
        self.assertMatrixError(await self.request("POST", self.hooks(channel), {"name": "x"}, token=carol_token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("PATCH", one, {"name": "x"}, token=carol_token),
                               404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("GET", f"{API}/servers/{q(space)}/webhooks",
                                                  token=carol_token), 403, "M_FORBIDDEN")
        # Unauthenticated management is refused.
        status, _ = await self.request("GET", self.hooks(channel))
        self.assertEqual(status, 401)

        # Given MANAGE_WEBHOOKS, bob may manage it.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE | perms.P.MANAGE_WEBHOOKS)
        patched = await self.ok("PATCH", one, {"name": "Releases", "avatar_url": None}, token=bob_token)
        self.assertEqual((patched["name"], patched["avatar_url"], patched["token"]), ("Releases", None, None))
        # Its user's Matrix profile follows the name.
        profile = await self.ok("GET", f"{V3}/profile/{q(hook['user_id'])}", token=token)
        self.assertEqual(profile["displayname"], "Releases")

        # Bad input changes nothing.
        for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 81}, {"name": 5},
                     {"name": "ok", "avatar_url": "ftp://x"}):
            status, answer = await self.request("POST", self.hooks(channel), body, token=token)
            self.assertEqual(status, 400, (body, answer))
        self.assertMatrixError(await self.request("PATCH", one, {"name": ""}, token=token), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", self.hooks("!nope:test.local"), {"name": "x"},
                                                  token=token), 404, "M_NOT_FOUND")
        self.assertEqual([h["name"] for h in await self.ok("GET", self.hooks(channel), token=token)], ["Releases"])

        await self.ok("DELETE", one, token=token)
        self.assertEqual(await self.ok("GET", self.hooks(channel), token=token), [])
        self.assertMatrixError(await self.request("GET", one, token=token), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("DELETE", one, token=token), 404, "M_NOT_FOUND")
        # Its user left the channel.
        members = await self.ok("GET", f"{V3}/rooms/{q(channel)}/joined_members", token=token)
        self.assertNotIn(hook["user_id"], members["joined"])

    @inline
    async def test_the_namespace_is_reserved(self):
        status, body = await self.request("POST", f"{V3}/register", {
            "username": "_webhook_0123456789abcdef01234567", "password": "correct horse battery",
            "auth": {"type": "m.login.dummy"}})
        self.assertEqual((status, body.get("errcode")), (400, "M_EXCLUSIVE"), body)
        # The homeserver's own application service owns the namespace, as a bridge owns its ghosts.
        service = next(r for r in self.hs.appservices if r.id == "io.drocsid.webhooks")
        self.assertTrue(service.claims_user("@_webhook_anything:" + self.hs.config.server_name))
        self.assertIsNone(service.url)

    @inline
    async def test_execute_with_overrides(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        hook = await self.ok("POST", self.hooks(channel), {"name": "CI", "avatar_url": "https://ci.example/a.png"},
                             token=token)
        status, body = await self.execute(hook, {"content": "build **passed**"})
        self.assertEqual((status, body), (204, None))
        status, body = await self.execute(hook, {"content": "deployed", "username": "Deploy Bot",
                                                 "avatar_url": "https://ci.example/b.png"})
        self.assertEqual(status, 204, body)

        listed = await self.listed(channel, bob_token)
        self.assertEqual([m["content"] for m in listed], ["deployed", "build **passed**"])
        self.assertEqual(listed[0]["author"], {"id": hook["user_id"], "display_name": "Deploy Bot",
                                               "avatar_url": "https://ci.example/b.png", "webhook_id": hook["id"],
                                               "bot": True})
        self.assertEqual(listed[1]["author"]["display_name"], "CI")
        self.assertEqual(listed[1]["author"]["avatar_url"], "https://ci.example/a.png")
        self.assertEqual(listed[1]["html"], "<p>build <strong>passed</strong></p>")
        # The Matrix face: a message of the webhook's user, the override in its content.
        event = await self.ok("GET", f"{V3}/rooms/{q(channel)}/event/{q(listed[0]['id'])}", token=bob_token)
        self.assertEqual(event["sender"], hook["user_id"])
        self.assertEqual(event["content"]["io.drocsid.webhook"],
                         {"id": hook["id"], "username": "Deploy Bot", "avatar_url": "https://ci.example/b.png"})

        # Wrong token, unknown webhook, bad bodies: refused, and nothing is posted.
        self.assertMatrixError(await self.execute(hook, {"content": "x"}, token="A" * 68), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("POST", f"{API}/webhooks/{'0' * 24}/{hook['token']}",
                                                  {"content": "x"}), 404, "M_NOT_FOUND")
        self.assertMatrixError(await self.request("POST", f"{API}/webhooks/nope/{hook['token']}",
                                                  {"content": "x"}), 404, "M_NOT_FOUND")
        for body in ({}, {"content": ""}, {"content": "  "}, {"content": "x" * 4001},
                     {"content": "x", "username": ""}, {"content": "x", "username": "u" * 81},
                     {"content": "x", "avatar_url": "javascript:alert(1)"}):
            status, answer = await self.execute(hook, body)
            self.assertEqual(status, 400, (body, answer))
        self.assertEqual(len(await self.listed(channel, token)), 2)

        # Someone else cannot pose as the webhook: the override counts only from its user.
        await self.ok("PUT", f"{V3}/rooms/{q(channel)}/send/m.room.message/t1",
                      {"msgtype": "m.text", "body": "fake",
                       "io.drocsid.webhook": {"id": hook["id"], "username": "CI"}}, token=bob_token)
        fake = (await self.listed(channel, token))[0]
        self.assertEqual(fake["author"], {"id": bob, "display_name": "bob"})

    @inline
    async def test_private_and_read_only_channels(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        secret = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "ops", "private": True},
                               token=token)
        hook = await self.ok("POST", self.hooks(secret["id"]), {"name": "Pager"}, token=token)
        status, body = await self.execute(hook, {"content": "disk full"})
        self.assertEqual(status, 204, body)
        self.assertEqual([m["content"] for m in await self.listed(secret["id"], token)], ["disk full"])
        # bob still cannot see the private channel.
        status, body = await self.request("GET", f"{API}/channels/{q(secret['id'])}/messages", token=bob_token)
        self.assertIn(status, (403, 404), body)
        channels = await self.ok("GET", f"{API}/servers/{q(space)}/channels", token=bob_token)
        self.assertNotIn(secret["id"], [c["id"] for c in channels])

        # @everyone may not send in #general: the webhook still posts there.
        await self.set_everyone(space, token, perms.DEFAULT_EVERYONE & ~perms.P.SEND_MESSAGES)
        announcer = await self.ok("POST", self.hooks(channel), {"name": "News"}, token=token)
        status, body = await self.execute(announcer, {"content": "release day"})
        self.assertEqual(status, 204, body)
        self.assertMatrixError(await self.request("POST", f"{API}/channels/{q(channel)}/messages",
                                                  {"content": "me too"}, token=bob_token), 403, "M_FORBIDDEN")
        self.assertEqual([m["content"] for m in await self.listed(channel, bob_token)], ["release day"])

    @inline
    async def test_deleted_webhook_or_channel_stops_working(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        hook = await self.ok("POST", self.hooks(channel), {"name": "Once"}, token=token)
        status, _ = await self.execute(hook, {"content": "first"})
        self.assertEqual(status, 204)
        await self.ok("DELETE", f"{API}/webhooks/{hook['id']}", token=token)
        self.assertMatrixError(await self.execute(hook, {"content": "second"}), 404, "M_NOT_FOUND")
        self.assertEqual([m["content"] for m in await self.listed(channel, token)], ["first"])

        other = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "temp"}, token=token)
        doomed = await self.ok("POST", self.hooks(other["id"]), {"name": "Doomed"}, token=token)
        await self.ok("DELETE", f"{API}/channels/{q(other['id'])}", token=token)
        self.assertMatrixError(await self.execute(doomed, {"content": "anyone?"}), 404, "M_NOT_FOUND")
        # It went with its channel, and its user left the server.
        self.assertMatrixError(await self.request("GET", f"{API}/webhooks/{doomed['id']}", token=token),
                               404, "M_NOT_FOUND")
        self.assertEqual(await self.ok("GET", f"{API}/servers/{q(space)}/webhooks", token=token), [])
        members = await self.ok("GET", f"{V3}/rooms/{q(space)}/joined_members", token=token)
        self.assertNotIn(doomed["user_id"], members["joined"])
        self.assertNotIn(hook["user_id"], members["joined"])

    @inline
    async def test_openapi_lists_webhook_routes(self):
        status, document = await self.request("GET", f"{API}/openapi.json")
        paths = document["paths"]
        self.assertLessEqual({"get", "post"}, set(paths["/channels/{channel_id}/webhooks"]))
        self.assertLessEqual({"get", "patch", "delete"}, set(paths["/webhooks/{webhook_id}"]))
        self.assertIn("204", paths["/webhooks/{webhook_id}/{token}"]["post"]["responses"])
        self.assertIn("Webhook", document["components"]["schemas"])


class RateLimitTests(WebhookHelpers):
    @inline
    async def test_webhook_executions_are_limited(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        hook = await self.ok("POST", self.hooks(channel), {"name": "Chatty"}, token=token)
        other = await self.ok("POST", self.hooks(channel), {"name": "Quiet"}, token=token)
        for index in range(3):
            status, body = await self.execute(hook, {"content": f"n{index}"})
            self.assertEqual(status, 204, body)
        status, body = await self.execute(hook, {"content": "too many"})
        self.assertMatrixError((status, body), 429, "M_LIMIT_EXCEEDED")
        self.assertIsInstance(body["retry_after_ms"], int)
        self.assertGreater(body["retry_after_ms"], 0)
        # A wrong token does not use up the webhook's allowance, and others have their own.
        self.assertMatrixError(await self.execute(other, {"content": "x"}, token="B" * 68), 404, "M_NOT_FOUND")
        status, body = await self.execute(other, {"content": "mine"})
        self.assertEqual(status, 204, body)
        self.assertEqual(len(await self.listed(channel, token)), 4)

    @inline
    async def test_message_sends_are_limited_per_user(self):
        (alice, token), (bob, bob_token), space, channel = await self.setup_server()
        path = f"{API}/channels/{q(channel)}/messages"
        for index in range(3):
            await self.ok("POST", path, {"content": f"m{index}"}, token=bob_token)
        status, body = await self.request("POST", path, {"content": "flood"}, token=bob_token)
        self.assertMatrixError((status, body), 429, "M_LIMIT_EXCEEDED")
        self.assertGreater(body["retry_after_ms"], 0)
        # Another user is not held back by bob.
        await self.ok("POST", path, {"content": "hello"}, token=token)
        self.assertEqual([m["content"] for m in await self.listed(channel, token)], ["hello", "m2", "m1", "m0"])


_LOW_LIMITS = {"limits": {"webhook_per_second": 0.001, "webhook_burst": 3,
                          "message_send_per_second": 0.001, "message_send_burst": 3}}


class WebhookSqliteTests(WebhookTests, HomeserverTestCase):
    engine = "sqlite"


class WebhookPostgresTests(WebhookTests, HomeserverTestCase):
    engine = "postgres"


class RateLimitSqliteTests(RateLimitTests, HomeserverTestCase):
    engine = "sqlite"
    config_overrides = _LOW_LIMITS


class RateLimitPostgresTests(RateLimitTests, HomeserverTestCase):
    engine = "postgres"
    config_overrides = _LOW_LIMITS

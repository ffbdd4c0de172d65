"""The /api/v1 face's foundation: auth in the original's shapes with the Matrix face's
tokens, one error shape, and the OpenAPI document, on both engines."""

from __future__ import annotations

import json
import re

from tests.support.server import HomeserverTestCase, inline

API = "/api/v1"
V3 = "/_matrix/client/v3"
PASSWORD = "correct horse battery"


class ApiAuthTests:
    async def api_register(self, username: str, password: str = PASSWORD, **extra) -> dict:
        status, body = await self.request("POST", f"{API}/auth/register",
                                          {"username": username, "password": password, **extra})
        self.assertEqual(status, 200, body)
        return body

    async def user_count(self) -> int:
        return await self.hs.users.count_users()

    @inline
    async def test_register_login_me(self):
        body = await self.api_register("alice", display_name="Alice A", email="alice@example.org")
        self.assertEqual(set(body), {"access_token", "refresh_token", "expires_in_ms", "user"})
        user = body["user"]
        self.assertEqual(user["id"], "@alice:test.local")
        self.assertEqual(user["username"], "alice")
        self.assertEqual(user["display_name"], "Alice A")
        self.assertIsNone(user["avatar_url"])
        self.assertFalse(user["bot"])
        self.assertRegex(user["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

        # Login by username and by user ID: each is a new session with its own tokens.
        for name in ("alice", "@alice:test.local"):
            status, login = await self.request("POST", f"{API}/auth/login",
                                               {"username": name, "password": PASSWORD})
            self.assertEqual(status, 200, login)
            self.assertEqual(login["user"], user)
            self.assertNotEqual(login["access_token"], body["access_token"])
            self.assertTrue(login["refresh_token"])
            status, me = await self.request("GET", f"{API}/users/@me", token=login["access_token"])
            self.assertEqual((status, {k: v for k, v in me.items() if k in user}), (200, user))
            self.assertEqual((me["status"], me["custom_status"]), ("offline", None))

    @inline
    async def test_profile_and_status(self):
        import io
        from PIL import Image

        token = (await self.api_register("pat"))["access_token"]
        me = f"{API}/users/@me"
        for bad in ({"display_name": ""}, {"display_name": "x" * 33}, {"avatar_url": "https://x/y.png"},
                    {"status": "busy"}, {"custom_status": "x" * 129}):
            status, body = await self.request("PATCH", me, bad, token=token)
            self.assertEqual(status, 400, (bad, body))
        changed = await self.request("PATCH", me, {"display_name": "Pat", "status": "dnd", "custom_status": "focus"},
                                     token=token)
        self.assertEqual(changed[0], 200, changed)
        self.assertEqual((changed[1]["display_name"], changed[1]["status"], changed[1]["custom_status"]),
                         ("Pat", "dnd", "focus"))
        # The Matrix face sees the same profile and a plain presence.
        status, profile = await self.request("GET", f"{V3}/profile/@pat:test.local", token=token)
        self.assertEqual(profile["displayname"], "Pat")
        status, presence = await self.request("GET", f"{V3}/presence/@pat:test.local/status", token=token)
        self.assertEqual((presence["presence"], presence.get("status_msg")), ("unavailable", "dnd:focus"))
        # Only the custom status changes; then invisible, which is offline to everyone.
        status, body = await self.request("PATCH", me, {"custom_status": ""}, token=token)
        self.assertEqual((body["status"], body["custom_status"]), ("dnd", None))
        status, body = await self.request("PATCH", me, {"status": "invisible"}, token=token)
        self.assertEqual(body["status"], "offline")
        status, presence = await self.request("GET", f"{V3}/presence/@pat:test.local/status", token=token)
        self.assertEqual(presence["presence"], "offline")

        png = io.BytesIO()
        Image.new("RGB", (4, 4), (0, 0, 255)).save(png, "PNG")
        status, body = await self.client.request("POST", f"{me}/avatar", token=token, raw=b"GIF89a-not-really",
                                                 headers={"Content-Type": "image/gif"})
        self.assertMatrixError((status, body), 400, "M_INVALID_PARAM")
        status, body = await self.client.request("POST", f"{me}/avatar", token=token, raw=png.getvalue(),
                                                 headers={"Content-Type": "image/png"})
        self.assertEqual(status, 200, body)
        self.assertTrue(body["avatar_url"].startswith("mxc://test.local/"))
        status, profile = await self.request("GET", f"{V3}/profile/@pat:test.local", token=token)
        self.assertEqual(profile["avatar_url"], body["avatar_url"])

    @inline
    async def test_tokens_shared_with_matrix_face(self):
        body = await self.api_register("bob")
        status, who = await self.request("GET", f"{V3}/account/whoami", token=body["access_token"])
        self.assertEqual((status, who["user_id"]), (200, "@bob:test.local"))

        matrix = await self.register("carol")
        status, me = await self.request("GET", f"{API}/users/@me", token=matrix["access_token"])
        self.assertEqual(status, 200, me)
        self.assertEqual((me["id"], me["display_name"]), ("@carol:test.local", "carol"))
        # An account made on the Matrix face logs in here too.
        status, login = await self.request("POST", f"{API}/auth/login", {"username": "carol", "password": PASSWORD})
        self.assertEqual((status, login["user"]["id"]), (200, "@carol:test.local"))

    @inline
    async def test_refresh_rotates(self):
        first = await self.api_register("dave")
        status, second = await self.request("POST", f"{API}/auth/refresh", {"refresh_token": first["refresh_token"]})
        self.assertEqual(status, 200, second)
        self.assertEqual(set(second), {"access_token", "refresh_token", "expires_in_ms"})
        self.assertNotEqual(second["refresh_token"], first["refresh_token"])
        # The old pair is retired, with an error that says so.
        status, error = await self.request("POST", f"{API}/auth/refresh", {"refresh_token": first["refresh_token"]})
        self.assertMatrixError((status, error), 401, "M_UNKNOWN_TOKEN")
        self.assertIn("refresh token", error["error"])
        self.assertMatrixError(await self.request("GET", f"{API}/users/@me", token=first["access_token"]),
                               401, "M_UNKNOWN_TOKEN")
        status, me = await self.request("GET", f"{API}/users/@me", token=second["access_token"])
        self.assertEqual((status, me["id"]), (200, "@dave:test.local"))
        # The new refresh token works once more.
        status, third = await self.request("POST", f"{API}/auth/refresh", {"refresh_token": second["refresh_token"]})
        self.assertEqual(status, 200, third)

    @inline
    async def test_logout_invalidates(self):
        body = await self.api_register("erin")
        status, answer = await self.request("POST", f"{API}/auth/logout", token=body["access_token"])
        self.assertEqual((status, answer), (200, {}))
        self.assertMatrixError(await self.request("GET", f"{API}/users/@me", token=body["access_token"]),
                               401, "M_UNKNOWN_TOKEN")
        self.assertMatrixError(await self.request("GET", f"{V3}/account/whoami", token=body["access_token"]),
                               401, "M_UNKNOWN_TOKEN")
        # Its refresh token went with the device.
        self.assertMatrixError(await self.request("POST", f"{API}/auth/refresh",
                                                  {"refresh_token": body["refresh_token"]}), 401, "M_UNKNOWN_TOKEN")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/logout"), 401, "M_MISSING_TOKEN")
        self.assertMatrixError(await self.request("GET", f"{API}/users/@me"), 401, "M_MISSING_TOKEN")

    @inline
    async def test_bad_registrations_change_nothing(self):
        await self.api_register("frank")
        before = await self.user_count()
        cases = [
            ({"password": PASSWORD}, 400, "M_MISSING_PARAM"),
            ({"username": "gina"}, 400, "M_MISSING_PARAM"),
            ({"username": 7, "password": PASSWORD}, 400, "M_INVALID_PARAM"),
            ({"username": "gina", "password": ["x"]}, 400, "M_INVALID_PARAM"),
            ({"username": "gina", "password": PASSWORD, "display_name": 3}, 400, "M_INVALID_PARAM"),
            ({"username": "gina", "password": PASSWORD, "display_name": "x" * 33}, 400, "M_INVALID_PARAM"),
            ({"username": "gina", "password": PASSWORD, "email": "not-an-address"}, 400, "M_INVALID_PARAM"),
            ({"username": "g", "password": PASSWORD}, 400, "M_INVALID_PARAM"),
            ({"username": "g" * 33, "password": PASSWORD}, 400, "M_INVALID_PARAM"),
            ({"username": "Gina!", "password": PASSWORD}, 400, "M_INVALID_USERNAME"),
            ({"username": "gina", "password": "short"}, 400, "M_WEAK_PASSWORD"),
            ({"username": "frank", "password": PASSWORD}, 400, "M_USER_IN_USE"),
        ]
        for body, status, errcode in cases:
            self.assertMatrixError(await self.request("POST", f"{API}/auth/register", body), status, errcode)
        self.assertMatrixError(await self.request("POST", f"{API}/auth/register", raw=b"{not json"),
                               400, "M_NOT_JSON")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/register", raw=b""), 400, "M_NOT_JSON")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/register", ["a"]), 400, "M_BAD_JSON")
        self.assertEqual(await self.user_count(), before)
        self.assertFalse(await self.hs.users.user_exists("@gina:test.local"))

    @inline
    async def test_bad_logins(self):
        await self.api_register("hank")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/login",
                                                  {"username": "hank", "password": "wrong password"}),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/login",
                                                  {"username": "nobody", "password": PASSWORD}), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/login",
                                                  {"username": "@hank:elsewhere.org", "password": PASSWORD}),
                               403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/login", {"username": "hank"}),
                               400, "M_MISSING_PARAM")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/login",
                                                  {"username": "hank", "password": 12345678}), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/refresh", {}), 400, "M_MISSING_PARAM")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/refresh", {"refresh_token": "drt_nope"}),
                               401, "M_UNKNOWN_TOKEN")

    @inline
    async def test_unknown_route_and_wrong_method(self):
        self.assertMatrixError(await self.request("GET", f"{API}/no/such/route"), 404, "M_UNRECOGNIZED")
        self.assertMatrixError(await self.request("POST", f"{API}/users/@me"), 405, "M_UNRECOGNIZED")
        self.assertMatrixError(await self.request("GET", f"{API}/auth/login"), 405, "M_UNRECOGNIZED")

    @inline
    async def test_openapi_lists_every_route(self):
        status, document = await self.request("GET", f"{API}/openapi.json")
        self.assertEqual(status, 200)
        self.assertIsInstance(document, dict, document)
        self.assertTrue(document["openapi"].startswith("3.1"))
        self.assertIn("title", document["info"])
        bearer = document["components"]["securitySchemes"]["bearerAuth"]
        self.assertEqual((bearer["type"], bearer["scheme"]), ("http", "bearer"))
        # Every /api/v1 route the router serves, whoever added it, is in the document.
        served = set()
        for route in self.hs.router._routes:
            source = route.pattern.pattern
            if route.method != b"HEAD" and source.startswith("^/api/v1/"):
                path = re.sub(r"\(\?P<(\w+)>\[\^/\]\+\)", r"{\1}", source[len("^/api/v1"):-1])
                served.add((route.method.decode().lower(), path))
        documented = {(method, path) for path, item in document["paths"].items() for method in item}
        self.assertEqual(served, documented)
        for expected in [("post", "/auth/register"), ("post", "/auth/login"), ("post", "/auth/refresh"),
                         ("post", "/auth/logout"), ("get", "/users/@me"), ("get", "/openapi.json")]:
            self.assertIn(expected, documented)
        schemas = document["components"]["schemas"]
        for path, item in document["paths"].items():
            for method, operation in item.items():
                self.assertTrue(operation["summary"], (method, path))
                self.assertIn("responses", operation)
                self.assertIn(operation["security"], ([], [{"bearerAuth": []}]), (method, path))
        public = {("post", "/auth/register"), ("post", "/auth/login"), ("post", "/auth/refresh"),
                  ("get", "/openapi.json")}
        for method, path in public | {("post", "/auth/logout"), ("get", "/users/@me")}:
            self.assertEqual(document["paths"][path][method]["security"] == [],
                             (method, path) in public, (method, path))
        # Every reference resolves.
        for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(document)):
            self.assertIn(ref, schemas)
        self.assertEqual(document["paths"]["/auth/register"]["post"]["requestBody"]["content"]
                         ["application/json"]["schema"]["required"], ["username", "password"])


class ApiAuthRateLimitTests:
    config_overrides = {"limits": {"login_per_second": 0.001, "login_burst": 2}}

    @inline
    async def test_login_limit_shared_with_matrix_face(self):
        await self.register("ivy")
        self.assertEqual((await self.login("ivy"))[0], 200)
        status, body = await self.request("POST", f"{API}/auth/login", {"username": "ivy", "password": PASSWORD})
        self.assertEqual(status, 200, body)
        status, body = await self.request("POST", f"{API}/auth/login", {"username": "ivy", "password": PASSWORD})
        self.assertMatrixError((status, body), 429, "M_LIMIT_EXCEEDED")
        self.assertGreater(body["retry_after_ms"], 0)


class InviteCodeRegistrationTests:
    """A server invite code of this instance joins the new account to that server, and
    opens registration when it is otherwise closed (as the original's invite-only mode)."""
    config_overrides = {"auth": {"registration_enabled": False}}

    async def server_with_code(self, max_uses=1):
        _, session = await self.hs.accounts.register("owner", PASSWORD)  # an operator-made account
        token = session.access_token
        status, server = await self.request("POST", f"{API}/servers", {"name": "Club"}, token=token)
        self.assertEqual(status, 200, server)
        status, invite = await self.request("POST", f"{API}/servers/{server['id']}/invites",
                                            {"max_uses": max_uses}, token=token)
        self.assertEqual(status, 200, invite)
        return server, invite["code"]

    @inline
    async def test_invite_code_opens_registration_and_joins(self):
        server, code = await self.server_with_code()
        users = await self.hs.users.count_users()
        self.assertMatrixError(await self.request("POST", f"{API}/auth/register",
                                                  {"username": "newbie", "password": PASSWORD}), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("POST", f"{API}/auth/register",
                                                  {"username": "newbie", "password": PASSWORD,
                                                   "invite_code": "NOPENOPENOPE"}), 404, "M_NOT_FOUND")
        self.assertEqual(await self.hs.users.count_users(), users)

        status, body = await self.request("POST", f"{API}/auth/register",
                                          {"username": "newbie", "password": PASSWORD, "invite_code": code})
        self.assertEqual(status, 200, body)
        status, servers = await self.request("GET", f"{API}/users/@me/servers", token=body["access_token"])
        self.assertEqual((status, [s["id"] for s in servers]), (200, [server["id"]]))
        status, got = await self.request("GET", f"{API}/servers/{server['id']}", token=body["access_token"])
        self.assertEqual([c["name"] for c in got["channels"]], ["general"])

        # Used up: the next registration with it is refused and creates nothing.
        self.assertMatrixError(await self.request("POST", f"{API}/auth/register",
                                                  {"username": "second", "password": PASSWORD,
                                                   "invite_code": code}), 404, "M_NOT_FOUND")
        self.assertEqual(await self.hs.users.count_users(), users + 1)


class InviteCodeRegistrationSqliteTests(InviteCodeRegistrationTests, HomeserverTestCase):
    engine = "sqlite"


class InviteCodeRegistrationPostgresTests(InviteCodeRegistrationTests, HomeserverTestCase):
    engine = "postgres"


class ApiAuthSqliteTests(ApiAuthTests, HomeserverTestCase):
    engine = "sqlite"


class ApiAuthPostgresTests(ApiAuthTests, HomeserverTestCase):
    engine = "postgres"


class ApiAuthRateLimitSqliteTests(ApiAuthRateLimitTests, HomeserverTestCase):
    engine = "sqlite"


class ApiAuthRateLimitPostgresTests(ApiAuthRateLimitTests, HomeserverTestCase):
    engine = "postgres"

"""The web client as the homeserver serves it (static files, SPA routes, CSP, caching,
gzip, what it must not swallow), and the two API additions it relies on:
``GET /servers/{id}/permissions/@me`` and members' ``status``. SQLite only: storage is
covered by the API tests on both engines."""

from __future__ import annotations

import gzip
import http.client
import json

from twisted.internet import threads

from homeserver.drocsid import permissions as perms
from tests.support.api import API, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline


def header(headers, name: str) -> str | None:
    values = headers.getRawHeaders(name)
    return values[0].decode() if values and isinstance(values[0], bytes) else (values[0] if values else None)


def raw_get(port: int, path: str, headers: dict | None = None):
    """A GET with the path and headers sent byte for byte (treq and browsers normalise
    ``..`` away, and treq asks for gzip and decodes it itself). Returns (status, body, headers)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read(), response.headers
    finally:
        connection.close()


class WebClientHttpTests(HomeserverTestCase):
    engine = "sqlite"

    async def get(self, path: str, **headers):
        status, body = await self.request("GET", path, headers=headers or None)
        return status, body, self.client.last_headers

    def assertShell(self, status, body, headers, path):
        self.assertEqual(status, 200, (path, body))
        self.assertTrue(header(headers, "Content-Type").startswith("text/html"), path)
        self.assertIsInstance(body, bytes, path)
        self.assertIn(b'<script type="module" src="/js/main.js">', body, path)
        csp = header(headers, "Content-Security-Policy")
        self.assertIsNotNone(csp, path)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)
        directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in csp.split(";") if part.strip())
        self.assertEqual(directives.get("script-src"), "'self'", csp)
        self.assertEqual(directives.get("default-src"), "'self'", csp)

    @inline
    async def test_client_routes_answer_the_shell(self):
        for path in ("/", "/channels/@me", "/channels/%21abc%3Atest.local/%21def%3Atest.local",
                     "/invite/abc", "/login", "/login?next=/channels/@me", "/register", "/settings"):
            status, body, headers = await self.get(path)
            self.assertShell(status, body, headers, path)
        _, index, _ = await self.get("/index.html")
        _, root, _ = await self.get("/")
        self.assertEqual(index, root)

    @inline
    async def test_static_types(self):
        status, body, headers = await self.get("/js/main.js")
        self.assertEqual(status, 200)
        self.assertTrue(header(headers, "Content-Type").startswith("text/javascript"), header(headers, "Content-Type"))
        self.assertEqual(header(headers, "X-Content-Type-Options"), "nosniff")
        self.assertTrue(body)
        status, body, headers = await self.get("/sw.js")
        self.assertEqual(status, 200)
        self.assertTrue(header(headers, "Content-Type").startswith("text/javascript"))
        self.assertTrue(body)

    @inline
    async def test_manifest_and_icons(self):
        status, body, headers = await self.get("/manifest.webmanifest")
        self.assertEqual(status, 200, body)
        if isinstance(body, bytes):
            body = json.loads(body)
        self.assertEqual(body["name"], "Drocsid")
        self.assertTrue(body["start_url"].startswith("/"))
        self.assertEqual(body["display"], "standalone")
        sizes = {icon["sizes"]: icon["src"] for icon in body["icons"] if icon.get("type") == "image/png"}
        self.assertIn("192x192", sizes)
        self.assertIn("512x512", sizes)
        for size, src in sizes.items():
            status, png, headers = await self.get(src)
            self.assertEqual(status, 200, src)
            self.assertEqual(header(headers, "Content-Type"), "image/png", src)
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n", src)
            # IHDR width and height are the declared size.
            width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
            self.assertEqual(f"{width}x{height}", size, src)

    @inline
    async def test_etag_revalidation(self):
        for path in ("/", "/js/main.js"):
            status, body, headers = await self.get(path)
            self.assertEqual(status, 200)
            etag = header(headers, "ETag")
            self.assertTrue(etag and etag.startswith('"'), etag)
            status, body, headers = await self.get(path, **{"If-None-Match": etag})
            self.assertEqual(status, 304, path)
            self.assertFalse(body)
            status, body, headers = await self.get(path, **{"If-None-Match": '"something-else"'})
            self.assertEqual(status, 200, path)
            self.assertTrue(body)

    @inline
    async def test_gzip(self):
        port = self.hs.listening_port
        for path in ("/", "/js/main.js", "/manifest.webmanifest"):
            status, plain, headers = await threads.deferToThread(raw_get, port, path)
            self.assertEqual(status, 200)
            self.assertIsNone(headers.get("Content-Encoding"))
            self.assertEqual(int(headers["Content-Length"]), len(plain))
            status, zipped, headers = await threads.deferToThread(
                raw_get, port, path, {"Accept-Encoding": "gzip, deflate, br"})
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("Content-Encoding"), "gzip")
            self.assertIn("Accept-Encoding", headers.get("Vary") or "")
            self.assertNotEqual(zipped, plain)
            self.assertEqual(gzip.decompress(zipped), plain)

    @inline
    async def test_not_get_is_405(self):
        status, body = await self.request("POST", "/", raw=b"x")
        self.assertEqual(status, 405, body)
        status, body = await self.request("PUT", "/js/main.js", raw=b"x")
        self.assertEqual(status, 405, body)

    @inline
    async def test_unknown_files_and_traversal_are_404(self):
        status, _, _ = await self.get("/js/nope.js")
        self.assertEqual(status, 404)
        status, _, _ = await self.get("/icons/nope.png")
        self.assertEqual(status, 404)
        port = self.hs.listening_port
        # Files that do exist just outside static/: a server without the check would serve them.
        for path in ("/js/../../__init__.py", "/js/../../../config.py", "/icons/../../__init__.py",
                     "/js/%2e%2e/%2e%2e/__init__.py", "/js/..%2f..%2f__init__.py"):
            status, body, _ = await threads.deferToThread(raw_get, port, path)
            self.assertEqual(status, 404, (path, body[:200]))
            self.assertNotIn(b"import", body, path)

    @inline
    async def test_the_api_is_not_swallowed(self):
        status, body, headers = await self.get("/api/v1/openapi.json")
        self.assertEqual(status, 200)
        self.assertIsInstance(body, dict)
        self.assertIn("paths", body)
        self.assertIn("/servers/{server_id}/permissions/@me", body["paths"])
        status, body, headers = await self.get("/_matrix/client/versions")
        self.assertEqual(status, 200)
        self.assertIn("versions", body)
        self.assertTrue(header(headers, "Content-Type").startswith("application/json"))
        # An unknown API path is still the API's JSON 404, not the client's shell.
        self.assertMatrixError(await self.request("GET", "/api/v1/nothing-here"), 404, "M_UNRECOGNIZED")
        status, body = await self.request("GET", "/gateway")
        self.assertEqual(status, 426, body)


class WebClientDisabledTests(HomeserverTestCase):
    engine = "sqlite"
    config_overrides = {"web_client": {"enabled": False}}

    @inline
    async def test_root_is_the_api_404(self):
        for path in ("/", "/channels/@me", "/js/main.js", "/manifest.webmanifest"):
            self.assertMatrixError(await self.request("GET", path), 404, "M_UNRECOGNIZED")
        status, body = await self.request("GET", "/_matrix/client/versions")
        self.assertEqual(status, 200, body)


class PermissionsAndStatusTests(ApiHelpers, HomeserverTestCase):
    engine = "sqlite"

    def mine(self, space):
        return f"{API}/servers/{q(space)}/permissions/@me"

    @inline
    async def test_permissions_me(self):
        (alice, token), (bob, bob_token), space, general = await self.setup_server()
        send = int(perms.P.SEND_MESSAGES)
        view = int(perms.P.VIEW_CHANNEL)

        # The owner has every bit, server-wide and in the channel.
        owner = await self.ok("GET", self.mine(space), token=token)
        self.assertEqual(owner["server_id"], space)
        self.assertEqual(owner["permissions"], str(perms.ALL))
        self.assertEqual(owner["channels"], {general: str(perms.ALL)})

        # A plain member: @everyone's defaults, in the server and (channel bits only) in #general.
        member = await self.ok("GET", self.mine(space), token=bob_token)
        self.assertEqual(int(member["permissions"]), perms.DEFAULT_EVERYONE)
        self.assertEqual(list(member["channels"]), [general])
        self.assertTrue(int(member["channels"][general]) & send)

        # A role of bob's denied SEND_MESSAGES in #general: the channel bits lose it, the
        # server bits keep it, and the owner is unaffected.
        role = await self.ok("POST", f"{API}/servers/{q(space)}/roles", {"name": "Muted"}, token=token)
        await self.ok("PUT", f"{API}/servers/{q(space)}/members/{q(bob)}/roles/{role['id']}", token=token)
        await self.ok("PUT", f"{API}/channels/{q(general)}/overwrites/role/{role['id']}", {"deny": str(send)},
                      token=token)
        member = await self.ok("GET", self.mine(space), token=bob_token)
        bits = int(member["channels"][general])
        self.assertFalse(bits & send, bits)
        self.assertTrue(bits & view, bits)
        self.assertTrue(int(member["permissions"]) & send)
        # ... and the server agrees: bob cannot send there.
        status, body = await self.request("POST", f"{API}/channels/{q(general)}/messages", {"content": "hi"},
                                          token=bob_token)
        self.assertEqual(status, 403, body)
        owner = await self.ok("GET", self.mine(space), token=token)
        self.assertEqual(owner["channels"][general], str(perms.ALL))

        # A private channel: listed for the owner, absent for bob.
        secret = await self.ok("POST", f"{API}/servers/{q(space)}/channels", {"name": "secret", "private": True},
                               token=token)
        owner = await self.ok("GET", self.mine(space), token=token)
        self.assertEqual(set(owner["channels"]), {general, secret["id"]})
        member = await self.ok("GET", self.mine(space), token=bob_token)
        self.assertEqual(set(member["channels"]), {general})

        # Not a member: 403 (member_server); not a server at all: 404.
        carol, carol_token = await self.user("carol")
        self.assertMatrixError(await self.request("GET", self.mine(space), token=carol_token), 403, "M_FORBIDDEN")
        self.assertMatrixError(await self.request("GET", self.mine("!nope:test.local"), token=carol_token),
                               404, "M_NOT_FOUND")
        status, body = await self.request("GET", self.mine(space))
        self.assertEqual(status, 401, body)

    @inline
    async def test_member_status(self):
        (alice, token), (bob, bob_token), space, general = await self.setup_server()

        async def statuses():
            members = await self.ok("GET", f"{API}/servers/{q(space)}/members", token=token)
            return {m["user_id"]: (m["status"], m["custom_status"]) for m in members}

        await self.ok("PATCH", f"{API}/users/@me", {"status": "online"}, token=token)
        await self.ok("PATCH", f"{API}/users/@me", {"status": "dnd", "custom_status": "busy"}, token=bob_token)
        got = await statuses()
        self.assertEqual(got[bob], ("dnd", "busy"))
        self.assertEqual(got[alice][0], "online")

        await self.ok("PATCH", f"{API}/users/@me", {"status": "idle"}, token=bob_token)
        self.assertEqual((await statuses())[bob][0], "idle")

        # Invisible: others see offline; bob's own user object keeps knowing the truth.
        me = await self.ok("PATCH", f"{API}/users/@me", {"status": "invisible"}, token=bob_token)
        self.assertEqual((await statuses())[bob][0], "offline")
        one = await self.ok("GET", f"{API}/servers/{q(space)}/members/{q(bob)}", token=token)
        self.assertEqual(one["status"], "offline")
        self.assertIn(me["status"], ("offline", "invisible"))

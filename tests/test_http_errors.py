"""Bad input over real HTTP: each gets the right Matrix error, and nothing is stored."""

from __future__ import annotations

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientCreator, Protocol

from tests.support.server import HomeserverTestCase, inline

V3 = "/_matrix/client/v3"


class RawHttp(Protocol):
    """Sends bytes as they are and collects the whole answer (for bodies treq will not send)."""

    def __init__(self):
        self.received = b""
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.done.callback(self.received)


class HttpErrorTests:
    async def users_count(self) -> int:
        return await self.hs.users.count_users()

    @inline
    async def test_malformed_json(self):
        for raw in (b"{not json", b"\xff\xfe", b'{"a": NaN}', b"   "):
            self.assertMatrixError(await self.request("POST", f"{V3}/register", raw=raw), 400, "M_NOT_JSON")
        self.assertMatrixError(await self.request("POST", f"{V3}/register", raw=b"[1, 2]"), 400, "M_BAD_JSON")
        self.assertMatrixError(await self.request("POST", f"{V3}/login", raw=b'"text"'), 400, "M_BAD_JSON")
        self.assertEqual(await self.users_count(), 0)

    @inline
    async def test_wrong_types(self):
        cases = [
            {"username": 5, "password": "correct horse battery", "auth": {"type": "m.login.dummy"}},
            {"username": "ann", "password": ["x"], "auth": {"type": "m.login.dummy"}},
            {"username": "ann", "password": "correct horse battery", "inhibit_login": "yes",
             "auth": {"type": "m.login.dummy"}},
            {"username": "ann", "password": "correct horse battery", "auth": "dummy"},
        ]
        for body in cases:
            self.assertMatrixError(await self.request("POST", f"{V3}/register", body), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.request("POST", f"{V3}/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": 7}, "password": "x"}),
            400, "M_INVALID_PARAM")
        self.assertEqual(await self.users_count(), 0)

    @inline
    async def test_missing_fields(self):
        self.assertMatrixError(await self.request("POST", f"{V3}/register", {
            "username": "ann", "auth": {"type": "m.login.dummy"}}), 400, "M_MISSING_PARAM")
        self.assertMatrixError(await self.request("POST", f"{V3}/register", {
            "password": "correct horse battery", "auth": {"type": "m.login.dummy"}}), 400, "M_MISSING_PARAM")
        self.assertMatrixError(await self.request("POST", f"{V3}/login", {"type": "m.login.password",
                                                                          "password": "x"}), 400, "M_MISSING_PARAM")
        self.assertMatrixError(await self.request("POST", f"{V3}/login", {"user": "ann", "password": "x"}),
                               400, "M_MISSING_PARAM")
        self.assertMatrixError(await self.request("GET", f"{V3}/register/available"), 400, "M_MISSING_PARAM")
        self.assertEqual(await self.users_count(), 0)

    @inline
    async def test_unknown_path_and_wrong_method(self):
        self.assertMatrixError(await self.request("GET", "/_matrix/client/v3/no/such/thing"), 404, "M_UNRECOGNIZED")
        # "/" is the web client now (tests/test_web_client_http.py); other unknown paths are not.
        self.assertMatrixError(await self.request("GET", "/no/such/thing"), 404, "M_UNRECOGNIZED")
        self.assertMatrixError(await self.request("DELETE", "/_matrix/client/versions"), 405, "M_UNRECOGNIZED")
        self.assertMatrixError(await self.request("GET", f"{V3}/register"), 405, "M_UNRECOGNIZED")

    @inline
    async def test_cors_headers_and_options(self):
        status, body = await self.request("OPTIONS", f"{V3}/login")
        self.assertEqual(status, 204)
        headers = self.client.last_headers
        self.assertEqual(headers.getRawHeaders("Access-Control-Allow-Origin"), ["*"])
        self.assertIn("Authorization", headers.getRawHeaders("Access-Control-Allow-Headers")[0])
        self.assertIn("PUT", headers.getRawHeaders("Access-Control-Allow-Methods")[0])
        # Errors carry them too, so browsers can read the error.
        await self.request("GET", "/nowhere")
        self.assertEqual(self.client.last_headers.getRawHeaders("Access-Control-Allow-Origin"), ["*"])

    @inline
    async def test_oversized_body_with_length_is_refused(self):
        limit = self.hs.config.limits.max_request_body_bytes
        body = b'{"username": "big", "password": "' + b"x" * (limit + 10) + b'"}'
        result = await self.request("POST", f"{V3}/register", raw=body)
        self.assertMatrixError(result, 413, "M_TOO_LARGE")
        self.assertEqual(await self.users_count(), 0)
        # The connection is still usable for the next request.
        status, _ = await self.request("GET", "/_matrix/client/versions")
        self.assertEqual(status, 200)

    @inline
    async def test_oversized_chunked_body_is_refused(self):
        limit = self.hs.config.limits.max_request_body_bytes
        chunk = b"x" * 65536
        pieces = []
        for _ in range(limit // len(chunk) + 2):
            pieces.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        request = (b"POST /_matrix/client/v3/register HTTP/1.1\r\nHost: localhost\r\n"
                   b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                   + b"".join(pieces) + b"0\r\n\r\n")
        proto = await ClientCreator(reactor, RawHttp).connectTCP("127.0.0.1", self.hs.listening_port)
        proto.transport.write(request)
        answer = await proto.done
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:200])
        self.assertIn(b'"errcode":"M_TOO_LARGE"', answer)

    @inline
    async def test_body_just_under_the_limit_is_read(self):
        limit = self.hs.config.limits.max_request_body_bytes
        padding = "y" * (limit - 200)
        status, body = await self.request("POST", f"{V3}/login", {"type": "m.login.password", "user": "zed",
                                                                  "password": "wrong", "pad": padding})
        self.assertEqual((status, body["errcode"]), (403, "M_FORBIDDEN"))


class RateLimitTests:
    config_overrides = {"limits": {"login_per_second": 0.01, "login_burst": 3,
                                   "register_per_second": 0.01, "register_burst": 2}}

    @inline
    async def test_login_is_rate_limited_per_address(self):
        results = [await self.login("nobody", "wrong password") for _ in range(4)]
        self.assertEqual([r[0] for r in results[:3]], [403, 403, 403])
        self.assertMatrixError(results[3], 429, "M_LIMIT_EXCEEDED")
        self.assertGreater(results[3][1]["retry_after_ms"], 0)
        self.assertIsNotNone(self.client.last_headers.getRawHeaders("Retry-After"))

    @inline
    async def test_registration_is_rate_limited(self):
        await self.register("one")
        await self.register("two")
        result = await self.request("POST", f"{V3}/register", {
            "username": "three", "password": "correct horse battery", "auth": {"type": "m.login.dummy"}})
        self.assertMatrixError(result, 429, "M_LIMIT_EXCEEDED")
        self.assertFalse(await self.hs.users.user_exists("@three:test.local"))


class FailedLoginLimitTests:
    config_overrides = {"limits": {"login_failures_per_second": 0.01, "login_failures_burst": 2}}

    @inline
    async def test_failed_logins_are_limited_per_account(self):
        await self.register("victim")
        for _ in range(2):
            self.assertMatrixError(await self.login("victim", "guess"), 403, "M_FORBIDDEN")
        # Even the right password waits now: guessing cannot continue from elsewhere.
        self.assertMatrixError(await self.login("victim"), 429, "M_LIMIT_EXCEEDED")
        # Another account is unaffected.
        await self.register("bystander")
        status, _ = await self.login("bystander")
        self.assertEqual(status, 200)


class HttpErrorSqliteTests(HttpErrorTests, HomeserverTestCase):
    engine = "sqlite"


class HttpErrorPostgresTests(HttpErrorTests, HomeserverTestCase):
    engine = "postgres"


class RateLimitSqliteTests(RateLimitTests, HomeserverTestCase):
    pass


class FailedLoginLimitSqliteTests(FailedLoginLimitTests, HomeserverTestCase):
    pass

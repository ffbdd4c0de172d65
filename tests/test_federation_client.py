"""The federation client against real TLS listeners on loopback: X-Matrix signing,
Host headers, raw URIs, JSON bodies, error mapping, certificate checks, the IP deny
list and timeouts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from types import SimpleNamespace

from signedjson.key import generate_signing_key, get_verify_key
from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest
from twisted.web import server
from twisted.web.resource import Resource

from federation.client import (DestinationDenied, FederationClient, FederationHttpError, FederationUnreachable,
                               encode_query)
from federation.request_auth import parse_authorization, verify_request
from homeserver.clock import Clock
from homeserver.config import SCHEMA
from tests.support.server import inline
from tests.test_federation_discovery import SilentTcpServer, TlsTestServer

DEFAULT_DENY = SCHEMA["federation"]["ip_range_denylist"].default
ORIGIN = "origin.test"


@dataclass
class Seen:
    method: str
    uri: str
    headers: dict[str, list[str]]
    body: bytes


class Recorder(Resource):
    """Records each request and answers what ``answers`` says for its path."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.seen: list[Seen] = []
        self.answers: dict[bytes, tuple[int, bytes, bytes]] = {}

    def answer(self, path: str, status: int, body, content_type: bytes = b"application/json") -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.answers[path.encode()] = (status, payload, content_type)

    def render(self, request):
        request.content.seek(0)
        self.seen.append(Seen(request.method.decode(), request.uri.decode(),
                              {name.decode().lower(): [v.decode() for v in values]
                               for name, values in request.requestHeaders.getAllRawHeaders()},
                              request.content.read()))
        if request.path == b"/hang":
            return server.NOT_DONE_YET
        status, payload, content_type = self.answers.get(request.path, (200, b'{"ok": true}', b"application/json"))
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", content_type)
        return payload


class FederationClientTests(unittest.TestCase):
    def setUp(self):
        self.signing_key = generate_signing_key("k1")
        self.recorder = Recorder()
        self.listener = TlsTestServer(self, self.recorder)
        self.destination = f"127.0.0.1:{self.listener.port}"

    def make_client(self, **overrides) -> FederationClient:
        settings = {"verify_certificates": True, "insecure_destinations": [self.destination],
                    "ip_range_denylist": DEFAULT_DENY, "ip_range_allowlist": ["127.0.0.1/32"]}
        settings.update(overrides)
        # Only the four documented attributes: the client must need nothing else.
        client = FederationClient(reactor, Clock(reactor), ORIGIN, self.signing_key, SimpleNamespace(**settings))
        self.addCleanup(lambda: defer.ensureDeferred(client.close()))
        return client

    def assert_signed(self, seen: Seen, content=None, destination: str | None = None) -> None:
        (authorization,) = seen.headers["authorization"]
        header = parse_authorization(authorization)
        self.assertEqual((header.origin, header.destination, header.key),
                         (ORIGIN, destination or self.destination, "ed25519:k1"))
        # The server checks the signature over the URI exactly as it arrived.
        verify_request(header, seen.method, seen.uri, destination or self.destination,
                       get_verify_key(self.signing_key), content)

    # -- requests -------------------------------------------------------------------------

    @inline
    async def test_get_is_signed_over_the_raw_uri(self):
        client = self.make_client()
        path = "/_matrix/federation/v1/event/%24abc%3Aexample.org"
        result = await client.get_json(self.destination, path,
                                       query=[("ver", "10"), ("ver", "11"), ("q", "a b&c/é")])
        self.assertEqual(result, {"ok": True})
        (seen,) = self.recorder.seen
        self.assertEqual(seen.method, "GET")
        self.assertEqual(seen.uri, path + "?ver=10&ver=11&q=a%20b%26c%2F%C3%A9")
        self.assertEqual(seen.headers["host"], [self.destination])
        self.assertNotIn("content-type", seen.headers)
        self.assertEqual(seen.body, b"")
        self.assert_signed(seen)

    @inline
    async def test_dict_queries_repeat_list_values(self):
        client = self.make_client()
        await client.get_json(self.destination, "/_matrix/federation/v1/make_join/%21r%3Ax/%40u%3Ay",
                              query={"ver": ["10", "11"], "limit": 5, "flag": True})
        (seen,) = self.recorder.seen
        self.assertEqual(seen.uri, "/_matrix/federation/v1/make_join/%21r%3Ax/%40u%3Ay?ver=10&ver=11&limit=5&flag=true")
        self.assert_signed(seen)

    @inline
    async def test_put_and_post_send_signed_json(self):
        client = self.make_client()
        body = {"origin": ORIGIN, "pdus": [], "edus": [{"content": {"é": "ü"}}]}
        await client.put_json(self.destination, "/_matrix/federation/v1/send/txn%201", body)
        await client.post_json(self.destination, "/_matrix/federation/v1/user/keys/query")
        put, post = self.recorder.seen
        self.assertEqual((put.method, put.uri), ("PUT", "/_matrix/federation/v1/send/txn%201"))
        self.assertEqual(json.loads(put.body), body)
        self.assertEqual(put.headers["content-type"], ["application/json"])
        self.assert_signed(put, body)
        self.assertEqual((post.method, json.loads(post.body)), ("POST", {}))
        self.assert_signed(post, {})

    @inline
    async def test_error_statuses_become_federation_http_errors(self):
        client = self.make_client()
        self.recorder.answer("/missing", 404, {"errcode": "M_NOT_FOUND", "error": "no such event"})
        self.recorder.answer("/gateway", 502, b"<html>bad gateway</html>", b"text/html")
        with self.assertRaises(FederationHttpError) as raised:
            await client.get_json(self.destination, "/missing")
        error = raised.exception
        self.assertEqual((error.status, error.errcode, error.message), (404, "M_NOT_FOUND", "no such event"))
        self.assertEqual(error.body, {"errcode": "M_NOT_FOUND", "error": "no such event"})
        with self.assertRaises(FederationHttpError) as raised:
            await client.put_json(self.destination, "/gateway", {"a": 1})
        self.assertEqual((raised.exception.status, raised.exception.errcode, raised.exception.body),
                         (502, None, {}))
        self.assertIn("bad gateway", raised.exception.message)

    @inline
    async def test_answers_that_are_not_json_objects_are_unusable(self):
        client = self.make_client()
        self.recorder.answer("/text", 200, b"hello", b"text/plain")
        self.recorder.answer("/list", 200, [200, {}])
        for path in ("/text", "/list"):
            with self.assertRaises(FederationUnreachable):
                await client.get_json(self.destination, path)

    @inline
    async def test_get_bytes_returns_headers_and_body_within_a_limit(self):
        client = self.make_client()
        blob = bytes(range(256)) * 40
        self.recorder.answer("/_matrix/federation/v1/media/download/abc", 200, blob, b"multipart/mixed; boundary=x")
        headers, body = await client.get_bytes(self.destination, "/_matrix/federation/v1/media/download/abc")
        self.assertEqual(body, blob)
        self.assertEqual(headers["content-type"], "multipart/mixed; boundary=x")
        self.assert_signed(self.recorder.seen[0])
        with self.assertRaises(FederationUnreachable) as raised:
            await client.get_bytes(self.destination, "/_matrix/federation/v1/media/download/abc", max_bytes=1000)
        self.assertIn("larger than 1000 bytes", raised.exception.reason)

    @inline
    async def test_connections_are_reused(self):
        client = self.make_client()
        for _ in range(3):
            await client.get_json(self.destination, "/_matrix/federation/v1/version")
        self.assertEqual(self.listener.connections.accepted, 1)

    # -- TLS ------------------------------------------------------------------------------

    @inline
    async def test_self_signed_certificate_is_refused_when_verifying(self):
        for insecure in ([], ["other.example"]):
            client = self.make_client(insecure_destinations=insecure)
            with self.assertRaises(FederationUnreachable) as raised:
                await client.get_json(self.destination, "/_matrix/federation/v1/version")
            self.assertNotIsInstance(raised.exception, DestinationDenied)
            self.assertIn("TLS", raised.exception.reason)
        self.assertEqual(self.recorder.seen, [])

    @inline
    async def test_unchecked_certificates_when_configured(self):
        for overrides in ({"insecure_destinations": ["*"]},
                          {"verify_certificates": False, "insecure_destinations": []}):
            client = self.make_client(**overrides)
            self.assertEqual(await client.get_json(self.destination, "/x"), {"ok": True})
        self.assertEqual(len(self.recorder.seen), 2)

    # -- the deny list --------------------------------------------------------------------

    @inline
    async def test_loopback_is_denied_by_default(self):
        client = self.make_client(ip_range_allowlist=[])
        with self.assertRaises(DestinationDenied):
            await client.get_json(self.destination, "/x")
        self.assertEqual(self.listener.connections.accepted, 0)

    @inline
    async def test_the_deny_list_applies_after_dns(self):
        destination = f"localhost:{self.listener.port}"
        denied = self.make_client(ip_range_allowlist=[], insecure_destinations=[destination])
        with self.assertRaises(DestinationDenied):
            await denied.get_json(destination, "/x")
        self.assertEqual(self.listener.connections.accepted, 0)
        allowed = self.make_client(insecure_destinations=[destination])
        self.assertEqual(await allowed.get_json(destination, "/x"), {"ok": True})
        (seen,) = self.recorder.seen
        self.assertEqual(seen.headers["host"], [destination])
        self.assert_signed(seen, destination=destination)

    @inline
    async def test_well_known_lookups_connect_like_the_client(self):
        well_known = Recorder()
        well_known.answer("/.well-known/matrix/server", 200, {"m.server": "matrix.localhost:4444"})
        listener = TlsTestServer(self, well_known, cert_name="localhost")
        url = f"https://localhost:{listener.port}/.well-known/matrix/server"
        answer = await self.make_client(insecure_destinations=["localhost"]).well_known_fetcher()(url)
        self.assertEqual(json.loads(answer.body), {"m.server": "matrix.localhost:4444"})
        self.assertNotIn("authorization", well_known.seen[0].headers)
        with self.assertRaises(DestinationDenied):
            await self.make_client(ip_range_allowlist=[], insecure_destinations=["localhost"]) \
                .well_known_fetcher()(url)
        with self.assertRaises(Exception) as raised:
            await self.make_client(insecure_destinations=[]).well_known_fetcher()(url)
        self.assertIn("certificate verify failed", str(raised.exception))
        self.assertEqual(len(well_known.seen), 1)

    # -- failures -------------------------------------------------------------------------

    @inline
    async def test_a_server_that_never_answers_times_out(self):
        silent = SilentTcpServer(self)
        client = self.make_client(insecure_destinations=["*"])
        started = time.monotonic()
        with self.assertRaises(FederationUnreachable) as raised:
            await client.get_json(f"127.0.0.1:{silent.port}", "/x", timeout=0.5)
        self.assertLess(time.monotonic() - started, 1.5)
        self.assertIn("no response within 0.5s", raised.exception.reason)
        self.assertEqual(silent.connections.accepted, 1)

    @inline
    async def test_a_request_left_hanging_times_out(self):
        client = self.make_client()
        with self.assertRaises(FederationUnreachable) as raised:
            await client.get_json(self.destination, "/hang", timeout=0.3)
        self.assertIn("no response", raised.exception.reason)

    @inline
    async def test_connection_refused_and_invalid_names(self):
        closed = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")
        port = closed.getHost().port
        await closed.stopListening()
        client = self.make_client(insecure_destinations=["*"])
        with self.assertRaises(FederationUnreachable) as raised:
            await client.get_json(f"127.0.0.1:{port}", "/x")
        self.assertNotIsInstance(raised.exception, DestinationDenied)
        with self.assertRaises(FederationUnreachable):
            await client.get_json("not a server name", "/x")

    @inline
    async def test_logs_never_carry_the_authorization_header(self):
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        client = self.make_client()
        self.recorder.answer("/missing", 404, {"errcode": "M_NOT_FOUND", "error": "gone"})
        await client.get_json(self.destination, "/ok")
        with self.assertRaises(FederationHttpError):
            await client.get_json(self.destination, "/missing")
        with self.assertRaises(FederationUnreachable):
            await client.get_json(self.destination, "/hang", timeout=0.2)
        signatures = [parse_authorization(s.headers["authorization"][0]).sig for s in self.recorder.seen]
        ours = [e for e in events if e.get("log_namespace", "").startswith("drocsid.federation")]
        self.assertTrue(ours)
        for event in ours:
            text = formatEvent(event) + repr(event)
            self.assertNotIn("X-Matrix", text)
            for signature in signatures:
                self.assertNotIn(signature, text)


class QueryEncodingTests(unittest.TestCase):
    def test_encoding(self):
        self.assertEqual(encode_query(None), "")
        self.assertEqual(encode_query({}), "")
        self.assertEqual(encode_query([("a", "1"), ("a", "2")]), "a=1&a=2")
        self.assertEqual(encode_query({"event_id": "$ev:example.org", "x": False}),
                         "event_id=%24ev%3Aexample.org&x=false")

"""Server discovery: the server name grammar, the resolution order with injected
well-known and SRV answers, caching on a fake clock, and the default HTTPS well-known
fetcher against a real TLS listener."""

from __future__ import annotations

import json
from pathlib import Path

from twisted.internet import defer, reactor, ssl, task
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.policies import WrappingFactory
from twisted.trial import unittest
from twisted.web import server
from twisted.web.iweb import IPolicyForHTTPS
from twisted.web.resource import Resource
from zope.interface import implementer

from federation.discovery import (BodyTooLarge, ResolvedServer, ServerResolver, SrvRecord, WellKnownError,
                                  WellKnownResponse, HttpsWellKnownFetcher, parse_server_name)
from federation.tls import make_self_signed
from homeserver.clock import Clock
from tests.support.server import inline


# -- real listeners (shared with the federation client tests) -----------------------------

class ConnectionTracker(WrappingFactory):
    """Knows every accepted connection, so a test can close them all and wait."""

    def __init__(self, wrapped_factory):
        super().__init__(wrapped_factory)
        self.accepted = 0
        self._all_closed: list[defer.Deferred] = []

    def registerProtocol(self, protocol) -> None:
        super().registerProtocol(protocol)
        self.accepted += 1

    def unregisterProtocol(self, protocol) -> None:
        super().unregisterProtocol(protocol)
        if not self.protocols:
            waiters, self._all_closed = self._all_closed, []
            for waiter in waiters:
                waiter.callback(None)

    async def close_all(self) -> None:
        if not self.protocols:
            return
        waiter: defer.Deferred = defer.Deferred()
        self._all_closed.append(waiter)
        for protocol in list(self.protocols):
            protocol.transport.abortConnection()
        await waiter


class TlsTestServer:
    """``resource`` on a real TLS listener (127.0.0.1, port 0) with a fresh self-signed
    certificate for ``cert_name``; stopped, connections and all, at the test's cleanup."""

    def __init__(self, testcase: unittest.TestCase, resource: Resource, cert_name: str = "127.0.0.1"):
        directory = Path(testcase.mktemp())
        make_self_signed(directory / "tls.crt", directory / "tls.key", cert_name)
        self.cert_pem = (directory / "tls.crt").read_bytes()
        key_pem = (directory / "tls.key").read_bytes()
        certificate = ssl.PrivateCertificate.loadPEM(key_pem + b"\n" + self.cert_pem)
        site = server.Site(resource)
        site.noisy = False
        self.connections = ConnectionTracker(site)
        self._listener = reactor.listenSSL(0, self.connections, certificate.options(), interface="127.0.0.1")
        self.port: int = self._listener.getHost().port
        testcase.addCleanup(lambda: defer.ensureDeferred(self.stop()))

    async def stop(self) -> None:
        await self._listener.stopListening()
        await self.connections.close_all()


class SilentTcpServer:
    """Accepts TCP connections and never says a word (not even a TLS handshake)."""

    def __init__(self, testcase: unittest.TestCase):
        self.connections = ConnectionTracker(Factory.forProtocol(Protocol))
        self._listener = reactor.listenTCP(0, self.connections, interface="127.0.0.1")
        self.port: int = self._listener.getHost().port
        testcase.addCleanup(lambda: defer.ensureDeferred(self.stop()))

    async def stop(self) -> None:
        await self._listener.stopListening()
        await self.connections.close_all()


@implementer(IPolicyForHTTPS)
class TrustOnly:
    """Checks certificates (name included) against one self-signed certificate."""

    def __init__(self, cert_pem: bytes):
        self._root = ssl.Certificate.loadPEM(cert_pem)

    def creatorForNetloc(self, hostname: bytes, port: int):
        return ssl.optionsForClientTLS(hostname.decode("ascii"), trustRoot=self._root)


# -- fakes for the injected lookups -------------------------------------------------------

class FakeWellKnown:
    def __init__(self):
        self.answers: dict[str, WellKnownResponse | Exception] = {}
        self.calls: list[str] = []

    def serve(self, host: str, document, cache_control: str | None = None) -> None:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.answers[f"https://{host}/.well-known/matrix/server"] = WellKnownResponse(body, cache_control)

    async def __call__(self, url: str) -> WellKnownResponse:
        self.calls.append(url)
        answer = self.answers.get(url, WellKnownError(f"{url}: 404"))
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeSrv:
    def __init__(self):
        self.records: dict[str, list[SrvRecord] | Exception] = {}
        self.calls: list[str] = []

    async def __call__(self, name: str) -> list[SrvRecord]:
        self.calls.append(name)
        answer = self.records.get(name, [])
        if isinstance(answer, Exception):
            raise answer
        return answer


class ServerNameGrammarTests(unittest.TestCase):
    def test_valid_names(self):
        for name, expected in [
            ("example.org", ("example.org", None)),
            ("example.org:8448", ("example.org", 8448)),
            ("matrix-1.Example.ORG:1", ("matrix-1.Example.ORG", 1)),
            ("localhost:65535", ("localhost", 65535)),
            ("1.2.3.4", ("1.2.3.4", None)),
            ("1.2.3.4:443", ("1.2.3.4", 443)),
            ("[::1]", ("[::1]", None)),
            ("[2001:db8::1]:8448", ("[2001:db8::1]", 8448)),
            ("[::ffff:1.2.3.4]", ("[::ffff:1.2.3.4]", None)),
            ("example.org:08448", ("example.org", 8448)),
        ]:
            self.assertEqual(parse_server_name(name), expected, name)

    def test_invalid_names(self):
        for name in ["", "example.org:", "example.org:0", "example.org:65536", "example.org:123456",
                     "example.org:+80", "example.org:８０", "example.org:80:90", "exa mple.org",
                     "example_org", "exämple.org", "example.org\n", "example.org:80\n", "::1", "[::1",
                     "[::1]x", "[::1]:", "[::1]:0", "[not-ipv6]", "[1.2.3.4]", "[fe80::1%eth0]",
                     "a" * 256, "@example.org", "example.org/path"]:
            with self.assertRaises(ValueError, msg=repr(name)):
                parse_server_name(name)

    def test_non_strings_are_refused(self):
        with self.assertRaises(ValueError):
            parse_server_name(None)  # type: ignore[arg-type]


class ResolutionOrderTests(unittest.TestCase):
    def setUp(self):
        self.time = task.Clock()
        self.well_known = FakeWellKnown()
        self.srv = FakeSrv()
        self.resolver = ServerResolver(reactor, Clock(self.time), fetch_well_known=self.well_known,
                                       lookup_srv=self.srv)

    @inline
    async def test_ip_literals_are_used_directly(self):
        self.assertEqual(await self.resolver.resolve("1.2.3.4"),
                         ResolvedServer("1.2.3.4", 8448, "1.2.3.4", None))
        self.assertEqual(await self.resolver.resolve("1.2.3.4:9000"),
                         ResolvedServer("1.2.3.4", 9000, "1.2.3.4:9000", None))
        self.assertEqual(await self.resolver.resolve("[2001:db8::1]"),
                         ResolvedServer("2001:db8::1", 8448, "[2001:db8::1]", None))
        self.assertEqual(await self.resolver.resolve("[::1]:8449"),
                         ResolvedServer("::1", 8449, "[::1]:8449", None))
        self.assertEqual((self.well_known.calls, self.srv.calls), ([], []))

    @inline
    async def test_explicit_port_skips_well_known_and_srv(self):
        self.well_known.serve("example.org", {"m.server": "elsewhere.org"})
        self.assertEqual(await self.resolver.resolve("example.org:8000"),
                         ResolvedServer("example.org", 8000, "example.org:8000", "example.org"))
        self.assertEqual((self.well_known.calls, self.srv.calls), ([], []))

    @inline
    async def test_well_known_with_port(self):
        self.well_known.serve("example.org", {"m.server": "matrix.example.org:8443"})
        self.srv.records["_matrix-fed._tcp.matrix.example.org"] = [SrvRecord(1, 1, "ignored.example", 1)]
        self.assertEqual(await self.resolver.resolve("example.org"),
                         ResolvedServer("matrix.example.org", 8443, "matrix.example.org:8443",
                                        "matrix.example.org"))
        self.assertEqual(self.well_known.calls, ["https://example.org/.well-known/matrix/server"])
        self.assertEqual(self.srv.calls, [])

    @inline
    async def test_well_known_ip_literal(self):
        self.well_known.serve("example.org", {"m.server": "[2001:db8::5]"})
        self.assertEqual(await self.resolver.resolve("example.org"),
                         ResolvedServer("2001:db8::5", 8448, "[2001:db8::5]", None))
        self.well_known.serve("other.org", {"m.server": "5.6.7.8:1234"})
        self.assertEqual(await self.resolver.resolve("other.org"),
                         ResolvedServer("5.6.7.8", 1234, "5.6.7.8:1234", None))
        self.assertEqual(self.srv.calls, [])

    @inline
    async def test_well_known_without_port_uses_srv_of_delegated_name(self):
        self.well_known.serve("example.org", {"m.server": "matrix.example.org"})
        self.srv.records["_matrix-fed._tcp.matrix.example.org"] = [SrvRecord(10, 5, "host1.example.net.", 4443)]
        self.assertEqual(await self.resolver.resolve("example.org"),
                         ResolvedServer("host1.example.net", 4443, "matrix.example.org", "matrix.example.org"))
        self.assertEqual(self.srv.calls, ["_matrix-fed._tcp.matrix.example.org"])

    @inline
    async def test_deprecated_srv_then_8448_after_delegation(self):
        self.well_known.serve("example.org", {"m.server": "matrix.example.org"})
        self.srv.records["_matrix._tcp.matrix.example.org"] = [SrvRecord(0, 0, "legacy.example.net", 8009)]
        self.assertEqual(await self.resolver.resolve("example.org"),
                         ResolvedServer("legacy.example.net", 8009, "matrix.example.org", "matrix.example.org"))
        self.assertEqual(self.srv.calls, ["_matrix-fed._tcp.matrix.example.org", "_matrix._tcp.matrix.example.org"])

        self.well_known.serve("plain.org", {"m.server": "m.plain.org"})
        self.assertEqual(await self.resolver.resolve("plain.org"),
                         ResolvedServer("m.plain.org", 8448, "m.plain.org", "m.plain.org"))

    @inline
    async def test_without_well_known_srv_of_the_server_name_then_8448(self):
        self.srv.records["_matrix-fed._tcp.example.org"] = [SrvRecord(5, 0, "fed.example.org", 9448)]
        self.assertEqual(await self.resolver.resolve("example.org"),
                         ResolvedServer("fed.example.org", 9448, "example.org", "example.org"))
        self.srv.records["_matrix._tcp.old.org"] = [SrvRecord(5, 0, "legacy.old.org", 9449)]
        self.assertEqual(await self.resolver.resolve("old.org"),
                         ResolvedServer("legacy.old.org", 9449, "old.org", "old.org"))
        self.assertEqual(await self.resolver.resolve("bare.org"),
                         ResolvedServer("bare.org", 8448, "bare.org", "bare.org"))
        self.assertEqual(self.srv.calls, ["_matrix-fed._tcp.example.org", "_matrix-fed._tcp.old.org",
                                          "_matrix._tcp.old.org", "_matrix-fed._tcp.bare.org",
                                          "_matrix._tcp.bare.org"])

    @inline
    async def test_srv_choice_and_failures(self):
        self.srv.records["_matrix-fed._tcp.example.org"] = [
            SrvRecord(20, 100, "backup.example.org", 1), SrvRecord(10, 1, "light.example.org", 2),
            SrvRecord(10, 50, "heavy.example.org", 3)]
        self.assertEqual((await self.resolver.resolve("example.org")).host, "heavy.example.org")
        # "." means "no service here"; a failed lookup counts as no records.
        self.srv.records["_matrix-fed._tcp.dot.org"] = [SrvRecord(0, 0, ".", 8448)]
        self.srv.records["_matrix._tcp.dot.org"] = OSError("DNS timeout")
        self.assertEqual(await self.resolver.resolve("dot.org"), ResolvedServer("dot.org", 8448, "dot.org", "dot.org"))

    @inline
    async def test_unusable_well_known_documents_fall_through(self):
        for name, body in [("a.org", b"not json"), ("b.org", b"[]"), ("c.org", {"m.server": 5}),
                           ("d.org", {"m.server": "bad name!"}), ("e.org", {}),
                           ("f.org", {"m.server": "x.org:99999"})]:
            self.well_known.serve(name, body)
            self.assertEqual(await self.resolver.resolve(name), ResolvedServer(name, 8448, name, name), name)

    @inline
    async def test_invalid_server_name_raises(self):
        with self.assertRaises(ValueError):
            await self.resolver.resolve("bad name")


class WellKnownCacheTests(unittest.TestCase):
    def setUp(self):
        self.time = task.Clock()
        self.well_known = FakeWellKnown()
        self.resolver = ServerResolver(reactor, Clock(self.time), fetch_well_known=self.well_known,
                                       lookup_srv=FakeSrv())

    async def resolve_counting(self, name: str) -> tuple[str, int]:
        before = len(self.well_known.calls)
        resolved = await self.resolver.resolve(name)
        return resolved.host, len(self.well_known.calls) - before

    @inline
    async def test_max_age_is_honoured(self):
        self.well_known.serve("example.org", {"m.server": "one.example.org:1"}, "public, max-age=600")
        self.assertEqual(await self.resolve_counting("example.org"), ("one.example.org", 1))
        self.well_known.serve("example.org", {"m.server": "two.example.org:1"}, "max-age=600")
        self.time.advance(599)
        self.assertEqual(await self.resolve_counting("example.org"), ("one.example.org", 0))
        self.time.advance(2)
        self.assertEqual(await self.resolve_counting("example.org"), ("two.example.org", 1))

    @inline
    async def test_default_lifetime_is_a_day_and_the_cap_two_days(self):
        self.well_known.serve("day.org", {"m.server": "d.day.org:1"})
        self.well_known.serve("week.org", {"m.server": "w.week.org:1"}, "max-age=604800")
        await self.resolver.resolve("day.org")
        await self.resolver.resolve("week.org")
        self.time.advance(24 * 3600 - 1)
        self.assertEqual(await self.resolve_counting("day.org"), ("d.day.org", 0))
        self.time.advance(2)
        self.assertEqual(await self.resolve_counting("day.org"), ("d.day.org", 1))
        self.assertEqual(await self.resolve_counting("week.org"), ("w.week.org", 0))
        self.time.advance(24 * 3600)
        self.assertEqual(await self.resolve_counting("week.org"), ("w.week.org", 1))

    @inline
    async def test_failures_are_cached_for_an_hour(self):
        self.well_known.answers["https://example.org/.well-known/matrix/server"] = ConnectionRefusedError()
        self.assertEqual(await self.resolve_counting("example.org"), ("example.org", 1))
        self.well_known.serve("example.org", {"m.server": "late.example.org:1"})
        self.time.advance(3599)
        self.assertEqual(await self.resolve_counting("example.org"), ("example.org", 0))
        self.time.advance(2)
        self.assertEqual(await self.resolve_counting("example.org"), ("late.example.org", 1))

    @inline
    async def test_a_cancelled_lookup_is_not_a_failure(self):
        # Twisted may report a cancelled request as another error; the resolver must
        # still stop, not fall back to SRV and cache a failure.
        srv = FakeSrv()
        hanging: list[defer.Deferred] = []

        def never_answers(url: str) -> defer.Deferred:
            hanging.append(defer.Deferred(lambda d: d.errback(ConnectionAbortedError("aborted"))))
            return hanging[-1]

        resolver = ServerResolver(reactor, Clock(self.time), fetch_well_known=never_answers, lookup_srv=srv)
        resolving = defer.ensureDeferred(resolver.resolve("example.org"))
        resolving.cancel()
        with self.assertRaises(defer.CancelledError):
            await resolving
        self.assertEqual(srv.calls, [])
        resolving = defer.ensureDeferred(resolver.resolve("example.org"))
        self.assertEqual(len(hanging), 2)  # nothing was cached: it asks again
        hanging[-1].callback(WellKnownResponse(b'{"m.server": "m.example.org:1"}'))
        self.assertEqual((await resolving).host, "m.example.org")

    @inline
    async def test_invalid_documents_are_cached_as_failures(self):
        self.well_known.serve("example.org", b"{", "max-age=60")
        await self.resolver.resolve("example.org")
        self.time.advance(120)
        self.assertEqual(await self.resolve_counting("example.org"), ("example.org", 0))


class WellKnownResource(Resource):
    isLeaf = True

    def __init__(self, body: bytes = b'{"m.server": "delegated.example:1234"}'):
        super().__init__()
        self.body = body
        self.paths: list[bytes] = []

    def render_GET(self, request):
        self.paths.append(request.path)
        if request.path == b"/.well-known/matrix/server":
            request.redirect(b"/delegation")
            return b""
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"max-age=300")
        return self.body


class HttpsWellKnownFetcherTests(unittest.TestCase):
    def serve(self, resource: Resource) -> TlsTestServer:
        return TlsTestServer(self, resource, cert_name="localhost")

    def resolver(self, listener: TlsTestServer, fetcher) -> ServerResolver:
        resolver = ServerResolver(reactor, Clock(reactor), fetch_well_known=fetcher, lookup_srv=FakeSrv(),
                                  well_known_port=listener.port)
        self.addCleanup(lambda: defer.ensureDeferred(resolver.close()))
        return resolver

    def trusting_fetcher(self, listener: TlsTestServer) -> HttpsWellKnownFetcher:
        fetcher = HttpsWellKnownFetcher(reactor, tls_policy=TrustOnly(listener.cert_pem))
        self.addCleanup(lambda: defer.ensureDeferred(fetcher.close()))
        return fetcher

    @inline
    async def test_fetches_over_tls_following_a_redirect(self):
        resource = WellKnownResource()
        listener = self.serve(resource)
        resolved = await self.resolver(listener, self.trusting_fetcher(listener)).resolve("localhost")
        self.assertEqual(resolved, ResolvedServer("delegated.example", 1234, "delegated.example:1234",
                                                  "delegated.example"))
        self.assertEqual(resource.paths, [b"/.well-known/matrix/server", b"/delegation"])

    @inline
    async def test_answer_carries_cache_control(self):
        listener = self.serve(WellKnownResource())
        fetcher = self.trusting_fetcher(listener)
        answer = await fetcher(f"https://localhost:{listener.port}/.well-known/matrix/server")
        self.assertEqual(answer, WellKnownResponse(b'{"m.server": "delegated.example:1234"}', "max-age=300"))

    @inline
    async def test_untrusted_certificate_is_refused_by_default(self):
        resource = WellKnownResource()
        listener = self.serve(resource)
        resolver = ServerResolver(reactor, Clock(reactor), lookup_srv=FakeSrv(), well_known_port=listener.port)
        self.addCleanup(lambda: defer.ensureDeferred(resolver.close()))
        self.assertEqual(await resolver.resolve("localhost"),
                         ResolvedServer("localhost", 8448, "localhost", "localhost"))
        self.assertEqual(resource.paths, [])

    @inline
    async def test_oversized_body_is_refused(self):
        listener = self.serve(WellKnownResource(b'{"m.server": "big.example:1", "pad": "' + b"x" * 60_000 + b'"}'))
        fetcher = self.trusting_fetcher(listener)
        with self.assertRaises(BodyTooLarge):
            await fetcher(f"https://localhost:{listener.port}/delegation")
        resolved = await self.resolver(listener, fetcher).resolve("localhost")
        self.assertEqual(resolved, ResolvedServer("localhost", 8448, "localhost", "localhost"))

    @inline
    async def test_oversized_body_without_length_is_refused(self):
        class Chunked(Resource):
            isLeaf = True

            def render_GET(self, request):
                for _ in range(60):
                    request.write(b" " * 1024)  # no Content-Length: sent chunked
                request.finish()
                return server.NOT_DONE_YET

        listener = self.serve(Chunked())
        with self.assertRaises(BodyTooLarge):
            await self.trusting_fetcher(listener)(f"https://localhost:{listener.port}/x")

    @inline
    async def test_non_200_is_a_failure(self):
        listener = self.serve(Resource())  # 404 for everything
        fetcher = self.trusting_fetcher(listener)
        with self.assertRaises(WellKnownError):
            await fetcher(f"https://localhost:{listener.port}/.well-known/matrix/server")

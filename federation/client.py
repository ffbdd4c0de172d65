"""Requests to other homeservers: X-Matrix signed, over TLS, to the address server
discovery gives, never to an address in the configured deny ranges.

Connections go through ``_GuardedConnector``: it resolves the host itself, checks every
address against the IP filter, and connects to an allowed one, so a name that resolves
to a private address is refused after DNS and not just when written as an IP.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote, urlencode

from OpenSSL import SSL
from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import (IOpenSSLClientConnectionCreator, IResolutionReceiver,
                                         IStreamClientEndpoint)
from twisted.internet.ssl import CertificateOptions, optionsForClientTLS
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.error import SchemeNotSupported
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IBodyProducer
from zope.interface import implementer

from federation.discovery import (USER_AGENT, BodyTooLarge, HttpsWellKnownFetcher, ServerResolver,
                                  cancel_as_cancelled, read_limited_body)
from federation.ip_ranges import IpRangeFilter
from federation.request_auth import authorization_header

log = Logger(namespace="drocsid.federation.client")

MAX_JSON_RESPONSE_BYTES = 100 * 1024 * 1024
MAX_MEDIA_RESPONSE_BYTES = 100 * 1024 * 1024
CONNECT_TIMEOUT_S = 30.0
# The URI scheme of federation requests inside the agent; the endpoint factory, not the
# URI, decides where they go.
FEDERATION_SCHEME = b"matrix-federation"

Query = Mapping[str, Any] | Iterable[tuple[str, Any]]


# -- errors -------------------------------------------------------------------------------

class FederationError(Exception):
    """Base of the errors a federation request raises."""


class FederationHttpError(FederationError):
    """The remote server answered with a non-2xx status."""

    def __init__(self, status: int, errcode: str | None, message: str, body: dict):
        super().__init__(f"{status} {errcode or ''} {message}".strip())
        self.status = status
        self.errcode = errcode
        self.message = message
        self.body = body   # the JSON object answered, or {} when it was not one


class FederationUnreachable(FederationError):
    """No usable answer: DNS, connection, TLS, timeout, or a body that is not JSON."""

    def __init__(self, destination: str, reason: str):
        super().__init__(f"{destination}: {reason}")
        self.destination = destination
        self.reason = reason


class DestinationDenied(FederationUnreachable):
    """Every address of the destination is in the outbound deny ranges."""


# -- query strings ------------------------------------------------------------------------

def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def path_of(prefix: str, *segments: str) -> str:
    """A request path: ``prefix`` followed by each segment percent-encoded whole (IDs
    hold ``:``, ``!``, ``$`` and ``@``, which must not split or end the path)."""
    return prefix + "/".join(quote(s, safe="") for s in segments)


def encode_query(query: Query | None) -> str:
    """``a=1&b=2`` from a dict (a list value repeats the name) or a list of pairs."""
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    items = query.items() if isinstance(query, Mapping) else query
    for name, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        pairs += [(name, _query_value(v)) for v in values]
    return urlencode(pairs, quote_via=quote)


# -- TLS ----------------------------------------------------------------------------------

@implementer(IOpenSSLClientConnectionCreator)
class _UncheckedTls:
    """TLS without certificate checks, still sending SNI for hostnames (a server hosting
    several names needs it to pick the certificate)."""

    def __init__(self, server_name: str | None):
        self._options = CertificateOptions(verify=False)
        self._sni = server_name.encode("ascii") if server_name else None

    def clientConnectionForTLS(self, tls_protocol) -> SSL.Connection:
        connection = self._options.clientConnectionForTLS(tls_protocol)
        if self._sni:
            connection.set_tlsext_host_name(self._sni)
        return connection


def _is_ip(host: str) -> bool:
    return isIPAddress(host) or isIPv6Address(host)


# -- connecting ---------------------------------------------------------------------------

@implementer(IResolutionReceiver)
class _AddressCollector:
    def __init__(self, finished: defer.Deferred):
        self._finished = finished
        self._addresses: list[str] = []

    def resolutionBegan(self, resolution) -> None:
        pass

    def addressResolved(self, address) -> None:
        self._addresses.append(address.host)

    def resolutionComplete(self) -> None:
        if not self._finished.called:  # it was cancelled
            self._finished.callback(self._addresses)


@implementer(IStreamClientEndpoint)
class _LazyEndpoint:
    """An endpoint whose connect runs a coroutine (resolution, checks, then connecting)."""

    def __init__(self, connect: Callable):
        self._connect = connect

    def connect(self, protocol_factory) -> defer.Deferred:
        return defer.ensureDeferred(self._connect(protocol_factory))


class _GuardedConnector:
    """Connects over TLS to ``host:port`` only through addresses the IP filter allows."""

    def __init__(self, reactor, ip_filter: IpRangeFilter, tls_for: Callable[[str, str], Any]):
        self._reactor = reactor
        self._ip_filter = ip_filter
        self._tls_for = tls_for

    async def connect(self, destination: str, host: str, port: int, tls_name: str | None,
                      protocol_factory):
        addresses = [host] if _is_ip(host) else await self._lookup(host, port)
        if not addresses:
            raise DNSLookupError(f"{host} has no addresses")
        allowed = [address for address in addresses if self._ip_filter.allows(address)]
        if not allowed:
            raise DestinationDenied(destination, f"{host} resolves only to denied addresses "
                                                 f"({', '.join(sorted(set(addresses)))})")
        tls = self._tls_for(destination, tls_name or host)
        failure: Exception | None = None
        for address in dict.fromkeys(allowed):
            kind = TCP6ClientEndpoint if ":" in address else TCP4ClientEndpoint
            endpoint = wrapClientTLS(tls, kind(self._reactor, address, port, timeout=CONNECT_TIMEOUT_S))
            try:
                return await cancel_as_cancelled(endpoint.connect(protocol_factory))
            except defer.CancelledError:
                raise
            except Exception as error:
                failure = error
        assert failure is not None
        raise failure

    def _lookup(self, host: str, port: int) -> defer.Deferred:
        # No canceller: cancelling just stops waiting; the lookup's late answer is ignored.
        finished: defer.Deferred = defer.Deferred()
        self._reactor.nameResolver.resolveHostName(_AddressCollector(finished), host, port)
        return finished


@implementer(IAgentEndpointFactory)
class _FederationEndpoints:
    """Endpoints for ``matrix-federation://<hex of server name>/…`` URIs. The server name
    is hex-encoded because the agent's connection pool keys connections by the URI's
    host and port: ``example.org`` and ``example.org:80`` must not share a connection,
    and IPv6 brackets must survive the URI parser."""

    def __init__(self, resolver: ServerResolver, connector: _GuardedConnector):
        self._resolver = resolver
        self._connector = connector

    def endpointForURI(self, uri) -> _LazyEndpoint:
        if uri.scheme != FEDERATION_SCHEME:
            raise SchemeNotSupported(uri.scheme)
        destination = bytes.fromhex(uri.host.decode("ascii")).decode("utf-8")

        async def connect(protocol_factory):
            resolved = await self._resolver.resolve(destination)
            return await self._connector.connect(destination, resolved.host, resolved.port,
                                                 resolved.tls_name, protocol_factory)
        return _LazyEndpoint(connect)


@implementer(IAgentEndpointFactory)
class _HttpsEndpoints:
    """Plain https URIs (the well-known lookup), through the same guarded connector."""

    def __init__(self, connector: _GuardedConnector):
        self._connector = connector

    def endpointForURI(self, uri) -> _LazyEndpoint:
        if uri.scheme != b"https":
            raise SchemeNotSupported(uri.scheme)
        host = uri.host.decode("ascii").strip("[]")

        async def connect(protocol_factory):
            return await self._connector.connect(host, host, uri.port, None if _is_ip(host) else host,
                                                 protocol_factory)
        return _LazyEndpoint(connect)


@implementer(IBodyProducer)
class _BytesProducer:
    def __init__(self, data: bytes):
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer) -> defer.Deferred:
        consumer.write(self._data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _describe(error: BaseException) -> str:
    """A one-line reason, unwrapping the agent's ResponseFailed-style reason lists."""
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(_describe(reason.value) for reason in reasons)
    if isinstance(error, SSL.Error):
        return f"TLS failure: {error}"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _http_error(status: int, content: bytes) -> FederationHttpError:
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        snippet = content[:200].decode("utf-8", "replace")
        return FederationHttpError(status, None, snippet, {})
    errcode = body.get("errcode") if isinstance(body.get("errcode"), str) else None
    message = body.get("error") if isinstance(body.get("error"), str) else ""
    return FederationHttpError(status, errcode, message, body)


# -- the client ---------------------------------------------------------------------------

class FederationClient:
    """Signed requests to other homeservers. ``config`` is the ``federation`` config
    section; only ``verify_certificates``, ``insecure_destinations``,
    ``ip_range_denylist`` and ``ip_range_allowlist`` are read. ``resolver`` (public as
    ``self.resolver``) defaults to one whose well-known lookups connect as this client."""

    def __init__(self, reactor, clock, server_name: str, signing_key, config,
                 resolver: ServerResolver | None = None):
        self._reactor = reactor
        self._server_name = server_name
        self._signing_key = signing_key
        self._verify_certificates = bool(config.verify_certificates)
        self._insecure = set(config.insecure_destinations)
        connector = _GuardedConnector(reactor, IpRangeFilter(config.ip_range_denylist, config.ip_range_allowlist),
                                      self._tls_for)
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 5
        self._well_known_agent = Agent.usingEndpointFactory(reactor, _HttpsEndpoints(connector), self._pool)
        self.resolver = resolver or ServerResolver(reactor, clock, fetch_well_known=self.well_known_fetcher())
        self._agent = Agent.usingEndpointFactory(reactor, _FederationEndpoints(self.resolver, connector),
                                                 self._pool)

    def well_known_fetcher(self) -> HttpsWellKnownFetcher:
        """A ``.well-known`` fetcher that connects as this client does: the same IP
        filter, certificate policy and pool (the default resolver uses one)."""
        return HttpsWellKnownFetcher(self._reactor, agent=self._well_known_agent)

    def _tls_for(self, destination: str, name: str):
        """The TLS client settings for ``destination``, checking ``name`` (a hostname or IP)."""
        if self._verify_certificates and "*" not in self._insecure and destination not in self._insecure:
            return optionsForClientTLS(name)  # system trust store; SNI only for hostnames
        return _UncheckedTls(None if _is_ip(name) else name)

    # -- requests -----------------------------------------------------------------------

    async def request(self, method: str, destination: str, path: str, *, query: Query | None = None,
                      body: Any = None, timeout: float = 60.0,
                      max_response_bytes: int = MAX_JSON_RESPONSE_BYTES) -> dict:
        """Send a signed request and return the JSON object answered. ``path`` is sent
        as given (already percent-encoded)."""
        _headers, content = await self._send(method, destination, path, query, body, timeout,
                                              max_response_bytes)
        try:
            parsed = json.loads(content)
        except ValueError:
            raise FederationUnreachable(destination, "response is not JSON") from None
        if not isinstance(parsed, dict):
            raise FederationUnreachable(destination, "response is not a JSON object")
        return parsed

    async def get_json(self, destination: str, path: str, query: Query | None = None, *,
                       timeout: float = 60.0, max_response_bytes: int = MAX_JSON_RESPONSE_BYTES) -> dict:
        return await self.request("GET", destination, path, query=query, timeout=timeout,
                                  max_response_bytes=max_response_bytes)

    async def put_json(self, destination: str, path: str, body: Any = None, *, query: Query | None = None,
                       timeout: float = 60.0, max_response_bytes: int = MAX_JSON_RESPONSE_BYTES) -> dict:
        return await self.request("PUT", destination, path, query=query, body=body, timeout=timeout,
                                  max_response_bytes=max_response_bytes)

    async def post_json(self, destination: str, path: str, body: Any = None, *, query: Query | None = None,
                        timeout: float = 60.0, max_response_bytes: int = MAX_JSON_RESPONSE_BYTES) -> dict:
        return await self.request("POST", destination, path, query=query, body=body, timeout=timeout,
                                  max_response_bytes=max_response_bytes)

    async def get_bytes(self, destination: str, path: str, query: Query | None = None, *,
                        max_bytes: int = MAX_MEDIA_RESPONSE_BYTES,
                        timeout: float = 60.0) -> tuple[dict[str, str], bytes]:
        """A signed GET returning the raw body and the response headers (lower-case
        names, values of repeated headers joined with ", ")."""
        headers, content = await self._send("GET", destination, path, query, None, timeout, max_bytes)
        return ({name.decode("latin-1").lower(): ", ".join(v.decode("latin-1") for v in values)
                 for name, values in headers.getAllRawHeaders()}, content)

    async def _send(self, method: str, destination: str, path: str, query: Query | None, body: Any,
                    timeout: float, max_bytes: int) -> tuple[Headers, bytes]:
        method = method.upper()
        query_string = encode_query(query)
        uri = f"{path}?{query_string}" if query_string else path
        if body is None and method in ("PUT", "POST"):
            body = {}
        started = self._reactor.seconds()
        exchange = defer.ensureDeferred(self._exchange(method, destination, uri, body, max_bytes))
        # Not Deferred.addTimeout: the agent reports a cancelled request as a
        # ResponseNeverReceived, which addTimeout would not recognise as its timeout.
        deadline = self._reactor.callLater(timeout, exchange.cancel)
        try:
            status, headers, content = await exchange
        except FederationError as error:
            self._log_failure(method, destination, path, str(error))
            raise
        except Exception as error:
            reason = _describe(error) if deadline.active() else f"no response within {timeout:g}s"
            self._log_failure(method, destination, path, reason)
            raise FederationUnreachable(destination, reason) from None
        finally:
            if deadline.active():
                deadline.cancel()
        log.debug("{method} {destination}{path} {status} in {duration_ms}ms", method=method,
                  destination=destination, path=path, status=status,
                  duration_ms=round((self._reactor.seconds() - started) * 1000, 1))
        if not 200 <= status < 300:
            raise _http_error(status, content)
        return headers, content

    async def _exchange(self, method: str, destination: str, uri: str, body: Any,
                        max_bytes: int) -> tuple[int, Headers, bytes]:
        try:
            resolved = await self.resolver.resolve(destination)
        except ValueError as error:
            raise FederationUnreachable(destination, f"invalid server name: {error}") from None
        authorization = authorization_header(method, uri, self._server_name, destination,
                                             self._signing_key, body)
        headers = Headers({b"Host": [resolved.host_header.encode("ascii")],
                           b"Authorization": [authorization.encode("utf-8")],
                           b"User-Agent": [USER_AGENT]})
        producer = None
        if body is not None:
            headers.setRawHeaders(b"Content-Type", [b"application/json"])
            producer = _BytesProducer(json.dumps(body, ensure_ascii=False, separators=(",", ":"))
                                      .encode("utf-8"))
        url = FEDERATION_SCHEME + b"://" + destination.encode("utf-8").hex().encode("ascii") + uri.encode("ascii")
        response = await self._agent.request(method.encode("ascii"), url, headers, producer)
        try:
            content = await read_limited_body(response, max_bytes)
        except BodyTooLarge as error:
            raise FederationUnreachable(destination, str(error)) from None
        return response.code, response.headers, content

    @staticmethod
    def _log_failure(method: str, destination: str, path: str, reason: str) -> None:
        log.info("{method} {destination}{path} failed: {reason}", method=method, destination=destination,
                 path=path, reason=reason, event="federation_request_failed")

    async def close(self) -> None:
        """Close the idle pooled connections (the well-known lookups of a resolver made
        here share the pool; an injected resolver is its owner's to close)."""
        await self._pool.closeCachedConnections()

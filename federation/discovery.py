"""Resolving a Matrix server name to where to connect, as the server-server API's
"Resolving server names" section orders it: IP literal, explicit port, ``.well-known``
delegation, SRV records (``_matrix-fed._tcp`` then the deprecated ``_matrix._tcp``),
then port 8448.

The ``.well-known`` fetcher and the SRV lookup are injectable. Well-known answers are
cached in memory by the injected clock; SRV answers are left to the DNS resolver's
own cache (it knows the record TTLs).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import urljoin

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IPolicyForHTTPS

from homeserver import __version__

log = Logger(namespace="drocsid.federation.discovery")

DEFAULT_FEDERATION_PORT = 8448
WELL_KNOWN_PATH = "/.well-known/matrix/server"
WELL_KNOWN_DEFAULT_CACHE_S = 24 * 3600
WELL_KNOWN_MAX_CACHE_S = 48 * 3600
WELL_KNOWN_FAILURE_CACHE_S = 3600
WELL_KNOWN_MAX_BYTES = 50 * 1024
WELL_KNOWN_TIMEOUT_S = 10.0
WELL_KNOWN_MAX_REDIRECTS = 5
SRV_SERVICES = ("_matrix-fed._tcp", "_matrix._tcp")
USER_AGENT = f"Drocsid/{__version__}".encode()

# The spec's grammar: dns-name = 1*255(ALPHA / DIGIT / "-" / "."), port = 1*5DIGIT.
_DNS_NAME = re.compile(r"[A-Za-z0-9.\-]{1,255}")
_PORT = re.compile(r"[0-9]{1,5}")
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?([0-9]+)", re.IGNORECASE)


# -- server names -----------------------------------------------------------------

def parse_server_name(name: str) -> tuple[str, int | None]:
    """Split a server name into host and port (None when absent). The host is returned
    as written: a hostname, an IPv4 address, or a bracketed IPv6 address (``[::1]``).
    Raises ValueError when ``name`` does not follow the grammar."""
    if not isinstance(name, str) or not name:
        raise ValueError("server name is empty")
    if name.startswith("["):
        close = name.find("]")
        if close < 0:
            raise ValueError(f"unterminated IPv6 literal in server name {name!r}")
        host, remainder = name[:close + 1], name[close + 1:]
        literal = host[1:-1]
        if "%" in literal or not _is_ipv6(literal):
            raise ValueError(f"invalid IPv6 literal in server name {name!r}")
    else:
        host, colon, port_text = name.partition(":")
        remainder = colon + port_text
        if not _DNS_NAME.fullmatch(host):
            raise ValueError(f"invalid host in server name {name!r}")
    if not remainder:
        return host, None
    if not remainder.startswith(":") or not _PORT.fullmatch(remainder[1:]):
        raise ValueError(f"invalid port in server name {name!r}")
    port = int(remainder[1:])
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range in server name {name!r}")
    return host, port


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def is_ip_literal(host: str) -> bool:
    """Whether a host from ``parse_server_name`` is an IP address rather than a name."""
    if host.startswith("["):
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def unbracketed(host: str) -> str:
    """``[::1]`` -> ``::1``: the form sockets and certificate checks use."""
    return host[1:-1] if host.startswith("[") else host


@dataclass(frozen=True)
class ResolvedServer:
    host: str               # what to connect to: an IP address (no brackets) or a hostname
    port: int
    host_header: str        # the Host header of requests
    tls_name: str | None    # SNI and certificate name; None for IP literals (check the IP)


def cancel_as_cancelled(awaitable) -> defer.Deferred:
    """Follow ``awaitable`` (a Deferred or coroutine), except that cancelling fails with
    CancelledError. Twisted reports some cancellations as other errors (a cancelled
    request as ResponseNeverReceived, a connect as ConnectingCancelledError); code that
    falls back on errors would take those for an answer and carry on after its caller
    gave up."""
    inner = defer.ensureDeferred(awaitable)
    cancelled = False

    def cancel(_: defer.Deferred) -> None:
        nonlocal cancelled
        cancelled = True
        inner.cancel()

    outer: defer.Deferred = defer.Deferred(cancel)

    def forward(result):
        if not cancelled:
            outer.callback(result)
        return None  # after a cancel, whatever the inner one ends with is moot

    inner.addBoth(forward)
    return outer


# -- reading bodies within a limit ----------------------------------------------------

class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"response body larger than {limit} bytes")
        self.limit = limit


class _LimitedBodyReader(Protocol):
    def __init__(self, finished: defer.Deferred, declared_length: Any, max_bytes: int):
        self._finished = finished
        self._declared_length = declared_length
        self._max_bytes = max_bytes
        self._chunks: list[bytes] = []
        self._received = 0
        self._too_large = False

    def connectionMade(self) -> None:
        if self._declared_length is not UNKNOWN_LENGTH and self._declared_length > self._max_bytes:
            self._give_up()

    def dataReceived(self, data: bytes) -> None:
        if self._too_large:
            return
        self._received += len(data)
        if self._received > self._max_bytes:
            self._give_up()
            return
        self._chunks.append(data)

    def _give_up(self) -> None:
        # Stop the download rather than discard the rest as it arrives; the answer is
        # given once the connection is gone, so it is never pooled half-read.
        self._too_large = True
        self._chunks = []
        self.stop()

    def stop(self) -> None:
        if self.transport is None:
            return
        # The agent hands the body a proxy of its transport that can only close
        # politely (a TLS close waits for the peer); abort the real one when reachable.
        abort = getattr(getattr(self.transport, "_producer", None), "abortConnection", None)
        if abort is not None:
            abort()
        else:
            self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        if self._finished.called:
            return  # cancelled
        if self._too_large:
            self._finished.errback(BodyTooLarge(self._max_bytes))
        # PotentialDataLoss: a body without a length, ended by closing the connection.
        elif reason.check(ResponseDone, PotentialDataLoss):
            self._finished.callback(b"".join(self._chunks))
        else:
            self._finished.errback(reason)


def read_limited_body(response, max_bytes: int) -> defer.Deferred:
    """The whole body of a twisted.web response as bytes, failing with BodyTooLarge past
    ``max_bytes``; cancelling the Deferred drops the connection."""
    reader: _LimitedBodyReader | None = None

    def cancel(_: defer.Deferred) -> None:
        if reader is not None:
            reader.stop()

    finished: defer.Deferred = defer.Deferred(cancel)
    reader = _LimitedBodyReader(finished, response.length, max_bytes)
    response.deliverBody(reader)
    return finished


# -- .well-known ------------------------------------------------------------------------

@dataclass(frozen=True)
class WellKnownResponse:
    body: bytes
    cache_control: str | None = None


class WellKnownError(Exception):
    """The well-known answer is missing or unusable; resolution goes on without it."""


WellKnownFetcher = Callable[[str], Awaitable[WellKnownResponse]]


class HttpsWellKnownFetcher:
    """GETs a ``.well-known/matrix/server`` URL over HTTPS, following a few redirects
    (to https URLs only). Non-200 answers, timeouts and oversized bodies raise.

    ``agent`` is the twisted.web agent to use (the federation client passes one that
    refuses denied IP ranges); without one, an Agent checking certificates with
    ``tls_policy`` (default: the system trust store) is made, with its own pool."""

    def __init__(self, reactor, *, agent=None, tls_policy: IPolicyForHTTPS | None = None,
                 timeout: float = WELL_KNOWN_TIMEOUT_S, max_bytes: int = WELL_KNOWN_MAX_BYTES):
        self._reactor = reactor
        self._pool: HTTPConnectionPool | None = None
        if agent is None:
            self._pool = HTTPConnectionPool(reactor, persistent=True)
            if tls_policy is None:
                agent = Agent(reactor, pool=self._pool)
            else:
                agent = Agent(reactor, contextFactory=tls_policy, pool=self._pool)
        self._agent = agent
        self._timeout = timeout
        self._max_bytes = max_bytes

    def __call__(self, url: str) -> defer.Deferred:
        fetch = defer.ensureDeferred(self._fetch(url))
        return fetch.addTimeout(self._timeout, self._reactor)

    async def _fetch(self, url: str) -> WellKnownResponse:
        for _ in range(WELL_KNOWN_MAX_REDIRECTS + 1):
            response = await self._agent.request(b"GET", url.encode("ascii"),
                                                 Headers({b"User-Agent": [USER_AGENT]}))
            location = response.headers.getRawHeaders(b"Location")
            if response.code in (301, 302, 303, 307, 308) and location:
                await self._discard(response)
                url = urljoin(url, location[0].decode("ascii", "replace"))
                if not url.startswith("https://"):
                    raise WellKnownError(f"redirected to a non-https URL {url!r}")
                continue
            body = await read_limited_body(response, self._max_bytes)
            if response.code != 200:
                raise WellKnownError(f"{url} answered {response.code}")
            cache_control = response.headers.getRawHeaders(b"Cache-Control")
            return WellKnownResponse(body, ", ".join(v.decode("latin-1") for v in cache_control)
                                     if cache_control else None)
        raise WellKnownError(f"more than {WELL_KNOWN_MAX_REDIRECTS} redirects")

    async def _discard(self, response) -> None:
        try:
            await read_limited_body(response, self._max_bytes)
        except BodyTooLarge:
            pass  # the connection is dropped; the redirect still stands

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.closeCachedConnections()


def parse_well_known(body: bytes) -> str:
    """The delegated server name from a well-known body; WellKnownError if unusable."""
    try:
        document = json.loads(body)
    except ValueError:
        raise WellKnownError("well-known body is not JSON") from None
    if not isinstance(document, dict):
        raise WellKnownError("well-known body is not a JSON object")
    delegated = document.get("m.server")
    if not isinstance(delegated, str):
        raise WellKnownError("well-known has no m.server string")
    try:
        parse_server_name(delegated)
    except ValueError as error:
        raise WellKnownError(f"well-known m.server is invalid: {error}") from None
    return delegated


def well_known_lifetime(cache_control: str | None) -> float:
    """Seconds to keep a good well-known answer: its max-age, else a day; at most two."""
    found = _MAX_AGE.search(cache_control or "")
    seconds = int(found.group(1)) if found else WELL_KNOWN_DEFAULT_CACHE_S
    return min(seconds, WELL_KNOWN_MAX_CACHE_S)


# -- SRV ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SrvRecord:
    priority: int
    weight: int
    target: str
    port: int


SrvLookup = Callable[[str], Awaitable[list[SrvRecord]]]


async def lookup_srv_with_twisted(name: str) -> list[SrvRecord]:
    """SRV records of ``name`` from the system's DNS servers; [] when the name does not exist."""
    from twisted.names import client, dns, error

    try:
        answers, _authority, _additional = await client.lookupService(name)
    except error.DNSNameError:
        return []
    return [SrvRecord(answer.payload.priority, answer.payload.weight,
                      answer.payload.target.name.decode("ascii"), answer.payload.port)
            for answer in answers if answer.type == dns.SRV]


def pick_srv(records: list[SrvRecord]) -> SrvRecord | None:
    """The lowest priority record (the highest weight among equals). A target of "."
    means the service is deliberately not offered."""
    usable = [record for record in records if record.target.rstrip(".")]
    if not usable:
        return None
    return min(usable, key=lambda record: (record.priority, -record.weight))


# -- the resolver -------------------------------------------------------------------------

@dataclass(frozen=True)
class _CachedWellKnown:
    expires_ms: int
    delegated: str | None   # None: the lookup failed


class ServerResolver:
    def __init__(self, reactor, clock, fetch_well_known: WellKnownFetcher | None = None,
                 lookup_srv: SrvLookup | None = None, well_known_port: int = 443):
        self._owned_fetcher: HttpsWellKnownFetcher | None = None
        if fetch_well_known is None:
            self._owned_fetcher = fetch_well_known = HttpsWellKnownFetcher(reactor)
        self._fetch_well_known = fetch_well_known
        self._lookup_srv = lookup_srv or lookup_srv_with_twisted
        self._clock = clock
        self._well_known_port = well_known_port
        self._well_known: dict[str, _CachedWellKnown] = {}

    async def resolve(self, server_name: str) -> ResolvedServer:
        """Where to reach ``server_name``. Raises ValueError for an invalid name; any
        other failure (well-known, SRV) falls through to the next step as the spec says."""
        host, port = parse_server_name(server_name)
        if is_ip_literal(host):
            return ResolvedServer(unbracketed(host), port or DEFAULT_FEDERATION_PORT, server_name, None)
        if port is not None:
            return ResolvedServer(host, port, server_name, host)
        delegated = await self._delegated_name(host)
        if delegated is None:
            return await self._srv_or_default(host)
        delegated_host, delegated_port = parse_server_name(delegated)
        if is_ip_literal(delegated_host):
            return ResolvedServer(unbracketed(delegated_host), delegated_port or DEFAULT_FEDERATION_PORT,
                                  delegated, None)
        if delegated_port is not None:
            return ResolvedServer(delegated_host, delegated_port, delegated, delegated_host)
        return await self._srv_or_default(delegated_host)

    async def _srv_or_default(self, hostname: str) -> ResolvedServer:
        # SRV targets are connected to, but requests still name (and the certificate
        # must still cover) the hostname the records were found under.
        for service in SRV_SERVICES:
            record = await self._srv(f"{service}.{hostname}")
            if record is not None:
                return ResolvedServer(record.target.rstrip("."), record.port, hostname, hostname)
        return ResolvedServer(hostname, DEFAULT_FEDERATION_PORT, hostname, hostname)

    async def _srv(self, name: str) -> SrvRecord | None:
        try:
            records = await cancel_as_cancelled(self._lookup_srv(name))
        except defer.CancelledError:
            raise
        except Exception as error:
            log.debug("SRV lookup of {name} failed: {error}", name=name, error=str(error))
            return None
        return pick_srv(records)

    async def _delegated_name(self, host: str) -> str | None:
        cached = self._well_known.get(host)
        if cached is not None and cached.expires_ms > self._clock.time_ms():
            return cached.delegated
        port = "" if self._well_known_port == 443 else f":{self._well_known_port}"
        url = f"https://{host}{port}{WELL_KNOWN_PATH}"
        try:
            response = await cancel_as_cancelled(self._fetch_well_known(url))
            delegated: str | None = parse_well_known(response.body)
            lifetime = well_known_lifetime(response.cache_control)
        except defer.CancelledError:
            raise  # the caller gave up; that says nothing about the server
        except Exception as error:
            log.info("no usable well-known for {host}: {error}", host=host, error=str(error) or repr(error),
                     event="well_known_failed")
            delegated, lifetime = None, WELL_KNOWN_FAILURE_CACHE_S
        self._forget_expired()
        self._well_known[host] = _CachedWellKnown(self._clock.time_ms() + int(lifetime * 1000), delegated)
        return delegated

    def _forget_expired(self) -> None:
        now = self._clock.time_ms()
        for name in [name for name, entry in self._well_known.items() if entry.expires_ms <= now]:
            del self._well_known[name]

    async def close(self) -> None:
        """Close the connections of the well-known fetcher this resolver made itself."""
        if self._owned_fetcher is not None:
            await self._owned_fetcher.close()

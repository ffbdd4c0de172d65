"""The HTTP site: request size limits, CORS, access logs and in-flight tracking.

``DrocsidRequest`` refuses an oversized body while it arrives (the bytes are counted and
dropped, never buffered) and answers 413 once the client has finished sending. ``HttpSite``
knows how many requests are in flight, so a graceful shutdown can wait for them.
"""

from __future__ import annotations

import json
import time
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource

from homeserver.http.errors import MatrixError, too_large

log = Logger(namespace="drocsid.access")

CORS_HEADERS = {
    b"Access-Control-Allow-Methods": b"GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS",
    b"Access-Control-Allow-Headers": b"X-Requested-With, Content-Type, Authorization, Date",
    b"Access-Control-Expose-Headers": b"Content-Disposition, Retry-After",
}


def redact_uri(uri: bytes) -> str:
    """The request URI for logs, with credentials in the query string blanked."""
    text = uri.decode("utf-8", "replace")
    path, sep, query = text.partition("?")
    if not sep:
        return path
    parts = []
    for pair in query.split("&"):
        name = pair.split("=", 1)[0]
        if name.lower() in ("access_token", "token", "password", "refresh_token"):
            pair = f"{name}=<redacted>"
        parts.append(pair)
    return f"{path}?{'&'.join(parts)}"


class _Discard:
    """Stands in for the body buffer of a request that is too large."""

    def write(self, data: bytes) -> None:
        pass

    def seek(self, *args) -> int:
        return 0

    def tell(self) -> int:
        return 0

    def read(self, *args) -> bytes:
        return b""

    def close(self) -> None:
        pass


class DrocsidRequest(server.Request):
    body_limit: int = 0
    body_too_large = False
    _body_received = 0
    started_at = 0.0
    user_for_log: str | None = None
    http_site = None
    remote_ip = "unknown"

    def gotLength(self, length):
        path = getattr(self.channel, "_path", b"") or b""
        self.body_limit = self.channel.site.body_limit_for(path)
        if length is not None and length > self.body_limit:
            self.body_too_large = True
            self.content = _Discard()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_received += len(data)
        if self.body_too_large:
            return
        if self._body_received > self.body_limit:
            # A chunked body with no Content-Length grew past the limit.
            self.body_too_large = True
            self.content = _Discard()
            return
        super().handleContentChunk(data)

    def client_ip(self) -> str:
        return self.remote_ip

    def _find_client_ip(self, site: "HttpSite") -> str:
        if site.trust_x_forwarded:
            forwarded = self.getHeader(b"X-Forwarded-For")
            if forwarded:
                return forwarded.decode("latin-1").split(",")[0].strip()
        address = self.getClientAddress()
        return getattr(address, "host", "unknown")

    def process(self):
        self.started_at = time.monotonic()
        # The channel is gone once the request finishes; keep what the log needs.
        site: HttpSite = self.channel.site
        self.http_site = site
        self.remote_ip = self._find_client_ip(site)
        site.request_started(self)
        log.debug("{method} {path} started", method=self.method.decode("ascii", "replace"),
                  path=redact_uri(self.uri), event="request_started")
        self.notifyFinish().addBoth(self._log_finished)
        for name, value in CORS_HEADERS.items():
            self.setHeader(name, value)
        self.setHeader(b"Access-Control-Allow-Origin", site.cors_allow_origin)
        if self.body_too_large:
            self.site = site
            write_json_error(self, too_large(self.body_limit))
            return
        super().process()

    def _log_finished(self, result):
        self.http_site.request_finished(self)
        duration_ms = round((time.monotonic() - self.started_at) * 1000, 2)
        aborted = result is not None  # notifyFinish fails when the client went away
        log.info("{method} {path} {status} {duration_ms}ms",
                 method=self.method.decode("ascii", "replace"),
                 path=redact_uri(self.uri), status=self.code, duration_ms=duration_ms,
                 client=self.client_ip(), user=self.user_for_log, aborted=aborted,
                 body_bytes=self._body_received)
        return None


def write_json(request: server.Request, status: int, body, headers: dict | None = None) -> None:
    if request.finished or request._disconnected:
        return
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-cache, no-store, must-revalidate")
    for name, value in (headers or {}).items():
        request.setHeader(name, value)
    request.setHeader(b"Content-Length", str(len(payload)).encode())
    if request.method != b"HEAD":
        request.write(payload)
    request.finish()


def write_json_error(request: server.Request, error: MatrixError) -> None:
    headers = {}
    retry = error.extra.get("retry_after_ms")
    if retry is not None:
        headers[b"Retry-After"] = str(max(1, -(-int(retry) // 1000))).encode()
    write_json(request, error.status, error.to_json(), headers)


class HttpSite(server.Site):
    requestFactory = DrocsidRequest

    def __init__(self, resource: Resource, *, max_body_bytes: int, media_upload_bytes: int,
                 cors_allow_origin: str = "*", trust_x_forwarded: bool = False, reactor=None):
        super().__init__(resource, reactor=reactor)
        self.max_body_bytes = max_body_bytes
        self.media_upload_bytes = media_upload_bytes
        self.cors_allow_origin = cors_allow_origin.encode()
        self.trust_x_forwarded = trust_x_forwarded
        self.in_flight = 0
        self._idle_waiters: list[defer.Deferred] = []
        self._protocols: set = set()
        self.noisy = False

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        self._protocols.add(protocol)
        lost = protocol.connectionLost

        def connection_lost(reason, _lost=lost, _protocol=protocol):
            self._protocols.discard(_protocol)
            return _lost(reason)
        protocol.connectionLost = connection_lost
        return protocol

    def close_connections(self) -> None:
        """Hang up on idle keep-alive connections (at shutdown, after in-flight requests)."""
        for protocol in list(self._protocols):
            # Site builds a wrapper; the transport belongs to the HTTP channel inside it.
            transport = getattr(getattr(protocol, "_channel", protocol), "transport", None)
            if transport is not None:
                transport.loseConnection()

    def body_limit_for(self, path: bytes) -> int:
        # Uploads may be as large as media allows; everything else is JSON.
        if b"/_matrix/media/" in path and b"/upload" in path:
            return self.media_upload_bytes
        # /api/v1 uploads (attachments, server icons, avatars) go to the same media repository.
        bare = path.split(b"?", 1)[0]
        if (bare.startswith(b"/api/v1/channels/") and bare.endswith(b"/attachments")) \
                or (bare.startswith(b"/api/v1/servers/") and bare.endswith(b"/icon")) \
                or bare == b"/api/v1/users/@me/avatar":
            return self.media_upload_bytes
        return self.max_body_bytes

    def log(self, request) -> None:
        pass  # DrocsidRequest writes a structured line instead of the common log format

    def request_started(self, request) -> None:
        self.in_flight += 1

    def request_finished(self, request) -> None:
        self._done_one()

    def track_handler(self, handler: defer.Deferred) -> None:
        """Count a handler until it returns, even if its client has gone: a shutdown must
        not close the database under it."""
        self.in_flight += 1

        def finished(result):
            self._done_one()
            return result
        handler.addBoth(finished)

    def _done_one(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def wait_until_idle(self) -> defer.Deferred:
        if self.in_flight == 0:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._idle_waiters.append(waiter)
        return waiter


def build_site(resource: Resource, config, reactor=None) -> HttpSite:
    return HttpSite(resource, max_body_bytes=config.limits.max_request_body_bytes,
                    media_upload_bytes=config.media.max_upload_bytes,
                    cors_allow_origin=config.server.cors_allow_origin,
                    trust_x_forwarded=config.server.x_forwarded, reactor=reactor)


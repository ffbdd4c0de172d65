"""A fake application service: a small Twisted web server on a free port that records
every request the homeserver makes to it and answers as told.

- ``requests``: every request, in arrival order (``method``, ``path``, ``auth``, ``body``,
  ``status`` answered).
- ``fail_with(status)`` answers every request with that status until ``succeed()``;
  ``handlers[prefix] = async fn(path, body) -> (status, body)`` answers chosen paths.
- ``stop()`` closes the port and every open connection (the service is down);
  ``start()`` listens again on the same port.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable
from urllib.parse import unquote

from twisted.internet import defer, reactor, task
from twisted.web import resource, server

Handler = Callable[[str, Any], Awaitable[tuple[int, Any]]]


class _Root(resource.Resource):
    isLeaf = True

    def __init__(self, fake: "FakeAppService"):
        super().__init__()
        self._fake = fake

    def render(self, request):
        raw = request.content.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        path = request.path.decode()
        auth = request.getHeader(b"authorization")
        entry = {"method": request.method.decode(), "path": unquote(path), "raw_path": path,
                 "auth": auth, "body": body, "status": None}
        self._fake.requests.append(entry)
        self._fake._connections.add(request.channel)

        async def answer():
            status, answer_body = await self._fake.answer(entry["method"], entry["path"], body)
            if request._disconnected:
                return  # the service was stopped, or the homeserver gave up
            entry["status"] = status
            request.setResponseCode(status)
            request.setHeader(b"Content-Type", b"application/json")
            request.write(json.dumps(answer_body).encode())
            request.finish()

        d = defer.ensureDeferred(answer())
        d.addErrback(lambda failure: None if request._disconnected else (request.setResponseCode(500),
                                                                         request.finish()))
        return server.NOT_DONE_YET


class FakeAppService:
    def __init__(self):
        self.requests: list[dict] = []
        self.handlers: dict[str, Handler] = {}
        self.failing_status: int | None = None
        self._connections: set = set()
        self._site = server.Site(_Root(self))
        self._port = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._port = reactor.listenTCP(self.port, self._site, interface="127.0.0.1")
        self.port = self._port.getHost().port

    async def stop(self) -> None:
        if self._port is not None:
            port, self._port = self._port, None
            await port.stopListening()
        channels, self._connections = self._connections, set()
        for channel in channels:
            transport = getattr(channel, "transport", None)
            if transport is not None and getattr(transport, "connected", False):
                transport.abortConnection()

    def hang(self, prefix: str) -> defer.Deferred:
        """Requests under ``prefix`` get no answer until the returned Deferred fires (with
        ``(status, body)``)."""
        gate: defer.Deferred = defer.Deferred()

        async def handler(path, body):
            return await gate
        self.handlers[prefix] = handler
        return gate

    def fail_with(self, status: int) -> None:
        self.failing_status = status

    def succeed(self) -> None:
        self.failing_status = None

    async def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if self.failing_status is not None:
            return self.failing_status, {"errcode": "M_UNKNOWN", "error": "told to fail"}
        for prefix, handler in self.handlers.items():
            if path.startswith(prefix):
                return await handler(path, body)
        return 200, {}

    # -- what arrived ------------------------------------------------------------------

    def transactions(self, *, delivered: bool = True) -> list[tuple[str, dict]]:
        """(txn ID, body) of each transaction request (answered 2xx only, by default)."""
        found = []
        for entry in self.requests:
            if entry["method"] == "PUT" and "/transactions/" in entry["path"]:
                if delivered and not (entry["status"] and 200 <= entry["status"] < 300):
                    continue
                found.append((entry["path"].rsplit("/", 1)[1], entry["body"]))
        return found

    def delivered_events(self) -> list[dict]:
        return [event for _, body in self.transactions() for event in body.get("events", [])]

    def delivered_ephemeral(self) -> list[dict]:
        return [edu for _, body in self.transactions() for edu in body.get("ephemeral", [])]


async def wait_until(predicate: Callable[[], Any], what: str, attempts: int = 1000, interval: float = 0.02):
    """Poll ``predicate`` (a plain or async function) until it is true, at most
    ``attempts`` times; fails the test with ``what`` otherwise."""
    for _ in range(attempts):
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        await task.deferLater(reactor, interval, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")

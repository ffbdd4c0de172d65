"""A real WebSocket client of the gateway for tests (autobahn)."""

from __future__ import annotations

import json

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS
from twisted.internet import defer, reactor

WAIT_SECONDS = 20.0  # an upper bound for a frame that must come; never reached when all is well


class _ClientProtocol(WebSocketClientProtocol):
    def onOpen(self):
        self.factory.client._opened(self)

    def onMessage(self, payload, isBinary):
        self.factory.client._received(json.loads(payload.decode("utf-8")))

    def onClose(self, wasClean, code, reason):
        self.factory.client._closed(code)


class GatewayClient:
    """One socket, every frame it got kept in order."""

    def __init__(self, port: int):
        self.frames: list[dict] = []
        self.close_code: int | None = None
        self._protocol = None
        self._waiters: list[tuple[object, defer.Deferred]] = []
        self._opening: defer.Deferred = defer.Deferred()
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/gateway")
        factory.protocol = _ClientProtocol
        # No autobahn timers: they outlive the test (txaio batches them).
        factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0, serverConnectionDropTimeout=0)
        factory.client = self
        self.connector = connectWS(factory)

    async def opened(self) -> "GatewayClient":
        await self._opening
        return self

    def _opened(self, protocol) -> None:
        self._protocol = protocol
        if not self._opening.called:
            self._opening.callback(None)

    def _received(self, frame: dict) -> None:
        self.frames.append(frame)
        self._check()

    def _closed(self, code) -> None:
        self.close_code = code if code is not None else 1006
        if not self._opening.called:
            self._opening.errback(Exception("not opened"))
        self._check()

    def _check(self) -> None:
        for waiter in list(self._waiters):
            condition, deferred = waiter
            if condition() and not deferred.called:
                self._waiters.remove(waiter)
                deferred.callback(None)

    async def until(self, condition, what: str) -> None:
        if condition():
            return
        deferred: defer.Deferred = defer.Deferred()
        self._waiters.append((condition, deferred))
        timer = reactor.callLater(WAIT_SECONDS, lambda: deferred.called or deferred.errback(
            AssertionError(f"gave up waiting for {what}; got {self.frames}, closed {self.close_code}")))
        try:
            await deferred
        finally:
            if timer.active():
                timer.cancel()

    def send(self, op: int, d=None) -> None:
        self._protocol.sendMessage(json.dumps({"op": op, "d": d}).encode("utf-8"), isBinary=False)

    def send_raw(self, data: bytes) -> None:
        self._protocol.sendMessage(data, isBinary=False)

    def dispatches(self, name: str | None = None) -> list[dict]:
        return [f for f in self.frames if f.get("op") == 0 and (name is None or f.get("t") == name)]

    async def dispatch(self, name: str, match=lambda d: True) -> dict:
        def found():
            return [f for f in self.dispatches(name) if match(f["d"])]
        await self.until(lambda: bool(found()), name)
        return found()[0]

    async def closed(self) -> int:
        await self.until(lambda: self.close_code is not None, "the socket to close")
        return self.close_code

    def drop(self) -> None:
        """The network goes away: no close handshake."""
        self._protocol.transport.abortConnection()

    async def identify(self, token: str) -> dict:
        await self.until(lambda: any(f.get("op") == 10 for f in self.frames), "HELLO")
        self.send(2, {"token": token})
        return (await self.dispatch("READY"))["d"]

"""Gateway frames and the WebSocket protocol (autobahn) that speaks them.

A frame is a JSON text message ``{op, d, s, t}`` (``s`` and ``t`` only on dispatches).
The protocol object owns one socket: it says HELLO, watches heartbeats, parses client
frames and hands IDENTIFY / RESUME / PRESENCE_UPDATE to the gateway; the session it is
attached to pushes dispatches through ``send_text``.
"""

from __future__ import annotations

import json
import struct

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import defer
from twisted.logger import Logger

log = Logger(namespace="drocsid.gateway")

# Opcodes
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE_UPDATE = 3
RESUME = 6
RECONNECT = 7
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

CLIENT_OPS = frozenset({HEARTBEAT, IDENTIFY, PRESENCE_UPDATE, RESUME})

# Close codes (documented in docs/api.md "Gateway").
CLOSE_UNKNOWN_ERROR = 4000      # also used after RECONNECT at shutdown: reconnect and resume
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002       # not a JSON object frame, or a binary frame
CLOSE_NOT_AUTHENTICATED = 4003  # anything but HEARTBEAT / IDENTIFY / RESUME before identifying
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_PAYLOAD = 4006    # a known op with a malformed ``d``
CLOSE_TOO_MANY_SESSIONS = 4008
CLOSE_SESSION_TIMED_OUT = 4009  # no heartbeat within 1.5 intervals

MAX_FRAME_BYTES = 64 * 1024
OPEN_HANDSHAKE_SECS = 30   # a socket that has not finished the upgrade by then is dropped
CLOSE_HANDSHAKE_SECS = 5   # nor one that does not answer our close


class FrameError(Exception):
    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def encode(op: int, d=None) -> str:
    return json.dumps({"op": op, "d": d}, ensure_ascii=False, separators=(",", ":"))


class DispatchTemplate:
    """One dispatch's frame, its payload encoded once: only the sequence differs from
    one session to the next."""

    __slots__ = ("_head", "_tail")

    def __init__(self, name: str, payload_json: str):
        self._head = ('{"op":0,"t":' + json.dumps(name)).encode("utf-8")
        self._tail = (',"d":' + payload_json + "}").encode("utf-8")

    def frame(self, seq: int | None) -> bytes:
        if seq is None:
            return self._head + self._tail
        return b"".join((self._head, b',"s":', str(seq).encode("ascii"), self._tail))


def dispatch_text(name: str, payload_json: str, seq: int | None) -> bytes:
    return DispatchTemplate(name, payload_json).frame(seq)


def text_frame(data: bytes) -> bytes:
    """A complete, unmasked, unfragmented WebSocket text frame (RFC 6455 §5.2)."""
    length = len(data)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + data


def decode(payload: bytes, is_binary: bool) -> tuple[int, object]:
    """(op, d) of a client frame, or FrameError."""
    if is_binary:
        raise FrameError(CLOSE_DECODE_ERROR, "binary frames are not supported")
    try:
        frame = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FrameError(CLOSE_DECODE_ERROR, "frame is not JSON") from None
    if not isinstance(frame, dict):
        raise FrameError(CLOSE_DECODE_ERROR, "frame is not a JSON object")
    op = frame.get("op")
    if not isinstance(op, int) or isinstance(op, bool):
        raise FrameError(CLOSE_DECODE_ERROR, "frame has no integer 'op'")
    if op not in CLIENT_OPS:
        raise FrameError(CLOSE_UNKNOWN_OPCODE, f"unknown opcode {op}")
    return op, frame.get("d")


class GatewayProtocol(WebSocketServerProtocol):
    """One socket. ``self.session`` is set once IDENTIFY or RESUME succeeded."""

    gateway = None  # set by the factory
    session = None
    closing = False
    _watchdog = None
    _drop_timer = None

    def connectionMade(self):
        super().connectionMade()
        self._drop_timer = self.gateway.clock.call_later(OPEN_HANDSHAKE_SECS, self._drop)

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()

    def _cancel_timers(self) -> None:
        for timer in (self._watchdog, self._drop_timer):
            if timer is not None and timer.active():
                timer.cancel()

    def onOpen(self):
        self._cancel_timers()
        self.gateway.connections.add(self)
        self._busy = False  # an IDENTIFY / RESUME in progress
        self._last_heartbeat = self.gateway.clock.time_ms()
        interval = self.gateway.heartbeat_interval_ms
        self._watchdog = self.gateway.clock.call_later(interval * 1.5 / 1000, self._check_heartbeat)
        self.send_text(encode(HELLO, {"heartbeat_interval": interval}))

    def _check_heartbeat(self) -> None:
        if self.closing:
            return
        interval = self.gateway.heartbeat_interval_ms
        silent = self.gateway.clock.time_ms() - self._last_heartbeat
        limit = interval * 1.5
        if silent >= limit:
            self.close(CLOSE_SESSION_TIMED_OUT, "no heartbeat")
            return
        self._watchdog = self.gateway.clock.call_later((limit - silent) / 1000, self._check_heartbeat)

    def send_text(self, text) -> None:
        """Send one text frame (str, or UTF-8 bytes). Written straight to the transport:
        autobahn's sendMessage formats debug log arguments on every call, which at a
        thousand sockets per dispatch is most of the cost. No extension (compression)
        is ever negotiated, so a plain frame is always right."""
        if self.closing or self.state != self.STATE_OPEN:
            return
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.transport.write(text_frame(data))

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self._cancel_timers()
        self.sendClose(code, reason)
        self._drop_timer = self.gateway.clock.call_later(CLOSE_HANDSHAKE_SECS, self._drop)
        self._detach()

    def onMessage(self, payload, isBinary):
        if self.closing:
            return
        if len(payload) > MAX_FRAME_BYTES:
            self.close(CLOSE_DECODE_ERROR, "frame too large")
            return
        try:
            op, d = decode(payload, isBinary)
        except FrameError as error:
            self.close(error.code, error.reason)
            return
        if op == HEARTBEAT:
            self._last_heartbeat = self.gateway.clock.time_ms()
            if self.session is not None and isinstance(d, int) and not isinstance(d, bool):
                self.gateway.acknowledge(self.session, d)
            self.send_text(encode(HEARTBEAT_ACK))
            return
        if op in (IDENTIFY, RESUME):
            if self.session is not None or self._busy:
                self.close(CLOSE_ALREADY_AUTHENTICATED, "already identified")
                return
            self._busy = True
            start = self.gateway.identify if op == IDENTIFY else self.gateway.resume
            task = self.gateway.track(defer.ensureDeferred(start(self, d)))
            task.addErrback(self._failed)
            task.addBoth(self._done)
            return
        if self.session is None:
            self.close(CLOSE_NOT_AUTHENTICATED, "not identified")
            return
        task = self.gateway.track(defer.ensureDeferred(self.gateway.update_presence(self, d)))
        task.addErrback(self._failed)

    def _done(self, _):
        self._busy = False

    def _failed(self, failure):
        if failure.check(FrameError):
            self.close(failure.value.code, failure.value.reason)
            return None
        log.failure("gateway request failed", failure)
        self.close(CLOSE_UNKNOWN_ERROR, "internal error")
        return None

    def onClose(self, wasClean, code, reason):
        self.closing = True
        self._cancel_timers()
        if self.gateway is not None:
            self.gateway.connections.discard(self)
        self._detach()

    def _detach(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            self.gateway.detach(session, self)


def build_factory(gateway) -> WebSocketServerFactory:
    factory = WebSocketServerFactory()
    # A subclass per gateway: several homeservers may run in one process (tests).
    factory.protocol = type("BoundGatewayProtocol", (GatewayProtocol,), {"gateway": gateway})
    # autobahn's own handshake timeouts leave timers behind once cancelled (txaio's
    # batched timers); the protocol keeps its own, cancellable, instead.
    factory.setProtocolOptions(maxMessagePayloadSize=MAX_FRAME_BYTES, maxFramePayloadSize=MAX_FRAME_BYTES,
                               openHandshakeTimeout=0, closeHandshakeTimeout=0)
    return factory

"""The notifier: every write advances a stream, and whoever waits on it is woken.

Streams: room events, account data, receipts, typing, to-device messages, device-list
changes, presence. Readers (sync, the gateway,
federation and appservice senders) hold a position per stream and read what is newer
from storage; the notifier only tells them that something is, and for whom: room
streams wake the listeners of that room, user streams the listeners of that user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.events.event import Event

log = Logger()

STREAMS = ("events", "account_data", "receipts", "typing", "to_device", "device_lists", "presence")


@dataclass(frozen=True)
class StreamToken:
    """A position in every stream; /sync's ``since`` and ``next_batch``."""
    events: int = 0
    account_data: int = 0
    receipts: int = 0
    typing: int = 0
    to_device: int = 0
    device_lists: int = 0
    presence: int = 0

    def serialize(self) -> str:
        return "s" + "_".join(str(getattr(self, stream)) for stream in STREAMS)

    @classmethod
    def parse(cls, text: str) -> "StreamToken":
        if not text.startswith("s"):
            raise ValueError(text)
        parts = [int(p) for p in text[1:].split("_")]
        # Tokens of an older server version have fewer streams: the rest start at 0.
        if not 4 <= len(parts) <= len(STREAMS) or any(p < 0 for p in parts):
            raise ValueError(text)
        return cls(*parts)

    def advanced_past(self, other: "StreamToken") -> bool:
        return any(getattr(self, s) > getattr(other, s) for s in STREAMS)


class _Listener:
    def __init__(self, user_id: str, rooms: frozenset[str]):
        self.user_id = user_id
        self.rooms = rooms
        self.woken: defer.Deferred = defer.Deferred()

    def wake(self) -> None:
        if not self.woken.called:
            self.woken.callback(None)


class Notifier:
    def __init__(self):
        self._positions = {stream: 0 for stream in STREAMS}
        self._event_listeners: list[Callable[[Event], None]] = []
        self._by_room: dict[str, set[_Listener]] = {}
        self._by_user: dict[str, set[_Listener]] = {}
        self._closing = False

    def current_token(self) -> StreamToken:
        return StreamToken(**self._positions)

    def set_position(self, stream: str, position: int) -> None:
        """At start: where each stream stands in storage."""
        self._positions[stream] = max(self._positions[stream], position)

    @property
    def events_position(self) -> int:
        return self._positions["events"]

    def add_event_listener(self, listener: Callable[[Event], None]) -> None:
        """Called for every new event (federation sender, appservices, gateway)."""
        self._event_listeners.append(listener)

    def on_new_event(self, event: Event) -> None:
        self._advance("events", event.stream_ordering or 0)
        for listener in self._event_listeners:
            try:
                listener(event)
            except Exception:
                log.failure("event listener failed")
        # A member event also concerns its target, who may not be in the room yet.
        targets = [event.state_key] if event.type == "m.room.member" and event.state_key else []
        self._wake(rooms=[event.room_id], users=targets)

    def on_room_stream(self, stream: str, position: int, room_id: str) -> None:
        self._advance(stream, position)
        self._wake(rooms=[room_id], users=[])

    def on_user_stream(self, stream: str, position: int, user_id: str) -> None:
        self._advance(stream, position)
        self._wake(rooms=[], users=[user_id])

    def _advance(self, stream: str, position: int) -> None:
        if position > self._positions[stream]:
            self._positions[stream] = position

    def _wake(self, rooms: Iterable[str], users: Iterable[str]) -> None:
        woken: set[_Listener] = set()
        for room_id in rooms:
            woken |= self._by_room.get(room_id, set())
        for user_id in users:
            woken |= self._by_user.get(user_id, set())
        for listener in woken:
            listener.wake()

    def listen(self, user_id: str, rooms: Iterable[str]) -> "_Listener":
        """Start listening *before* reading, so nothing written meanwhile is missed."""
        listener = _Listener(user_id, frozenset(rooms))
        self._by_user.setdefault(user_id, set()).add(listener)
        for room_id in listener.rooms:
            self._by_room.setdefault(room_id, set()).add(listener)
        return listener

    async def wait(self, listener: "_Listener", timeout: float, clock) -> None:
        """Until something for the listener happened (since ``listen``) or ``timeout`` s."""
        if timeout > 0 and not listener.woken.called and not self._closing:
            timer = clock.call_later(timeout, listener.wake)
            try:
                await listener.woken
            finally:
                if timer.active():
                    timer.cancel()

    def wake_everyone(self) -> None:
        """At shutdown: end every long-poll now (and any that starts later), so in-flight
        requests can finish."""
        self._closing = True
        for listeners in list(self._by_user.values()):
            for listener in list(listeners):
                listener.wake()

    def stop_listening(self, listener: "_Listener") -> None:
        self._discard(listener)

    def _discard(self, listener: _Listener) -> None:
        users = self._by_user.get(listener.user_id)
        if users is not None:
            users.discard(listener)
            if not users:
                del self._by_user[listener.user_id]
        for room_id in listener.rooms:
            listeners = self._by_room.get(room_id)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._by_room[room_id]

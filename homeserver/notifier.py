"""The notifier: every persisted event advances the stream, and whoever waits is woken.

Readers (sync, gateway, federation and appservice senders) hold a stream position and
read what is newer from storage; the notifier only tells them that something is.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.events.event import Event

log = Logger()


class Notifier:
    def __init__(self):
        self.events_position = 0
        self._listeners: list[Callable[[Event], None]] = []
        self._waiters: list[defer.Deferred] = []

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        self._listeners.append(listener)

    def on_new_event(self, event: Event) -> None:
        if event.stream_ordering is not None and event.stream_ordering > self.events_position:
            self.events_position = event.stream_ordering
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.failure("event listener failed")
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(self.events_position)

    def wait_for_events(self, after: int) -> defer.Deferred:
        """Fires with the new position once the stream is past ``after``."""
        if self.events_position > after:
            return defer.succeed(self.events_position)
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

"""Time as the homeserver sees it: the reactor's clock, so tests can drive it."""

from __future__ import annotations


class Clock:
    def __init__(self, reactor):
        self._reactor = reactor

    def time(self) -> float:
        return self._reactor.seconds()

    def time_ms(self) -> int:
        return int(self._reactor.seconds() * 1000)

    def call_later(self, delay: float, func, *args, **kwargs):
        return self._reactor.callLater(delay, func, *args, **kwargs)

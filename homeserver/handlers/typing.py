"""Typing notifications: in memory, each with a timeout, as a stream position per change.

Typing is ephemeral by design: a restart forgets who was typing, which is what a user
would expect after a few seconds anyway.
"""

from __future__ import annotations

from homeserver.clock import Clock
from homeserver.notifier import Notifier

MAX_TIMEOUT_MS = 120_000


class TypingHandler:
    def __init__(self, clock: Clock, notifier: Notifier):
        self._clock = clock
        self._notifier = notifier
        self._position = 0
        self._typing: dict[str, dict[str, object]] = {}  # room -> user -> expiry timer
        self._changed_at: dict[str, int] = {}  # room -> position of its last change

    @property
    def position(self) -> int:
        return self._position

    def set_typing(self, room_id: str, user_id: str, typing: bool, timeout_ms: int = 30_000) -> None:
        users = self._typing.setdefault(room_id, {})
        timer = users.pop(user_id, None)
        if timer is not None and timer.active():
            timer.cancel()
        if typing:
            delay = min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
            users[user_id] = self._clock.call_later(delay, self.set_typing, room_id, user_id, False)
        elif timer is None:
            return  # was not typing: nothing changes
        if not users:
            self._typing.pop(room_id, None)
        self._position += 1
        self._changed_at[room_id] = self._position
        self._notifier.on_room_stream("typing", self._position, room_id)

    def typing_in(self, room_id: str) -> list[str]:
        return sorted(self._typing.get(room_id, {}))

    def changed_since(self, room_id: str, position: int) -> bool:
        return self._changed_at.get(room_id, 0) > position

    def stop(self) -> None:
        """Cancel the expiry timers (shutdown): nobody is typing into a stopped server."""
        for users in self._typing.values():
            for timer in users.values():
                if timer.active():
                    timer.cancel()
        self._typing.clear()

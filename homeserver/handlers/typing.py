"""Typing notifications: in memory, each with a timeout, as a stream position per change.

Typing is ephemeral by design: a restart forgets who was typing, which is what a user
would expect after a few seconds anyway.

Local changes (``set_typing``, and a local user's typing running out) are told to the
listeners (federation sends them on); other servers' users' typing arrives through
``set_remote_typing`` and runs out after ``REMOTE_TIMEOUT_MS`` unless refreshed.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from homeserver.clock import Clock
from homeserver.notifier import Notifier

log = Logger()

MAX_TIMEOUT_MS = 120_000
# Typing EDUs carry no timeout: a remote user stops typing after this without an update.
REMOTE_TIMEOUT_MS = 30_000

TypingListener = Callable[[str, str, bool], None]  # (room_id, user_id, typing)


class TypingHandler:
    def __init__(self, clock: Clock, notifier: Notifier):
        self._clock = clock
        self._notifier = notifier
        self._position = 0
        self._typing: dict[str, dict[str, object]] = {}  # room -> user -> expiry timer
        self._changed_at: dict[str, int] = {}  # room -> position of its last change
        self._listeners: list[TypingListener] = []

    @property
    def position(self) -> int:
        return self._position

    def add_listener(self, listener: TypingListener) -> None:
        """Called for every typing update of a local user (a refresh included)."""
        self._listeners.append(listener)

    def set_typing(self, room_id: str, user_id: str, typing: bool, timeout_ms: int = 30_000) -> None:
        if self._update(room_id, user_id, typing, timeout_ms, local=True):
            for listener in self._listeners:
                try:
                    listener(room_id, user_id, typing)
                except Exception:
                    log.failure("typing listener failed")

    def set_remote_typing(self, room_id: str, user_id: str, typing: bool) -> None:
        """Another server's user (checked by the caller) started or stopped typing."""
        self._update(room_id, user_id, typing, REMOTE_TIMEOUT_MS, local=False)

    def _update(self, room_id: str, user_id: str, typing: bool, timeout_ms: int, local: bool) -> bool:
        users = self._typing.setdefault(room_id, {})
        timer = users.pop(user_id, None)
        if timer is not None and timer.active():
            timer.cancel()
        if typing:
            delay = min(max(timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
            expire = self.set_typing if local else self.set_remote_typing
            users[user_id] = self._clock.call_later(delay, expire, room_id, user_id, False)
        elif timer is None:
            if not users:
                self._typing.pop(room_id, None)
            return False  # was not typing: nothing changes
        if not users:
            self._typing.pop(room_id, None)
        self._position += 1
        self._changed_at[room_id] = self._position
        self._notifier.on_room_stream("typing", self._position, room_id)
        return True

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

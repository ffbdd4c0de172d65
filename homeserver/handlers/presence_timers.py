"""Presence that follows the user: idle after 5 minutes without client-reported activity
(a gateway PRESENCE_UPDATE "online", which the web client repeats at most every 30 s while
the user is active, or a /sync with set_presence=online), except in voice; offline once a
/sync client stops polling and no gateway connection is left (the gateway itself says
offline when a user's last socket goes). A sweep every 15 s applies both; the changes go
out as every presence change does: the gateway, /sync and federation."""

from __future__ import annotations

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

IDLE_AFTER_MS = 5 * 60 * 1000
SYNC_GONE_AFTER_MS = 90 * 1000  # long polls come back within 30 s; three missed is gone
SWEEP_SECS = 15


class PresenceTimers:
    def __init__(self, hs):
        self.hs = hs
        self.last_active: dict[str, int] = {}
        self.last_sync: dict[str, int] = {}
        self._loop = None

    def active(self, user_id: str) -> None:
        self.last_active[user_id] = self.hs.clock.time_ms()

    def synced(self, user_id: str, present: bool) -> None:
        now = self.hs.clock.time_ms()
        self.last_sync[user_id] = now
        if present:
            self.last_active[user_id] = now

    def start(self) -> None:
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.hs.reactor
        self._loop.start(SWEEP_SECS, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        self.hs.run_in_background("presence_sweep", self.sweep())

    def _connected(self, user_id: str) -> bool:
        gateway = getattr(self.hs, "gateway", None)
        return gateway is not None and any(s.connection is not None for s in gateway.registry.of_user(user_id))

    async def sweep(self) -> None:
        now = self.hs.clock.time_ms()
        presence = self.hs.presence
        for user_id, (state, _message, since) in list(presence.current().items()):
            if state == "online":
                quiet = now - self.last_active.get(user_id, since)
                if quiet >= IDLE_AFTER_MS and user_id not in self.hs.voice.in_voice:
                    await presence.set_state(user_id, "unavailable", keep_status=True)
                    continue
            synced = self.last_sync.get(user_id)
            if state != "offline" and synced is not None and now - synced >= SYNC_GONE_AFTER_MS \
                    and not self._connected(user_id):
                del self.last_sync[user_id]
                await presence.set_state(user_id, "offline", keep_status=True)

"""Presence: online, unavailable (idle), offline, set by clients (PUT /presence or
/sync's ``set_presence``) and shown to the users who share a room.

"invisible" users set ``offline`` themselves; Drocsid's do-not-disturb travels as
``unavailable`` with ``status_msg`` (DESIGN.md §2). Changes are stored (a stream row)
and wake the /sync of everyone who shares a room with the user.

A local user's changes are also told to the listeners (federation sends them to the
servers sharing a room); other servers' users' presence is stored through
``apply_remote``.
"""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

from homeserver.http.errors import MatrixError
from storage.stores.presence import PresenceRow

log = Logger()

STATES = ("online", "unavailable", "offline")
MAX_STATUS_MSG = 1000
# A sync that says "online" refreshes last_active at most this often (no write per sync).
REFRESH_MS = 60_000

PresenceListener = Callable[[str, dict], None]  # (user_id, content as a presence event shows it)


class PresenceHandler:
    def __init__(self, clock, store, rooms, notifier):
        self._clock = clock
        self._store = store
        self._rooms = rooms
        self._notifier = notifier
        self._current: dict[str, tuple[str, str | None, int]] = {}
        self._listeners: list[PresenceListener] = []

    def current(self) -> dict[str, tuple[str, str | None, int]]:
        """Local users' last set presence: user ID -> (state, status_msg, set at ms)."""
        return dict(self._current)

    def add_listener(self, listener: PresenceListener) -> None:
        """Called for every stored presence change of a local user (refreshes included)."""
        self._listeners.append(listener)

    async def set_state(self, user_id: str, state: str, status_msg: str | None = None,
                        keep_status: bool = False) -> None:
        if state not in STATES:
            raise MatrixError(400, "M_INVALID_PARAM", f"presence must be one of {', '.join(STATES)}")
        if status_msg is not None and len(status_msg) > MAX_STATUS_MSG:
            raise MatrixError(400, "M_TOO_LARGE", "status_msg is too long")
        now = self._clock.time_ms()
        previous = self._current.get(user_id)
        if keep_status and previous is not None:
            status_msg = previous[1]
        if previous is not None and previous[0] == state and previous[1] == status_msg \
                and now - previous[2] < REFRESH_MS:
            return
        self._current[user_id] = (state, status_msg, now)
        stream_id = await self._store.put(user_id, state, status_msg, now)
        await self._notify(user_id, stream_id)
        content = self._content(PresenceRow(user_id, state, status_msg, now, stream_id))
        for listener in self._listeners:
            try:
                listener(user_id, content)
            except Exception:
                log.failure("presence listener failed")

    async def apply_remote(self, user_id: str, state: str, status_msg: str | None, last_active_ts: int) -> None:
        """Presence of another server's user (checked by the caller): stored and shown to
        those who share a room, not told to the listeners."""
        if state not in STATES:
            raise MatrixError(400, "M_INVALID_PARAM", f"presence must be one of {', '.join(STATES)}")
        if status_msg is not None and len(status_msg) > MAX_STATUS_MSG:
            status_msg = status_msg[:MAX_STATUS_MSG]
        stream_id = await self._store.put(user_id, state, status_msg, min(last_active_ts, self._clock.time_ms()))
        await self._notify(user_id, stream_id)

    async def _notify(self, user_id: str, stream_id: int) -> None:
        self._notifier.on_user_stream("presence", stream_id, user_id)
        for room_id in await self._rooms.get_rooms_for_user(user_id):
            self._notifier.on_room_stream("presence", stream_id, room_id)

    async def get(self, user_id: str) -> dict:
        rows = await self._store.get([user_id])
        if not rows:
            return {"presence": "offline"}
        return self._content(rows[0])

    def _content(self, row) -> dict:
        now = self._clock.time_ms()
        content = {"presence": row.state, "last_active_ago": max(0, now - row.last_active_ts),
                   "currently_active": row.state == "online" and now - row.last_active_ts < 5 * 60_000}
        if row.status_msg is not None:
            content["status_msg"] = row.status_msg
        return content

    async def sync_section(self, user_id: str, device_id: str, since, token) -> tuple[dict, bool]:
        """Presence of the users who share a room with ``user_id`` (and their own)."""
        if since is not None and since.presence >= token.presence:
            return {"presence": {"events": []}}, False  # no presence changed anywhere since
        visible = await self._rooms.users_sharing_rooms(user_id)
        rows = await self._store.get(sorted(visible), 0 if since is None else since.presence)
        rows = [r for r in rows if r.stream_id <= token.presence]
        events = [{"type": "m.presence", "sender": r.user_id, "content": self._content(r)} for r in rows]
        return {"presence": {"events": events}}, bool(events) and since is not None

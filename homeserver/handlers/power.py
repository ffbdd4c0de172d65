"""Power-level questions about a room's current state, for checks beyond the auth rules
(may this user redact others' events, remove an alias ...)."""

from __future__ import annotations

from homeserver.events.auth_rules import event_power_level, power_level_for, user_power_level
from homeserver.handlers.room_heads import RoomHeads
from storage.stores.events import EventStore

_KEYS = (("m.room.power_levels", ""), ("m.room.create", ""))


class PowerLevels:
    def __init__(self, heads: RoomHeads, events: EventStore):
        self._heads = heads
        self._events = events

    async def _state(self, room_id: str):
        head = await self._heads.get(room_id)
        if head is None:
            return None, {}
        ids = {k: head.state[k] for k in _KEYS if k in head.state}
        loaded = await self._events.get_events(ids.values())
        return head, {k: loaded[v] for k, v in ids.items() if v in loaded}

    async def user_level(self, room_id: str, user_id: str) -> float:
        head, state = await self._state(room_id)
        return user_power_level(head.version, state, user_id) if head else 0

    async def can(self, user_id: str, room_id: str, action: str) -> bool:
        """``action``: invite, kick, ban or redact."""
        head, state = await self._state(room_id)
        return head is not None and user_power_level(head.version, state, user_id) >= power_level_for(state, action)

    async def can_send_state(self, user_id: str, room_id: str, event_type: str) -> bool:
        head, state = await self._state(room_id)
        if head is None:
            return False
        return user_power_level(head.version, state, user_id) >= event_power_level(state, event_type, True)

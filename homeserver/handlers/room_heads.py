"""The head of each room in memory: forward extremities, current state and its group.

A send builds on the head and updates it after its transaction commits, so a plain
message costs no database read for state. The head is loaded from the database on first
use and dropped whenever a write fails, so it never runs ahead of what is durable.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.events.room_versions import RoomVersion, room_version
from storage.stores.events import EventStore, GroupRef
from storage.stores.rooms import RoomStore
from storage.stores.state import StateKey, StateStore, group_depth_txn


@dataclass
class RoomHead:
    room_id: str
    version: RoomVersion
    extremities: list[str]
    # Current state; a new dict replaces it on every state change (readers may hold the old one).
    state: dict[StateKey, str]
    # The state group that holds ``state``, when there is one (None after a resolution
    # across forks, until a new state event stores a group). It may still be queued.
    state_group: GroupRef | None
    max_depth: int


class RoomHeads:
    def __init__(self, rooms: RoomStore, events: EventStore, state: StateStore):
        self._rooms = rooms
        self._events = events
        self._state = state
        self._heads: dict[str, RoomHead] = {}

    def peek(self, room_id: str) -> RoomHead | None:
        return self._heads.get(room_id)

    async def get(self, room_id: str) -> RoomHead | None:
        head = self._heads.get(room_id)
        if head is not None:
            return head
        stored = await self._rooms.get_room_head(room_id)
        if stored is None:
            return None
        group = None
        if len(stored.extremities) == 1:
            rows = await self._events.get_event_rows(stored.extremities)
            row = rows.get(stored.extremities[0])
            if row is not None and row.state_group is not None:
                depth = await self._state.db.run_interaction("group_depth", group_depth_txn, row.state_group)
                group = GroupRef(row.state_group, depth)
        head = RoomHead(room_id, room_version(stored.room_version), stored.extremities, stored.current_state,
                        group, stored.max_depth)
        self._heads[room_id] = head
        return head

    def set(self, head: RoomHead) -> None:
        self._heads[head.room_id] = head

    def forget(self, room_id: str) -> None:
        self._heads.pop(room_id, None)

"""Who is joined to and invited into a room, from its current state, computed once per
state change: /sync reads it for every room summary and every unread count, and in a
room of thousands that must not mean loading thousands of member events each time."""

from __future__ import annotations

from dataclasses import dataclass

from storage.cache import LruCache


@dataclass(frozen=True)
class RoomMembers:
    joined: tuple[str, ...]
    invited: tuple[str, ...]


class RoomMembersCache:
    def __init__(self, heads, writer, size: int = 10_000):
        self._heads = heads
        self._writer = writer
        # room -> (the state dict it was computed from, the answer). A head's state is
        # replaced, never changed in place, so identity says whether it is still current.
        self._cache: LruCache[str, tuple[dict, RoomMembers]] = LruCache(size)

    async def get(self, room_id: str) -> RoomMembers:
        head = await self._heads.get(room_id)
        if head is None:
            return RoomMembers((), ())
        state = head.state
        cached = self._cache.get(room_id)
        if cached is not None and cached[0] is state:
            return cached[1]
        member_ids = [v for (t, _), v in state.items() if t == "m.room.member"]
        events = await self._writer.get_events(member_ids)
        members = RoomMembers(tuple(sorted(e.state_key for e in events.values() if e.membership == "join")),
                              tuple(sorted(e.state_key for e in events.values() if e.membership == "invite")))
        self._cache.set(room_id, (state, members))
        return members

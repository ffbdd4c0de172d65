"""The published room directory: ``/publicRooms`` and ``/directory/list/room/{roomId}``.

A room is listed once published (``rooms.is_public``: createRoom with visibility
``public``, or ``PUT /directory/list/room``). Its entry is summarised from the current
state on every request. Rooms are ordered by joined members (most first), then room
ID; pagination tokens are offsets into that order, so a client repeats the same filter
with each token.
"""

from __future__ import annotations

from typing import Any

from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from storage.stores.directory import DirectoryStore, RoomSummary

# Without a limit the whole directory is answered, up to this many rooms.
MAX_LIMIT = 1000
MAX_SEARCH_TERM = 256


def _parse_since(since: str | None) -> int:
    if since is None:
        return 0
    if since.startswith("o"):
        try:
            offset = int(since[1:])
        except ValueError:
            offset = -1
        if offset >= 0:
            return offset
    raise invalid_param("Unknown pagination token 'since'")


def _parse_room_types(raw: Any) -> list[str | None] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(t is None or isinstance(t, str) for t in raw):
        raise invalid_param("'room_types' must be a list of strings and nulls")
    return raw


class PublicRoomsHandler:
    def __init__(self, hs, store: DirectoryStore):
        self._hs = hs
        self._store = store

    async def list_rooms(self, *, limit: int | None = None, since: str | None = None,
                         search_term: str | None = None, room_types: Any = None,
                         third_party_instance_id: str | None = None) -> dict:
        if limit is not None and limit < 0:
            raise invalid_param("'limit' must not be negative")
        offset = _parse_since(since)
        types = _parse_room_types(room_types)
        if third_party_instance_id is not None:
            # No application service publishes rooms to a third-party network here.
            return {"chunk": [], "total_room_count_estimate": 0}
        summaries = await self._store.room_summaries(await self._store.published_room_ids())
        rooms = [s for s in summaries.values() if types is None or s.room_type in types]
        term = (search_term or "").strip().casefold()[:MAX_SEARCH_TERM]
        if term:
            aliases = await self._store.aliases_of_rooms([s.room_id for s in rooms])
            rooms = [s for s in rooms if self._matches(s, term, aliases.get(s.room_id, []))]
        rooms.sort(key=lambda s: (-s.num_joined_members, s.room_id))
        page_size = min(limit, MAX_LIMIT) if limit else MAX_LIMIT
        page = rooms[offset:offset + page_size]
        body: dict[str, Any] = {"chunk": [s.chunk() for s in page], "total_room_count_estimate": len(rooms)}
        if offset + page_size < len(rooms):
            body["next_batch"] = f"o{offset + page_size}"
        if offset > 0:
            body["prev_batch"] = f"o{max(0, offset - page_size)}"
        return body

    @staticmethod
    def _matches(summary: RoomSummary, term: str, aliases: list[str]) -> bool:
        fields = [summary.name, summary.topic, summary.canonical_alias, *aliases]
        return any(term in value.casefold() for value in fields if value)

    async def get_visibility(self, room_id: str) -> str:
        if await self._hs.room_heads.get(room_id) is None:
            raise not_found("Room not found")
        return "public" if await self._hs.rooms.is_room_public(room_id) else "private"

    async def set_visibility(self, user_id: str, room_id: str, visibility: str) -> None:
        if visibility not in ("public", "private"):
            raise invalid_param("'visibility' must be public or private")
        head = await self._hs.room_heads.get(room_id)
        if head is None:
            raise not_found("Room not found")
        if not await self._may_publish(user_id, room_id, head):
            raise forbidden("Only the room's creator or a user who may set its canonical alias may publish it")
        await self._hs.rooms.set_room_public(room_id, visibility == "public")

    async def _may_publish(self, user_id: str, room_id: str, head) -> bool:
        user = await self._hs.users.get_user(user_id)
        if user is not None and user.admin:
            return True
        if await self._hs.membership.current_membership(room_id, user_id) != "join":
            return False
        create_id = head.state.get(("m.room.create", ""))
        create = (await self._hs.events.get_events([create_id])).get(create_id) if create_id else None
        if create is not None:
            creators = [create.sender]
            extra = create.content.get("additional_creators")
            if isinstance(extra, list):
                creators += [c for c in extra if isinstance(c, str)]
            if user_id in creators:
                return True
        try:
            return await self._hs.power.can_send_state(user_id, room_id, "m.room.canonical_alias")
        except MatrixError:
            return False

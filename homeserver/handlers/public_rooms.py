"""The published room directory: ``/publicRooms`` and ``/directory/list/room/{roomId}``.

A room is listed once published (``rooms.is_public``: createRoom with visibility
``public``, or ``PUT /directory/list/room``). Its entry is summarised from the current
state on every request. Rooms are ordered by joined members (most first), then room
ID; pagination tokens are offsets into that order, so a client repeats the same filter
with each token.

The directory of another server (``server=``) is asked of that server over federation
(``/_matrix/federation/v1/publicRooms``: GET, or POST when there is a filter) and
answered as it comes.
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


def remote_error(server: str, error: Exception) -> MatrixError:
    """The client's error for a failed request to another server: its own 4xx answers
    pass through, anything else is a 502."""
    status = getattr(error, "status", None)
    errcode = getattr(error, "errcode", None)
    if isinstance(status, int) and 400 <= status < 500 and status != 429 and errcode:
        return MatrixError(status, errcode, f"{server}: {getattr(error, 'message', '') or error}")
    return MatrixError(502, "M_UNKNOWN", f"Could not get an answer from {server}: {error}")


class PublicRoomsHandler:
    def __init__(self, hs, store: DirectoryStore):
        self._hs = hs
        self._store = store

    async def list_rooms(self, *, limit: int | None = None, since: str | None = None,
                         search_term: str | None = None, room_types: Any = None,
                         third_party_instance_id: str | None = None, server: str | None = None,
                         include_all_networks: bool = False) -> dict:
        if limit is not None and limit < 0:
            raise invalid_param("'limit' must not be negative")
        if server is not None and server != self._hs.config.server_name:
            return await self._remote_rooms(server, limit, since, search_term, room_types,
                                            third_party_instance_id, include_all_networks)
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

    async def _remote_rooms(self, server: str, limit: int | None, since: str | None, search_term: str | None,
                            room_types: Any, third_party_instance_id: str | None,
                            include_all_networks: bool) -> dict:
        client = getattr(self._hs, "federation_client", None)
        if client is None:
            raise MatrixError(404, "M_NOT_FOUND", "Room directories of other servers need federation, "
                                                  "which is not enabled")
        path = "/_matrix/federation/v1/publicRooms"
        try:
            if search_term or room_types is not None:
                body: dict[str, Any] = {"include_all_networks": include_all_networks}
                if limit is not None:
                    body["limit"] = limit
                if since is not None:
                    body["since"] = since
                if third_party_instance_id is not None:
                    body["third_party_instance_id"] = third_party_instance_id
                filter_body: dict[str, Any] = {}
                if search_term:
                    filter_body["generic_search_term"] = search_term
                if room_types is not None:
                    filter_body["room_types"] = _parse_room_types(room_types)
                body["filter"] = filter_body
                answer = await client.post_json(server, path, body, timeout=30)
            else:
                query: dict[str, Any] = {"include_all_networks": include_all_networks}
                if limit is not None:
                    query["limit"] = limit
                if since is not None:
                    query["since"] = since
                if third_party_instance_id is not None:
                    query["third_party_instance_id"] = third_party_instance_id
                answer = await client.get_json(server, path, query=query, timeout=30)
        except Exception as error:
            raise remote_error(server, error) from None
        chunk = answer.get("chunk")
        result: dict[str, Any] = {"chunk": [r for r in chunk if isinstance(r, dict)] if isinstance(chunk, list)
                                  else []}
        for name in ("next_batch", "prev_batch"):
            if isinstance(answer.get(name), str):
                result[name] = answer[name]
        if isinstance(answer.get("total_room_count_estimate"), int):
            result["total_room_count_estimate"] = answer["total_room_count_estimate"]
        return result

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

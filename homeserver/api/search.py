"""``GET /search``: message search over the homeserver's search index, limited to what
the user may read now.

Unlike the original (which searched every channel of the instance for anyone), only
messages of channels where the user currently holds VIEW_CHANNEL and
READ_MESSAGE_HISTORY (computed per channel from the server's state), and of the direct
messages they are in (``m.direct``), are searched; each hit is also checked against the
room's history visibility, as ``/channels/{id}/messages`` does. An edit's text finds
its message; deleted messages are never found. Results are newest first, in the
``/api/v1`` message shape, with ``total`` (counted up to ``MAX_TOTAL``).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.servers import member_server, require
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.messages import MAX_LIMIT, Messages
from homeserver.drocsid.server_state import Server, load_server, server_of_channel, user_servers
from homeserver.http.errors import invalid_param, missing_param, not_found
from homeserver.http.request import query_int, query_str
from storage.stores.search import SearchCriteria, parse_search_query

DEFAULT_LIMIT = 25
MAX_OFFSET = 1000
MAX_TOTAL = 1000          # matches counted for 'total'
_MAX_SCANNED = 5000       # index rows read per request at most
_BATCH = 250
_READ = int(perms.P.VIEW_CHANNEL | perms.P.READ_MESSAGE_HISTORY)
_MEDIA = frozenset({"m.image", "m.file", "m.video", "m.audio"})
_LINK = re.compile(r"\bhttps?://[^\s<>]+", re.I)
HAS_VALUES = ("attachment", "link")


def has_kind(content: dict, kind: str) -> bool:
    """Does a message's content hold an attachment, or a link."""
    if kind == "attachment":
        return content.get("msgtype") in _MEDIA
    body = content.get("body")
    return isinstance(body, str) and _LINK.search(body) is not None


def parse_bound(name: str, text: str | None) -> tuple[str, str | int] | None:
    """``before``/``after``: a message ID ("id", event ID) or a date/time ("ts", ms):
    ISO 8601 (``2026-01-31`` or ``2026-01-31T12:00:00Z``) or milliseconds since the epoch."""
    if text is None:
        return None
    if text.startswith("$"):
        return "id", text
    if text.isdigit() and len(text) <= 15:
        return "ts", int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_param(f"'{name}' must be a message ID or an ISO 8601 date/time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return "ts", int(moment.timestamp() * 1000)


def _edit_target(event) -> str | None:
    relates = event.content.get("m.relates_to")
    if isinstance(relates, dict) and relates.get("rel_type") == "m.replace":
        target = relates.get("event_id")
        return target if isinstance(target, str) else ""
    return None


def register(api: ApiRoutes, hs) -> None:
    message_ref = {"$ref": "#/components/schemas/Message"}
    result_ref = api.schema("SearchResults", {
        "type": "object", "required": ["messages", "total"],
        "properties": {"messages": {"type": "array", "items": message_ref},
                       "total": {"type": "integer", "description": f"Matches, counted up to {MAX_TOTAL}"}},
    })

    def readable(server: Server, user_id: str) -> dict[str, tuple]:
        return {c.room_id: (server, c) for c in server.channels
                if c.kind != "category" and perms.has_permissions(server.channel_permissions(user_id, c), _READ)}

    async def direct_rooms(user_id: str) -> dict[str, tuple]:
        direct = await hs.account_data.get(user_id, "", "m.direct") or {}
        joined = set(await hs.rooms.get_rooms_for_user(user_id))
        rooms = {r for ids in direct.values() if isinstance(ids, list) for r in ids if isinstance(r, str)}
        found = {}
        for room_id in sorted(rooms & joined):
            if await server_of_channel(hs, room_id) is None and await load_server(hs, room_id) is None:
                found[room_id] = (None, None)
        return found

    async def scope(user_id: str, server_id: str | None, channel_id: str | None) -> dict[str, tuple]:
        """room_id -> (server, channel), or (None, None) for a direct message."""
        server = await member_server(hs, server_id, user_id) if server_id is not None else None
        if channel_id is not None:
            found = await server_of_channel(hs, channel_id) if channel_id.startswith("!") else None
            if found is None:
                if server is None and channel_id in await direct_rooms(user_id):
                    return {channel_id: (None, None)}
                raise not_found("Unknown channel")
            owner, channel = found
            if (server is not None and owner.room_id != server.room_id) or not owner.is_member(user_id) \
                    or channel.kind == "category":
                raise not_found("Unknown channel")
            # As /channels/{id}: members know the channel exists, so it is 403, not 404.
            require(owner.channel_permissions(user_id, channel), _READ, "VIEW_CHANNEL and READ_MESSAGE_HISTORY")
            return {channel_id: (owner, channel)}
        if server is not None:
            return readable(server, user_id)
        rooms = await direct_rooms(user_id)
        for joined in await user_servers(hs, user_id):
            loaded = await load_server(hs, joined.room_id)
            if loaded is not None:
                rooms.update(readable(loaded, user_id))
        return rooms

    async def edited_message(edit):
        """The row of the live message an edit changes (the author's own edits only), or None."""
        target = _edit_target(edit)
        row = (await hs.events.get_event_rows([target])).get(target) if target else None
        original = row.event if row is not None else None
        if original is None or original.sender != edit.sender or original.room_id != edit.room_id \
                or _edit_target(original) is not None or original.rejected or original.soft_failed:
            return None
        if (await hs.events.get_redactions([target])).get(target) is not None:
            return None
        return row

    async def search(call: ApiCall):
        request = call.request
        user_id = call.requester.user_id
        text = query_str(request, "q")
        if text is None:
            raise missing_param("q")
        query = parse_search_query(text)
        if query.empty:
            raise invalid_param("'q' must hold a word to search for")
        limit = min(query_int(request, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        offset = query_int(request, "offset", 0, minimum=0)
        if offset > MAX_OFFSET:
            raise invalid_param(f"'offset' must be at most {MAX_OFFSET}")
        has = query_str(request, "has")
        if has is not None and has not in HAS_VALUES:
            raise invalid_param("'has' must be attachment or link")
        author = query_str(request, "author_id")
        before = parse_bound("before", query_str(request, "before"))
        after = parse_bound("after", query_str(request, "after"))
        rooms = await scope(user_id, query_str(request, "server_id"), query_str(request, "channel_id"))

        async def stream_of(bound) -> int | None:
            if bound is None or bound[0] != "id":
                return None
            event = (await hs.events.get_events([bound[1]])).get(bound[1])
            if event is None or event.stream_ordering is None:
                raise invalid_param("'before' and 'after' must be known messages or dates")
            return event.stream_ordering

        before_stream, after_stream = await stream_of(before), await stream_of(after)
        before_ts = before[1] if before is not None and before[0] == "ts" else None
        after_ts = after[1] if after is not None and after[0] == "ts" else None

        await hs.discovery_follower.wait_caught_up()
        criteria = SearchCriteria(tuple(sorted(rooms)), ("content.body",), (author,) if author else None, (),
                                  "recent")
        cursor = (0.0, before_stream) if before_stream is not None else None
        matches: list = []
        seen: set[str] = set()
        scanned = 0
        while len(matches) < MAX_TOTAL and scanned < _MAX_SCANNED and rooms:
            batch = await hs.search_store.search(query, criteria, cursor, _BATCH)
            scanned += len(batch)
            # Newest first: past 'after', nothing further down can match.
            hits = [h for h in batch if after_stream is None or h.stream_ordering > after_stream]
            rows = await hs.events.get_event_rows([h.event_id for h in hits])
            for hit in hits:
                row = rows.get(hit.event_id)
                event = row.event if row is not None else None
                if event is None or event.type != "m.room.message" or event.rejected or event.soft_failed:
                    continue
                if _edit_target(event) is not None:
                    row = await edited_message(event)
                    if row is None:
                        continue
                    event = row.event
                if event.event_id in seen:
                    continue
                if before_ts is not None and event.origin_server_ts >= before_ts:
                    continue
                if after_ts is not None and event.origin_server_ts <= after_ts:
                    continue
                if after_stream is not None and event.stream_ordering <= after_stream:
                    continue
                if has is not None and not has_kind(event.content, has):
                    continue
                if not await hs.room_reader.may_see(user_id, event, row.state_group):
                    continue
                seen.add(event.event_id)
                matches.append(event)
            if len(batch) < _BATCH or len(hits) < len(batch):
                break
            cursor = (0.0, batch[-1].stream_ordering)

        matches.sort(key=lambda e: e.stream_ordering, reverse=True)
        page = matches[offset:offset + limit]
        views: dict[str, Messages] = {}
        objects = []
        for event in page:
            view = views.get(event.room_id)
            if view is None:
                server, channel = rooms[event.room_id]
                view = views[event.room_id] = _view(hs, server, channel, event.room_id, user_id)
            objects.extend(await view.objects([event]))
        return 200, {"messages": objects, "total": len(matches)}

    api.add("GET", "/search", search, tag="search", summary="Search messages one may read", response=result_ref,
            description="Query: q (words, \"phrases\", -excluded, OR), server_id, channel_id (a channel or a "
                        "direct message), author_id, has (attachment or link), before/after (a message ID or "
                        f"an ISO 8601 date/time), limit (default {DEFAULT_LIMIT}, max {MAX_LIMIT}), offset "
                        f"(max {MAX_OFFSET}). Only channels where one holds VIEW_CHANNEL and "
                        "READ_MESSAGE_HISTORY now, and one's direct messages, are searched. Newest first.")


def _view(hs, server, channel, room_id: str, user_id: str) -> Messages:
    """The message view of a channel, or of a direct message (a room of no server)."""
    if server is not None:
        return Messages(hs, server, channel, user_id)
    view = Messages.__new__(Messages)  # objects() only needs the room and the reader
    view.hs, view.server, view.channel, view.room_id, view.user_id, view.bits = hs, None, None, room_id, user_id, 0
    return view

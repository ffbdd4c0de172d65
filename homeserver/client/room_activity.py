"""Reading a room's history and marking it: /messages, typing, receipts, read markers."""

from __future__ import annotations

import json

from homeserver.events.client_format import client_event
from homeserver.handlers.filtering import parse_event_filter
from homeserver.http.errors import MatrixError, forbidden, invalid_param
from homeserver.http.request import field, parse_json_object, query_int, query_str
from homeserver.http.router import CLIENT_PREFIX, Router

RECEIPT_TYPES = ("m.read", "m.read.private", "m.fully_read")
MAX_MESSAGES_LIMIT = 1000


def parse_pagination_token(token: str | None, backwards: bool) -> int | None:
    """A stream position from a /messages token (t123) or a /sync token (s123_...)."""
    if token is None:
        return None
    try:
        if token.startswith("t"):
            return int(token[1:])
        if token.startswith("s"):
            position = int(token[1:].split("_")[0])
            # A sync token names the last event seen: going back starts after it.
            return position + 1 if backwards else position + 1
    except ValueError:
        pass
    raise invalid_param("Unknown pagination token")


def register_routes(router: Router, hs) -> None:
    async def messages(request, room_id):
        requester = await hs.auth.authenticate(request)
        direction = query_str(request, "dir", "b")
        if direction not in ("b", "f"):
            raise invalid_param("'dir' must be b or f")
        backwards = direction == "b"
        limit = min(query_int(request, "limit", 10, minimum=0), MAX_MESSAGES_LIMIT)
        start = parse_pagination_token(query_str(request, "from"), backwards)
        end = parse_pagination_token(query_str(request, "to"), backwards)
        raw_filter = query_str(request, "filter")
        try:
            event_filter = parse_event_filter(json.loads(raw_filter) if raw_filter else None)
        except ValueError:
            raise MatrixError(400, "M_NOT_JSON", "filter is not valid JSON") from None
        if start is None:
            # Backfilled history sits below 0, so going forwards starts below it.
            start = hs.notifier.events_position + 1 if backwards else -2 ** 62
        if await hs.membership.current_membership(room_id, requester.user_id) is None:
            raise forbidden("You are not in this room")
        chunk, next_position = await hs.room_reader.paginate(requester.user_id, room_id, start, backwards, limit,
                                                              end, event_filter)
        ignored = await hs.sync.ignored_users(requester.user_id)
        chunk = [(e, r) for e, r in chunk if not (e.sender in ignored and not e.is_state())]
        now = hs.clock.time_ms()
        bundles = await hs.relations_handler.bundle([e for e, _ in chunk], requester.user_id)
        body = {"chunk": [client_event(e, now, redacted_by=r, relations=bundles.get(e.event_id)) for e, r in chunk],
                "start": f"t{start}"}
        if next_position is not None:
            body["end"] = f"t{next_position}"
        if event_filter.lazy_load_members:
            body["state"] = await hs.room_reader.member_events_for(requester.user_id, room_id,
                                                                   {e.sender for e, _ in chunk})
        return 200, body

    async def typing(request, room_id, user_id):
        requester = await hs.auth.authenticate(request)
        if requester.user_id != user_id:
            raise forbidden("Cannot set typing for other users")
        body = parse_json_object(request)
        is_typing = field(body, "typing", bool)
        timeout = field(body, "timeout", int, 30_000)
        if await hs.membership.current_membership(room_id, user_id) != "join":
            raise forbidden("You are not in this room")
        hs.typing.set_typing(room_id, user_id, is_typing, timeout)
        return 200, {}

    async def receipt(request, room_id, receipt_type, event_id):
        requester = await hs.auth.authenticate(request)
        if receipt_type not in RECEIPT_TYPES:
            raise invalid_param(f"Unknown receipt type {receipt_type}")
        body = parse_json_object(request, allow_empty=True)
        thread_id = field(body, "thread_id", str, "")
        await hs.receipts_handler.mark(requester.user_id, room_id, receipt_type, event_id, thread_id)
        return 200, {}

    async def read_markers(request, room_id):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request)
        for key in RECEIPT_TYPES:
            event_id = field(body, key, str, None)
            if event_id is not None:
                await hs.receipts_handler.mark(requester.user_id, room_id, key, event_id, "")
        return 200, {}

    router.add("GET", f"{CLIENT_PREFIX}/rooms/{{room_id}}/messages", messages)
    router.add("PUT", f"{CLIENT_PREFIX}/rooms/{{room_id}}/typing/{{user_id}}", typing)
    router.add("POST", f"{CLIENT_PREFIX}/rooms/{{room_id}}/receipt/{{receipt_type}}/{{event_id}}", receipt)
    router.add("POST", f"{CLIENT_PREFIX}/rooms/{{room_id}}/read_markers", read_markers)

"""Relations, threads and event context."""

from __future__ import annotations

import json

from homeserver.events.client_format import client_event
from homeserver.handlers.filtering import parse_event_filter
from homeserver.http.errors import MatrixError, invalid_param, not_found
from homeserver.http.request import query_int, query_str
from homeserver.http.router import CLIENT_PREFIX, CLIENT_V1_PREFIX, Router

MAX_LIMIT = 100


def _token(text: str | None) -> int | None:
    if text is None:
        return None
    if text.startswith("r") or text.startswith("t"):
        try:
            return int(text[1:])
        except ValueError:
            pass
    raise invalid_param("Unknown pagination token")


def register_routes(router: Router, hs) -> None:
    async def visible_events(requester, room_id, event_ids):
        """The events of ``event_ids`` the user may see, in order, as clients see them."""
        events = await hs.room_writer.get_events(event_ids)
        rows = await hs.events.get_event_rows([e for e in event_ids if e in events])
        visible = []
        for event_id in event_ids:
            row = rows.get(event_id)
            if row is None or row.event.room_id != room_id:
                continue
            if await hs.room_reader.may_see(requester.user_id, row.event, row.state_group):
                visible.append(row.event)
        return visible

    async def shape(requester, events):
        bundles = await hs.relations_handler.bundle(events, requester.user_id)
        redactions = await hs.events.get_redactions([e.event_id for e in events])
        now = hs.clock.time_ms()
        return [client_event(e, now, relations=bundles.get(e.event_id), redacted_by=redactions.get(e.event_id))
                for e in events]

    async def relations(request, room_id, event_id, rel_type=None, event_type=None):
        requester = await hs.auth.authenticate(request)
        await hs.room_reader.get_event(requester.user_id, room_id, event_id)  # 404 unless visible
        direction = query_str(request, "dir", "b")
        if direction not in ("b", "f"):
            raise invalid_param("'dir' must be b or f")
        backwards = direction == "b"
        limit = min(query_int(request, "limit", 50, minimum=1), MAX_LIMIT)
        rows = await hs.relations.page(event_id, rel_type, event_type, _token(query_str(request, "from")),
                                       backwards, limit + 1, _token(query_str(request, "to")))
        more = len(rows) > limit
        rows = rows[:limit]
        events = await visible_events(requester, room_id, [r[0] for r in rows])
        body = {"chunk": await shape(requester, events)}
        if more:
            last = rows[-1][1]
            body["next_batch"] = f"r{last if backwards else last + 1}"
        return 200, body

    async def threads(request, room_id):
        requester = await hs.auth.authenticate(request)
        if await hs.membership.current_membership(room_id, requester.user_id) is None:
            raise MatrixError(403, "M_FORBIDDEN", "You are not in this room")
        include = query_str(request, "include", "all")
        if include not in ("all", "participated"):
            raise invalid_param("'include' must be all or participated")
        limit = min(query_int(request, "limit", 50, minimum=1), MAX_LIMIT)
        rows = await hs.relations.threads(room_id, requester.user_id if include == "participated" else None,
                                          _token(query_str(request, "from")), limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        roots = await visible_events(requester, room_id, [r[0] for r in rows])
        body = {"chunk": await shape(requester, roots)}
        if more:
            body["next_batch"] = f"r{rows[-1][1]}"
        return 200, body

    async def context(request, room_id, event_id):
        requester = await hs.auth.authenticate(request)
        await hs.room_reader.get_event(requester.user_id, room_id, event_id)  # 404 unless visible
        limit = min(query_int(request, "limit", 10, minimum=0), MAX_LIMIT)
        raw_filter = query_str(request, "filter")
        try:
            event_filter = parse_event_filter(json.loads(raw_filter) if raw_filter else None)
        except ValueError:
            raise MatrixError(400, "M_NOT_JSON", "filter is not valid JSON") from None
        anchor = (await hs.events.get_event_rows([event_id]))[event_id].event
        before, before_next = await hs.room_reader.paginate(requester.user_id, room_id, anchor.stream_ordering,
                                                            True, limit // 2, None, event_filter)
        after, after_next = await hs.room_reader.paginate(requester.user_id, room_id, anchor.stream_ordering + 1,
                                                          False, limit - limit // 2, None, event_filter)
        head = await hs.room_heads.get(room_id)
        if head is None:
            raise not_found("Unknown room")
        shaped = await shape(requester, [anchor])
        body = {
            "event": shaped[0],
            "events_before": await shape(requester, [e for e, _ in before]),
            "events_after": await shape(requester, [e for e, _ in after]),
            "start": f"t{before_next if before_next is not None else 0}",
            "end": f"t{after_next if after_next is not None else hs.notifier.events_position + 1}",
            "state": await hs.room_reader.get_state(requester.user_id, room_id),
        }
        return 200, body

    base = f"{CLIENT_V1_PREFIX}/rooms/{{room_id}}/relations/{{event_id}}"
    router.add("GET", base, relations)
    router.add("GET", f"{base}/{{rel_type}}", relations)
    router.add("GET", f"{base}/{{rel_type}}/{{event_type}}", relations)
    router.add("GET", f"{CLIENT_V1_PREFIX}/rooms/{{room_id}}/threads", threads)
    router.add("GET", f"{CLIENT_PREFIX}/rooms/{{room_id}}/context/{{event_id}}", context)

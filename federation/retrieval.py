"""Serving the DAG to other servers: single events, the state at an event, auth chains,
backfill and get_missing_events. Servers call these whenever they see a gap in our
part of a room, so they must answer for any event we hold.

A server may read a room's events when one of its users is (or was) a member, or when
the room's history is world-readable.
"""

from __future__ import annotations

from homeserver.events.event import Event
from homeserver.events.received import server_name_of
from homeserver.events.redaction import prune_event_dict
from homeserver.events.visibility import history_visibility_of
from homeserver.handlers.event_ingest import MissingState
from homeserver.http.errors import MatrixError, forbidden, missing_param, not_found
from homeserver.http.request import field, query_int, query_str
from homeserver.http.router import Router

MAX_BACKFILL = 100
MAX_MISSING = 50


def _wire(event: Event) -> dict:
    return event.pdu


def server_may_see(origin: str, history_visibility: str, memberships: list[str]) -> bool:
    """Whether a server may read an event, given the history visibility at the event and
    the memberships its users had there (a server sees what any of its users could)."""
    if history_visibility == "world_readable":
        return True
    if "join" in memberships:
        return True
    if history_visibility == "invited" and "invite" in memberships:
        return True
    return history_visibility == "shared" and bool(memberships)


class Retrieval:
    def __init__(self, hs):
        self._hs = hs
        self._events = hs.events
        self._heads = hs.room_heads
        self._ingester = hs.event_ingester

    async def check_server_in_room(self, origin: str, room_id: str) -> None:
        """403 unless ``origin`` has (had) a member in the room or its history is world-readable."""
        head = await self._heads.get(room_id)
        if head is None or not head.extremities:
            raise not_found("Unknown room")
        if any(key[0] == "m.room.member" and server_name_of(key[1]) == origin for key in head.state):
            return
        visibility_id = head.state.get(("m.room.history_visibility", ""))
        visibility = await self._events.get_event(visibility_id) if visibility_id else None
        if history_visibility_of(visibility.content if visibility else None) == "world_readable":
            return
        raise forbidden(f"{origin} is not in room {room_id}")

    async def _event_in_room(self, room_id: str, event_id: str) -> Event:
        event = await self._events.get_event(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Unknown event")
        return event

    async def get_event(self, origin: str, event_id: str) -> dict:
        event = await self._events.get_event(event_id)
        if event is None:
            raise not_found("Unknown event")
        await self.check_server_in_room(origin, event.room_id)
        return {**self._transaction([]), "pdus": await self.filter_for_server(origin, [event])}

    def _transaction(self, events: list[Event]) -> dict:
        return {"origin": self._hs.config.server_name, "origin_server_ts": self._hs.clock.time_ms(),
                "pdus": [_wire(e) for e in events]}

    async def filter_for_server(self, origin: str, events: list[Event]) -> list[dict]:
        """The events as ``origin`` may have them: whole where history visibility lets one
        of its users see them, else redacted (the DAG stays whole, the content does not)."""
        rows = await self._events.get_event_rows([e.event_id for e in events])
        suffix = ":" + origin
        wire = []
        for event in events:
            row = rows.get(event.event_id)
            group = row.state_group if row is not None else None
            if group is None:
                wire.append(event.pdu)  # no state held (backfilled history): the room check stands
                continue
            state = await self._hs.state.get_state_for_group(group)
            wanted = {k: v for k, v in state.items() if k == ("m.room.history_visibility", "")
                      or (k[0] == "m.room.member" and k[1].endswith(suffix))}
            loaded = await self._events.get_events(wanted.values())
            visibility = loaded.get(wanted.get(("m.room.history_visibility", "")))
            memberships = [e.membership for k, e in ((k, loaded.get(v)) for k, v in wanted.items())
                           if e is not None and k[0] == "m.room.member"]
            if event.type == "m.room.member" and event.state_key and event.state_key.endswith(suffix):
                memberships.append("join")  # a server always sees its own users' membership
            if server_may_see(origin, history_visibility_of(visibility.content if visibility else None),
                              memberships):
                wire.append(event.pdu)
            else:
                pruned = prune_event_dict(event.room_version, event.pdu)
                wire.append(pruned)
        return wire

    async def state_ids(self, origin: str, room_id: str, event_id: str) -> tuple[list[str], list[str]]:
        await self.check_server_in_room(origin, room_id)
        event = await self._event_in_room(room_id, event_id)
        try:
            state = await self._ingester.state_before_event(event)
        except MissingState:
            raise not_found("No state is held at that event") from None
        chain = await self._events.get_auth_chain_ids(state.values())
        return sorted(state.values()), sorted(chain)

    async def state(self, origin: str, room_id: str, event_id: str) -> dict:
        state_ids, chain_ids = await self.state_ids(origin, room_id, event_id)
        events = await self._events.get_events(state_ids + chain_ids)
        return {"pdus": [_wire(events[e]) for e in state_ids if e in events],
                "auth_chain": [_wire(events[e]) for e in chain_ids if e in events]}

    async def event_auth(self, origin: str, room_id: str, event_id: str) -> dict:
        await self.check_server_in_room(origin, room_id)
        await self._event_in_room(room_id, event_id)
        chain_ids = await self._events.get_auth_chain_ids([event_id])
        events = await self._events.get_events(chain_ids)
        ordered = sorted(events.values(), key=lambda e: (e.depth, e.event_id))
        return {"auth_chain": [_wire(e) for e in ordered]}

    async def backfill(self, origin: str, room_id: str, starts: list[str], limit: int) -> dict:
        """Events before and including ``starts``, newest first, walking prev_events."""
        await self.check_server_in_room(origin, room_id)
        limit = max(0, min(limit, MAX_BACKFILL))
        found: dict[str, Event] = {}
        frontier = [e for e in (await self._events.get_events(starts)).values() if e.room_id == room_id]
        while frontier and len(found) < limit:
            frontier.sort(key=lambda e: (-e.depth, e.event_id))
            event = frontier.pop(0)
            if event.event_id in found:
                continue
            found[event.event_id] = event
            prevs = [p for p in event.prev_event_ids if p not in found]
            frontier += [e for e in (await self._events.get_events(prevs)).values() if e.room_id == room_id]
        ordered = sorted(found.values(), key=lambda e: (-e.depth, e.event_id))
        chosen = [e for e in ordered if not e.outlier or e.event_id in starts]
        return {**self._transaction([]), "pdus": await self.filter_for_server(origin, chosen)}

    async def missing_events(self, origin: str, room_id: str, earliest: list[str], latest: list[str],
                             limit: int, min_depth: int) -> dict:
        """Walk back from ``latest`` through prev_events, stopping at ``earliest``."""
        await self.check_server_in_room(origin, room_id)
        limit = max(0, min(limit, MAX_MISSING))
        seen = set(earliest) | set(latest)
        result: list[Event] = []
        frontier = [e for e in (await self._events.get_events(latest)).values() if e.room_id == room_id]
        queue: list[str] = [p for e in frontier for p in e.prev_event_ids if p not in seen]
        while queue and len(result) < limit:
            batch, queue = queue[:limit], queue[limit:]
            fetched = await self._events.get_events(batch)
            for event_id in batch:
                if event_id in seen:
                    continue
                seen.add(event_id)
                event = fetched.get(event_id)
                if event is None or event.room_id != room_id or event.depth < min_depth or event.outlier:
                    continue
                result.append(event)
                if len(result) >= limit:
                    break
                queue += [p for p in event.prev_event_ids if p not in seen]
        result.sort(key=lambda e: (e.depth, e.event_id))
        return {"events": await self.filter_for_server(origin, result)}


def register_routes(router: Router, hs, authenticated) -> None:
    retrieval = Retrieval(hs)
    hs.federation_retrieval = retrieval
    prefix = "/_matrix/federation/v1"

    async def get_event(request, origin, event_id):
        return 200, await retrieval.get_event(origin, event_id)

    async def get_state_ids(request, origin, room_id):
        event_id = query_str(request, "event_id", required=True)
        state_ids, chain_ids = await retrieval.state_ids(origin, room_id, event_id)
        return 200, {"pdu_ids": state_ids, "auth_chain_ids": chain_ids}

    async def get_state(request, origin, room_id):
        event_id = query_str(request, "event_id", required=True)
        return 200, await retrieval.state(origin, room_id, event_id)

    async def get_event_auth(request, origin, room_id, event_id):
        return 200, await retrieval.event_auth(origin, room_id, event_id)

    async def get_backfill(request, origin, room_id):
        starts = [v.decode("utf-8", "replace") for v in request.args.get(b"v", [])]
        if not starts:
            raise missing_param("v")
        limit = query_int(request, "limit", 10, minimum=0)
        return 200, await retrieval.backfill(origin, room_id, starts, limit)

    async def post_missing_events(request, origin, room_id, body):
        earliest = field(body, "earliest_events", list, [])
        latest = field(body, "latest_events", list)
        if not all(isinstance(e, str) for e in earliest + latest):
            raise MatrixError(400, "M_INVALID_PARAM", "event lists must hold event IDs")
        limit = field(body, "limit", int, 10)
        min_depth = field(body, "min_depth", int, 0)
        return 200, await retrieval.missing_events(origin, room_id, earliest, latest, limit, min_depth)

    router.add("GET", prefix + "/event/{event_id}", authenticated(get_event))
    router.add("GET", prefix + "/state_ids/{room_id}", authenticated(get_state_ids, room_scoped=True))
    router.add("GET", prefix + "/state/{room_id}", authenticated(get_state, room_scoped=True))
    router.add("GET", prefix + "/event_auth/{room_id}/{event_id}", authenticated(get_event_auth, room_scoped=True))
    router.add("GET", prefix + "/backfill/{room_id}", authenticated(get_backfill, room_scoped=True))
    router.add("POST", prefix + "/get_missing_events/{room_id}",
               authenticated(post_missing_events, room_scoped=True, with_body=True))

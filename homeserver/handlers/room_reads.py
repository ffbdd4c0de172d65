"""Reading rooms: state, members, single events; each filtered by what the user may see."""

from __future__ import annotations

from homeserver.clock import Clock
from homeserver.events.client_format import client_event
from homeserver.events.event import Event
from homeserver.events.visibility import history_visibility_of, may_see_event
from homeserver.handlers.membership import MembershipHandler
from homeserver.handlers.room_heads import RoomHeads
from homeserver.http.errors import forbidden, not_found
from storage.stores.events import EventStore
from storage.stores.state import StateStore


class RoomReader:
    def __init__(self, clock: Clock, heads: RoomHeads, events: EventStore, state: StateStore,
                 membership: MembershipHandler, writer=None):
        self._clock = clock
        self._heads = heads
        self._events = events
        # A room's head names an event as soon as it is queued for writing: state read
        # from the head is looked up through the writer, which also knows queued events.
        self._current = writer.get_events if writer is not None else events.get_events
        self._state = state
        self._membership = membership
        self.relations = None  # set by the app once the relations handler exists
        # async (room_id) -> bool: fetch older history from other servers (federation).
        self.backfill = None

    async def _visible_state_ids(self, user_id: str, room_id: str) -> dict:
        """The state a user may read: the current state while joined (or for world-readable
        rooms), else the state at the moment they left."""
        head = await self._heads.get(room_id)
        if head is None:
            raise forbidden("You are not in this room")
        member_id = head.state.get(("m.room.member", user_id))
        member = (await self._current([member_id])).get(member_id) if member_id else None
        if member is not None and member.membership == "join":
            return head.state
        visibility_id = head.state.get(("m.room.history_visibility", ""))
        visibility = (await self._current([visibility_id])).get(visibility_id) if visibility_id else None
        if history_visibility_of(visibility.content if visibility else None) == "world_readable":
            return head.state
        if member is not None and member.membership in ("leave", "ban"):
            rows = await self._events.get_event_rows([member.event_id])
            group = rows[member.event_id].state_group
            if group is not None:
                return await self._state.get_state_for_group(group)
        raise forbidden("You are not in this room")

    async def get_state(self, user_id: str, room_id: str) -> list[dict]:
        state_ids = await self._visible_state_ids(user_id, room_id)
        events = await self._current(state_ids.values())
        now = self._clock.time_ms()
        return [client_event(events[e], now) for e in state_ids.values() if e in events]

    async def get_state_event(self, user_id: str, room_id: str, event_type: str, state_key: str) -> Event:
        state_ids = await self._visible_state_ids(user_id, room_id)
        event_id = state_ids.get((event_type, state_key))
        if event_id is None:
            raise not_found("Event not found")
        event = (await self._current([event_id])).get(event_id)
        if event is None:
            raise not_found("Event not found")
        return event

    async def get_members(self, user_id: str, room_id: str, membership: str | None = None,
                          not_membership: str | None = None) -> list[dict]:
        state_ids = await self._visible_state_ids(user_id, room_id)
        member_ids = [e for (t, _), e in state_ids.items() if t == "m.room.member"]
        events = await self._current(member_ids)
        now = self._clock.time_ms()
        chunk = []
        for event_id in member_ids:
            event = events.get(event_id)
            if event is None:
                continue
            if membership is not None and event.membership != membership:
                continue
            if not_membership is not None and event.membership == not_membership:
                continue
            chunk.append(client_event(event, now))
        return chunk

    async def get_joined_members(self, user_id: str, room_id: str) -> dict[str, dict]:
        head = await self._heads.get(room_id)
        if head is None or await self._membership.current_membership(room_id, user_id) != "join":
            raise forbidden("You are not in this room")
        member_ids = [e for (t, _), e in head.state.items() if t == "m.room.member"]
        events = await self._current(member_ids)
        joined = {}
        for event in events.values():
            if event.membership == "join":
                joined[event.state_key] = {"display_name": event.content.get("displayname"),
                                           "avatar_url": event.content.get("avatar_url")}
        return joined

    async def get_event(self, user_id: str, room_id: str, event_id: str) -> dict:
        rows = await self._events.get_event_rows([event_id])
        row = rows.get(event_id)
        if row is None or row.event.room_id != room_id or row.event.rejected or row.event.soft_failed:
            raise not_found("Event not found")
        event = row.event
        if not await self.may_see(user_id, event, row.state_group):
            raise not_found("Event not found")
        redaction = (await self._events.get_redactions([event_id])).get(event_id)
        bundles = await self.relations.bundle([event], user_id) if self.relations is not None else {}
        return client_event(event, self._clock.time_ms(), redacted_by=redaction, relations=bundles.get(event_id))

    async def paginate(self, user_id: str, room_id: str, start: int, backwards: bool, limit: int,
                       end: int | None, event_filter) -> tuple[list[tuple[Event, Event | None]], int | None]:
        """A page of the room's events the user may see, each with its redaction (if any),
        and the position to continue from (None: nothing more)."""
        chunk: list[Event] = []
        position = start
        backfilled = 0
        # Filtered-out events do not count against the limit; a few rounds fill a page.
        for _ in range(5 + 3):
            wanted = limit - len(chunk)
            if wanted <= 0:
                break
            rows = await self._events.paginate(room_id, position, backwards, wanted, end)
            for row in rows:
                event = row.event
                if event_filter.allows_event(event) and await self.may_see(user_id, event, row.state_group):
                    chunk.append(event)
            if len(rows) < wanted:
                # The start of the room as this server knows it: other servers may hold
                # older history; fetch it (a few rounds at most per page) and go on.
                if backwards and self.backfill is not None and backfilled < 3 and await self.backfill(room_id):
                    backfilled += 1
                    if rows:
                        position = rows[-1].event.stream_ordering
                    continue
                return await self._with_redactions(chunk), None
            last = rows[-1].event.stream_ordering
            position = last if backwards else last + 1
        return await self._with_redactions(chunk), position

    async def _with_redactions(self, chunk: list[Event]) -> list[tuple[Event, Event | None]]:
        redactions = await self._events.get_redactions([e.event_id for e in chunk])
        return [(e, redactions.get(e.event_id)) for e in chunk]

    async def member_events_for(self, user_id: str, room_id: str, senders: set[str]) -> list[dict]:
        state_ids = await self._visible_state_ids(user_id, room_id)
        ids = [state_ids[("m.room.member", s)] for s in sorted(senders) if ("m.room.member", s) in state_ids]
        events = await self._current(ids)
        now = self._clock.time_ms()
        return [client_event(events[i], now) for i in ids if i in events]

    async def may_see(self, user_id: str, event: Event, state_group: int | None) -> bool:
        current = await self._membership.current_membership(event.room_id, user_id)
        if state_group is None:
            return current == "join"
        state = await self._state.get_state_for_group(state_group)
        wanted = [state[k] for k in (("m.room.history_visibility", ""), ("m.room.member", user_id)) if k in state]
        events = await self._events.get_events(wanted)
        visibility = events.get(state.get(("m.room.history_visibility", "")))
        member = events.get(state.get(("m.room.member", user_id)))
        own = event.type == "m.room.member" and event.state_key == user_id
        return may_see_event(history_visibility_of(visibility.content if visibility else None),
                             member.membership if member else None, current, own)

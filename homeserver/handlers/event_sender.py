"""Sending an event of ours into a room: build, sign, authorise, persist, notify.

One room at a time (a per-room lock), so each event builds on the one before it and the
DAG stays a line for local traffic. The state before a new event is the room's current
state, which is kept equal to the resolution of the forward extremities; so a send never
runs state resolution, and a message send reads nothing from the database.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.events.auth_events import auth_types_for_event
from homeserver.events.auth_rules import AuthError, check_auth, check_auth_events
from homeserver.events.builder import build_event
from homeserver.events.event import Event
from homeserver.events.room_versions import RoomVersion
from homeserver.events.validation import EventFormatError, EventTooLarge
from homeserver.handlers.room_heads import RoomHead
from homeserver.handlers.room_writer import CREATE_KEY, RoomWriter
from homeserver.http.errors import MatrixError, forbidden
from storage.cache import LruCache
from storage.stores.events import DuplicateTransaction, GroupRef, PersistPlan

log = Logger()


class EventSender:
    def __init__(self, server_name: str, signing_key, writer: RoomWriter):
        self._server_name = server_name
        self._signing_key = signing_key
        self._writer = writer
        self._clock = writer.clock
        # Client transaction ID -> event ID: retries are answered from memory (the table
        # event_txn_ids keeps them across restarts; recent ones are loaded at start).
        self._txns: LruCache[tuple[str, str, str], str] = LruCache(100_000)
        # Transactions being written -> retries waiting for them to be durable.
        self._txns_in_flight: dict[tuple[str, str, str], list[defer.Deferred]] = {}
        # Rules past Matrix auth (Drocsid permissions): async (room_id, state, event) -> reason | None.
        self.extra_rules = None

    async def load_recent_transactions(self, since_ms: int) -> int:
        rows = await self._writer.rooms.recent_txn_ids(since_ms)
        for user_id, device_id, txn_key, event_id in rows:
            self._txns.set((user_id, device_id, txn_key), event_id)
        return len(rows)

    async def send(self, sender: str, room_id: str, event_type: str, content: dict[str, Any], *,
                   state_key: str | None = None, redacts: str | None = None,
                   client_txn: tuple[str, str, str] | None = None,
                   origin_server_ts: int | None = None) -> Event:
        """Send an event as ``sender``; 403 M_FORBIDDEN if the auth rules refuse it.
        Returns once the event is durable. ``origin_server_ts`` replaces the clock (an
        application service's ``?ts=``, for history bridged from elsewhere)."""
        if client_txn is not None:
            earlier = await self._earlier_event(client_txn)
            if earlier is not None:
                return earlier
        async with self._writer.room_lock(room_id):
            head = await self._writer.heads.get(room_id)
            if head is None or not head.extremities:
                # Same answer as for a room one is not in: existence is not revealed.
                raise forbidden("You are not in this room")
            event, written = await self._build_and_queue(head, sender, event_type, content, state_key, redacts,
                                                         client_txn, origin_server_ts)
        if client_txn is not None:
            self._txns_in_flight[client_txn] = []
        try:
            await written
        except DuplicateTransaction as duplicate:
            # Sent before this process remembered it: answer with the first event.
            self._txns.set(client_txn, duplicate.event_id)
            self._wake_retries(client_txn)
            return (await self._writer.get_events([duplicate.event_id]))[duplicate.event_id]
        except Exception:
            self._wake_retries(client_txn)
            raise
        if client_txn is not None:
            self._txns.set(client_txn, event.event_id)
            self._wake_retries(client_txn)
        return event

    def _wake_retries(self, client_txn: tuple[str, str, str] | None) -> None:
        for waiter in self._txns_in_flight.pop(client_txn, []):
            waiter.callback(None)

    async def _earlier_event(self, client_txn: tuple[str, str, str]) -> Event | None:
        waiting = self._txns_in_flight.get(client_txn)
        if waiting is not None:
            # The first request is still being written; answer once it is durable.
            waiter: defer.Deferred = defer.Deferred()
            waiting.append(waiter)
            await waiter
        event_id = self._txns.get(client_txn)
        if event_id is None:
            return None
        return (await self._writer.get_events([event_id])).get(event_id)

    async def create_room(self, version: RoomVersion, sender: str, content: dict[str, Any],
                          room_id: str | None = None) -> Event:
        """Persist the create event of a new room. In v12 the room ID comes from the event;
        before that the caller picks one (``room_id``)."""
        try:
            event = build_event(version, room_id=None if version.room_id_from_create else room_id, sender=sender,
                                event_type="m.room.create", state_key="", content=content, prev_events=[],
                                auth_events=[], depth=1, origin_server_ts=self._clock.time_ms(),
                                server_name=self._server_name, signing_key=self._signing_key)
            check_auth(version, event, {})
        except (EventFormatError, AuthError) as error:
            raise MatrixError(400, "M_BAD_JSON", f"invalid create event: {error}") from None
        if not await self._writer.write_create(event, sender):
            raise MatrixError(400, "M_UNKNOWN", "Room ID already in use")
        return event

    async def build_unsent(self, sender: str, room_id: str, event_type: str, content: dict[str, Any], *,
                           state_key: str | None = None) -> Event:
        """Build and authorise an event on the room's head without writing it: for an
        event another server must sign first (an invite of one of its users). It is
        then taken in like a received event, as a fork if the room moved on meanwhile."""
        async with self._writer.room_lock(room_id):
            head = await self._writer.heads.get(room_id)
            if head is None or not head.extremities:
                raise forbidden("You are not in this room")
            return await self._build_checked(head, sender, event_type, content, state_key, None)

    async def _build_and_queue(self, head: RoomHead, sender: str, event_type: str, content: dict[str, Any],
                               state_key: str | None, redacts: str | None,
                               client_txn: tuple[str, str, str] | None,
                               origin_server_ts: int | None = None) -> tuple[Event, defer.Deferred]:
        event = await self._build_checked(head, sender, event_type, content, state_key, redacts, origin_server_ts)
        return event, self._queue(head, event, client_txn)

    async def _build_checked(self, head: RoomHead, sender: str, event_type: str, content: dict[str, Any],
                             state_key: str | None, redacts: str | None,
                             origin_server_ts: int | None = None) -> Event:
        version = head.version
        state_before = head.state
        auth_keys = auth_types_for_event(version, event_type, sender, state_key, content)
        auth_ids = [state_before[key] for key in auth_keys if key in state_before]
        needed = list(auth_ids)
        if not version.create_in_auth_events and CREATE_KEY in state_before:
            needed.append(state_before[CREATE_KEY])
        known = await self._writer.get_events(needed)

        try:
            event = build_event(version, room_id=head.room_id, sender=sender, event_type=event_type,
                                content=content, state_key=state_key, prev_events=head.extremities,
                                auth_events=auth_ids, depth=head.max_depth + 1,
                                origin_server_ts=self._clock.time_ms() if origin_server_ts is None
                                else origin_server_ts,
                                server_name=self._server_name, signing_key=self._signing_key, redacts=redacts)
        except EventTooLarge as error:
            raise MatrixError(413, "M_TOO_LARGE", str(error)) from None
        except EventFormatError as error:
            raise MatrixError(400, "M_BAD_JSON", str(error)) from None
        auth_state = {key: known[event_id] for key, event_id in state_before.items()
                      if event_id in known and (key in auth_keys or key == CREATE_KEY)}
        try:
            check_auth_events(version, event, list(auth_state.values()))
            check_auth(version, event, auth_state)
        except AuthError as error:
            raise forbidden(str(error)) from None
        if self.extra_rules is not None:
            refused = await self.extra_rules(head.room_id, state_before, event)
            if refused:
                raise forbidden(refused)
        return event

    def _queue(self, head: RoomHead, event: Event, client_txn: tuple[str, str, str] | None) -> defer.Deferred:
        state_before = head.state
        plan = PersistPlan(state_group_before=head.state_group, remove_extremities=list(head.extremities),
                           client_txn=client_txn)
        state_after, group_after = state_before, head.state_group
        if event.is_state():
            state_after = {**state_before, event.state_tuple: event.event_id}
            group_after = GroupRef()
            plan.state_after, plan.group_after = state_after, group_after
            plan.current_state_updates = {event.state_tuple: event.event_id}
        elif group_after is None:
            # The head's state came from a resolution no group holds yet: store it now.
            group_after = GroupRef()
            plan.state_after, plan.group_after = state_before, group_after
        new_head = RoomHead(head.room_id, head.version, [event.event_id], state_after, group_after, event.depth)
        return self._writer.enqueue(head, new_head, event, plan, {event.event_id: event})

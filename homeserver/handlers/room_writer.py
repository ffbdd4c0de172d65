"""The one way events reach a room: under the room's lock, persisted in one transaction,
then the caches (state group, room head) updated and the notifier told.

Both our own sends (``event_sender``) and events from elsewhere (``event_ingest``) write
through here, so a room has exactly one writer and its head never runs ahead of the
database.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Mapping

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.handlers.room_heads import RoomHead, RoomHeads
from homeserver.http.errors import MatrixError
from homeserver.locks import KeyedLock
from homeserver.notifier import Notifier
from storage.stores.events import EventStore, Persisted, PersistPlan
from storage.stores.rooms import RoomStore
from storage.stores.state import StateStore

CREATE_KEY = ("m.room.create", "")


class RoomWriter:
    def __init__(self, clock: Clock, rooms: RoomStore, events: EventStore, state: StateStore, heads: RoomHeads,
                 notifier: Notifier):
        self.clock = clock
        self.rooms = rooms
        self.events = events
        self.state = state
        self.heads = heads
        self._notifier = notifier
        self._locks = KeyedLock()

    @asynccontextmanager
    async def room_lock(self, room_id: str) -> AsyncIterator[None]:
        """Hold the room's write lock; a failure inside drops the cached head."""
        async with self._locks.hold(room_id):
            try:
                yield
            except MatrixError:
                raise  # refused before anything was written
            except Exception:
                self.heads.forget(room_id)
                raise

    async def write_create(self, event: Event, creator: str) -> bool:
        """Store a new room and its create event; False when the room ID is taken.
        The caller holds no lock: nobody else can know the room yet."""
        now = self.clock.time_ms()
        if not await self.rooms.store_room(event.room_id, event.room_version.identifier, creator, False, now):
            return False
        state_after = {CREATE_KEY: event.event_id}
        plan = PersistPlan(state_group_before=None, state_after=state_after, current_state_updates=dict(state_after))
        async with self.room_lock(event.room_id):
            persisted = await self.write(event, plan, {event.event_id: event})
            self.heads.set(RoomHead(event.room_id, event.room_version, [event.event_id], state_after,
                                    persisted.state_group, persisted.state_group_depth, event.depth))
        self._notifier.on_new_event(event)
        return True

    async def write(self, event: Event, plan: PersistPlan, known_events: Mapping[str, Event]) -> Persisted:
        """Persist under the lock the caller holds; cache the new state group."""
        persisted = await self.events.persist(event, plan, self.clock.time_ms(), known_events)
        if plan.state_after is not None and persisted.state_group is not None and event.is_state() \
                and not event.rejected:
            self.state.remember_group(persisted.state_group, dict(plan.state_after))
        return persisted

    def advance(self, head: RoomHead, event: Event) -> None:
        """After a commit: the room's new head, and wake whoever waits for events."""
        self.heads.set(head)
        self._notifier.on_new_event(event)

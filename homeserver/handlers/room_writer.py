"""The one way events reach a room: built under the room's lock, written by the room's
queue in order, many to a transaction, and only then announced.

Both our own sends (``event_sender``) and events from elsewhere (``event_ingest``) write
through here, so a room has exactly one writer.

Pipelining: a send builds its event on the room's head, queues it, moves the head on at
once and lets go of the lock; the next send builds on top while the first is still being
written. The queue writes what has gathered in one transaction (one fsync for many
events) and answers each request only after that commit, so nothing is acknowledged
before it is durable. If a write fails, every event queued behind it (they build on it)
fails too, and the head is dropped so the next send reloads it from the database.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterable, Mapping

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.clock import Clock
from homeserver.events.event import Event
from homeserver.handlers.room_heads import RoomHead, RoomHeads
from homeserver.http.errors import MatrixError
from homeserver.locks import KeyedLock
from homeserver.notifier import Notifier
from storage.stores.events import DuplicateTransaction, EventStore, GroupRef, Persisted, PersistPlan
from storage.stores.rooms import RoomStore
from storage.stores.state import StateKey, StateStore

log = Logger()

CREATE_KEY = ("m.room.create", "")
MAX_BATCH = 100


@dataclass
class _Queued:
    event: Event
    plan: PersistPlan
    known: Mapping[str, Event]
    done: defer.Deferred = field(default_factory=defer.Deferred)


class RoomWriteFailed(MatrixError):
    def __init__(self, message: str):
        super().__init__(500, "M_UNKNOWN", message)


def _caused_by(error: Exception, item: _Queued) -> bool:
    """Whether ``error`` is about this item (a duplicate transaction ID is about one request)."""
    if isinstance(error, DuplicateTransaction):
        return item.plan.client_txn == error.client_txn
    return True


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
        self._queues: dict[str, list[_Queued]] = {}
        self._idle: dict[str, list[defer.Deferred]] = {}
        # Events queued but not yet written, so events built on them can find them.
        self._pending: dict[str, Event] = {}

    @asynccontextmanager
    async def room_lock(self, room_id: str) -> AsyncIterator[None]:
        """Hold the room's build lock; an unexpected failure inside drops the cached head."""
        async with self._locks.hold(room_id):
            try:
                yield
            except MatrixError:
                raise  # refused before anything was queued
            except Exception:
                self.heads.forget(room_id)
                raise

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        """Events by ID, including those queued and not yet written."""
        wanted = list(event_ids)
        found = {e: self._pending[e] for e in wanted if e in self._pending}
        rest = [e for e in wanted if e not in found]
        if rest:
            found.update(await self.events.get_events(rest))
        return found

    async def write_create(self, event: Event, creator: str) -> bool:
        """Store a new room and its create event; False when the room ID is taken."""
        now = self.clock.time_ms()
        if not await self.rooms.store_room(event.room_id, event.room_version.identifier, creator, False, now):
            return False
        state_after = {CREATE_KEY: event.event_id}
        group = GroupRef()
        plan = PersistPlan(state_group_before=None, state_after=state_after, group_after=group,
                           current_state_updates=dict(state_after))
        async with self.room_lock(event.room_id):
            head = RoomHead(event.room_id, event.room_version, [event.event_id], state_after, group, event.depth)
            done = self.enqueue(None, head, event, plan, {event.event_id: event})
        await done
        return True

    async def write_outliers(self, room_id: str, events: Iterable[Event]) -> list[Event]:
        """Store events outside the DAG (auth chains and state fetched from other
        servers, invites to rooms we are not in): kept and served, never shown in a
        timeline, never prev events. Returns those that were new."""
        fresh = {}
        for event in events:
            fresh.setdefault(event.event_id, event)
        # The room lock keeps two fetches of the same event from both inserting it.
        async with self._locks.hold(("outliers", room_id)):
            known = await self.events.get_event_rows(list(fresh))
            new = [e for e in fresh.values() if e.event_id not in known and e.event_id not in self._pending]
            for event in new:
                event.outlier = True
            if new:
                await self.events.persist_batch([(e, PersistPlan(state_group_before=None, add_extremity=False), {})
                                                 for e in new], self.clock.time_ms())
        return new

    async def write_joined_room(self, join: Event, state_before: Mapping[StateKey, str],
                                known: Mapping[str, Event]) -> None:
        """Our first event in a room joined through another server: the join becomes the
        room's only forward extremity and the state before it (from the resident server)
        plus the join becomes the current state. The state's events are already stored."""
        now = self.clock.time_ms()
        version = join.room_version
        await self.rooms.store_room(join.room_id, version.identifier, join.sender, False, now)
        async with self.room_lock(join.room_id):
            await self.wait_written(join.room_id)
            stored = await self.rooms.get_room_head(join.room_id)
            old_state = stored.current_state if stored is not None else {}
            old_extremities = stored.extremities if stored is not None else []
            state_after = {**state_before, join.state_tuple: join.event_id}
            group = GroupRef()
            plan = PersistPlan(state_group_before=None, state_after=state_after, group_after=group,
                               current_state_updates={k: v for k, v in state_after.items() if old_state.get(k) != v},
                               current_state_deletes=[k for k in old_state if k not in state_after],
                               remove_extremities=list(old_extremities))
            depth = max([join.depth] + [e.depth for e in known.values()])
            head = RoomHead(join.room_id, version, [join.event_id], state_after, group, depth)
            self.heads.forget(join.room_id)
            done = self.enqueue(None, head, join, plan, {**known, join.event_id: join})
        await done

    def enqueue(self, built_on: RoomHead | None, new_head: RoomHead, event: Event, plan: PersistPlan,
                known: Mapping[str, Event]) -> defer.Deferred:
        """Queue the event for writing and move the room's head on (call under the room
        lock). Fires with ``Persisted`` once the event is committed."""
        if self.heads.peek(event.room_id) is not built_on:
            # A write failed since this event was built: it may build on an event that will
            # never exist. Refuse it; the client may retry.
            raise RoomWriteFailed("an earlier write to this room failed; try again")
        item = _Queued(event, plan, known)
        self.heads.set(new_head)
        queue = self._queues.get(event.room_id)
        self._pending[event.event_id] = event
        if queue is None:
            self._queues[event.room_id] = [item]
            defer.ensureDeferred(self._drain(event.room_id))
        else:
            queue.append(item)
        return item.done

    def wait_written(self, room_id: str) -> defer.Deferred:
        """Fires once everything queued for the room so far is written (or failed)."""
        if room_id not in self._queues:
            return defer.succeed(None)
        waiter: defer.Deferred = defer.Deferred()
        self._idle.setdefault(room_id, []).append(waiter)
        return waiter

    async def _drain(self, room_id: str) -> None:
        queue = self._queues[room_id]
        while queue:
            batch, queue[:] = queue[:MAX_BATCH], queue[MAX_BATCH:]
            try:
                results = await self.events.persist_batch([(q.event, q.plan, q.known) for q in batch],
                                                          self.clock.time_ms())
            except Exception as error:
                failed, queue[:] = batch + queue, []
                self.heads.forget(room_id)
                if not isinstance(error, DuplicateTransaction):
                    log.failure("writing {count} events of {room_id} failed", count=len(failed), room_id=room_id)
                for item in failed:
                    self._pending.pop(item.event.event_id, None)
                    item.done.errback(error if _caused_by(error, item) else RoomWriteFailed(
                        "an earlier write to this room failed; try again"))
                continue
            for item, persisted in zip(batch, results):
                self._written(item, persisted)
        del self._queues[room_id]
        for waiter in self._idle.pop(room_id, []):
            waiter.callback(None)

    def _written(self, item: _Queued, persisted: Persisted) -> None:
        event = item.event
        self._pending.pop(event.event_id, None)
        if item.plan.group_after is not None and item.plan.state_after is not None and persisted.state_group:
            self.state.remember_group(persisted.state_group, dict(item.plan.state_after))
        if not (event.rejected or event.soft_failed or event.outlier):
            self._notifier.on_new_event(event)
        item.done.callback(persisted)

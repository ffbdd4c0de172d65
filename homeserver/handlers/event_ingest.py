"""Taking in an event built elsewhere (another server, or a fork): the checks on receipt
that need the DAG, then persistence.

The caller has already checked format, signatures and hashes. Here: auth against the
event's own auth events (fail: rejected), against the state before it (fail: rejected),
against the current state (fail: soft-failed). The state before an event is the
resolution of the states after its prev_events; the room's current state becomes the
resolution of the states after its forward extremities. Both use state resolution only
when there is more than one state to combine.
"""

from __future__ import annotations

from typing import Mapping

from homeserver.events.auth_events import auth_types_for_event
from homeserver.events.auth_rules import AuthError, check_auth, check_auth_events
from homeserver.events.event import Event
from homeserver.events.state_res import resolve_state
from homeserver.handlers.room_heads import RoomHead
from homeserver.handlers.room_writer import CREATE_KEY, RoomWriter
from storage.stores.events import GroupRef, PersistPlan
from storage.stores.state import StateKey, group_depth_txn


class MissingEvents(Exception):
    """Events this one refers to are unknown here; federation fetches them and retries."""

    def __init__(self, event_ids: list[str]):
        super().__init__(f"missing events: {', '.join(event_ids)}")
        self.event_ids = event_ids


class MissingState(Exception):
    """Prev events are known only as outliers (no state stored at them); the caller asks
    the origin for the state after them (``/state_ids``) and retries with it."""

    def __init__(self, event_ids: list[str]):
        super().__init__(f"no state at: {', '.join(event_ids)}")
        self.event_ids = event_ids


class EventIngester:
    def __init__(self, writer: RoomWriter):
        self._writer = writer
        self._events = writer.events
        self._state = writer.state
        # Rules past Matrix auth (Drocsid permissions): an event they refuse is soft-failed.
        self.extra_rules = None

    async def ingest(self, event: Event, prev_states: Mapping[str, Mapping[StateKey, str]] | None = None) -> Event:
        """Persist ``event`` (rejected or soft-failed if the rules say so); returns it.

        ``prev_states`` gives the state after prev events this server holds no state for
        (outliers), as fetched from another server."""
        if event.type == "m.room.create" and not event.prev_event_ids \
                and await self._writer.heads.get(event.room_id) is None:
            return await self._ingest_create(event)
        async with self._writer.room_lock(event.room_id):
            # Our own sends may still be queued; what follows reads the database.
            await self._writer.wait_written(event.room_id)
            if await self._events.get_event(event.event_id) is not None:
                return event
            head = await self._writer.heads.get(event.room_id)
            if head is None:
                raise MissingEvents([event.room_id])
            return await self._ingest(head, event, prev_states or {})

    async def state_before_event(self, event: Event) -> dict[StateKey, str]:
        """The state before a stored event (MissingState when it is an outlier's)."""
        if not event.prev_event_ids:
            return {}
        rows = await self._events.get_event_rows(event.prev_event_ids)
        missing = [e for e in event.prev_event_ids if e not in rows]
        if missing:
            raise MissingState(missing)
        state, _group = await self._state_before(event.room_version, event, rows, {})
        return state

    async def _ingest_create(self, event: Event) -> Event:
        """The first event of a room this server has not seen before."""
        try:
            check_auth(event.room_version, event, {})
        except AuthError as error:
            raise ValueError(f"invalid create event: {error}") from None
        await self._writer.write_create(event, event.sender)
        return event

    async def _ingest(self, head: RoomHead, event: Event, prev_states: Mapping[str, Mapping[StateKey, str]]) -> Event:
        version = head.version
        rows = await self._events.get_event_rows(event.prev_event_ids + event.auth_event_ids)
        missing = [e for e in event.prev_event_ids + event.auth_event_ids if e not in rows]
        if missing:
            raise MissingEvents(missing)

        state_before, group_before = await self._state_before(version, event, rows, prev_states)
        own_auth = [rows[e].event for e in event.auth_event_ids]
        create = await self._create_event(head)
        try:
            supplied = own_auth + ([create] if create is not None and not version.create_in_auth_events else [])
            check_auth_events(version, event, supplied)
            check_auth(version, event, {e.state_tuple: e for e in supplied if e.is_state()})
            before_state = await self._auth_state(version, event, state_before)
            check_auth(version, event, before_state)
        except AuthError as error:
            event.rejected_reason = str(error)
        if not event.rejected:
            try:
                check_auth(version, event, await self._auth_state(version, event, head.state))
            except AuthError:
                event.soft_failed = True
        if not (event.rejected or event.soft_failed) and self.extra_rules is not None:
            # Judged on the state before it, as every other instance judges it.
            if await self.extra_rules(event.room_id, state_before, event):
                event.soft_failed = True

        plan = PersistPlan(state_group_before=group_before)
        state_after, group_after = state_before, group_before
        if event.is_state() and not event.rejected:
            state_after = {**state_before, event.state_tuple: event.event_id}
            group_after = GroupRef()
            plan.state_after, plan.group_after = state_after, group_after
        elif group_before is None:
            # The state before came from a resolution no group holds: store it, so the
            # state at this event (and after it) can be read back and served.
            group_after = GroupRef()
            plan.state_after, plan.group_after = state_before, group_after

        new_extremities = head.extremities
        new_state = head.state
        if not (event.rejected or event.soft_failed):
            new_extremities = [e for e in head.extremities if e not in event.prev_event_ids] + [event.event_id]
            plan.remove_extremities = [e for e in head.extremities if e in event.prev_event_ids]
            new_state = await self._resolve_current(version, event, state_after, new_extremities)
            plan.current_state_updates = {k: v for k, v in new_state.items() if head.state.get(k) != v}
            plan.current_state_deletes = [k for k in head.state if k not in new_state]

        known = await self._events.get_events(plan.current_state_updates.values())
        known[event.event_id] = event
        new_head = head
        if not (event.rejected or event.soft_failed):
            single = new_extremities == [event.event_id]
            new_head = RoomHead(head.room_id, version, new_extremities, new_state, group_after if single else None,
                                max(head.max_depth, event.depth))
        await self._writer.enqueue(head, new_head, event, plan, known)
        return event

    async def _state_before(self, version, event: Event, rows, prev_states: Mapping[str, Mapping[StateKey, str]]
                            ) -> tuple[dict[StateKey, str], GroupRef | None]:
        """The state before the event, with the group that holds it when it is one prev's."""
        groups = [rows[e].state_group for e in event.prev_event_ids]
        if len(set(groups)) == 1 and groups[0] is not None:
            group = groups[0]
            depth = await self._state.db.run_interaction("group_depth", group_depth_txn, group)
            return dict(await self._state.get_state_for_group(group)), GroupRef(group, depth)
        stateless = [e for e in event.prev_event_ids if rows[e].state_group is None and e not in prev_states
                     and not rows[e].event.rejected]
        if stateless:
            raise MissingState(stateless)
        state_sets = []
        for prev_id in event.prev_event_ids:
            row = rows[prev_id]
            if prev_id in prev_states:
                state_sets.append(prev_states[prev_id])
            elif row.state_group is not None:
                state_sets.append(await self._state.get_state_for_group(row.state_group))
        return await self._resolve(version, state_sets), None

    async def _resolve_current(self, version, new_event: Event, state_after: Mapping[StateKey, str],
                               extremities: list[str]) -> dict[StateKey, str]:
        if extremities == [new_event.event_id]:
            return dict(state_after)
        rows = await self._events.get_event_rows([e for e in extremities if e != new_event.event_id])
        state_sets = [state_after] + [await self._state.get_state_for_group(r.state_group)
                                      for r in rows.values() if r.state_group is not None]
        return await self._resolve(version, state_sets, new_event)

    async def _resolve(self, version, state_sets: list[Mapping[StateKey, str]],
                       new_event: Event | None = None) -> dict[StateKey, str]:
        """State resolution over ``state_sets``; ``new_event`` is the event being taken
        in, which the states may hold but the database does not yet."""
        if not state_sets:
            return {}
        if all(s == state_sets[0] for s in state_sets[1:]):
            return dict(state_sets[0])
        ids = {e for s in state_sets for e in s.values()}
        stored = ids - {new_event.event_id} if new_event is not None else ids
        if new_event is not None and new_event.event_id in ids:
            stored |= set(new_event.auth_event_ids)
        chain = await self._events.get_auth_chain_ids(stored)
        events = await self._writer.get_events(stored | chain)
        if new_event is not None:
            events[new_event.event_id] = new_event
        missing = (ids | chain) - set(events)
        if missing:
            raise MissingEvents(sorted(missing))
        return resolve_state(version, state_sets, events.__getitem__)

    async def _auth_state(self, version, event: Event, state: Mapping[StateKey, str]) -> dict[StateKey, Event]:
        keys = auth_types_for_event(version, event.type, event.sender, event.state_key, event.content)
        wanted = {k: state[k] for k in [*keys, CREATE_KEY] if k in state}
        loaded = await self._events.get_events(wanted.values())
        return {k: loaded[v] for k, v in wanted.items() if v in loaded}

    async def _create_event(self, head: RoomHead) -> Event | None:
        create_id = head.state.get(CREATE_KEY)
        return await self._events.get_event(create_id) if create_id else None

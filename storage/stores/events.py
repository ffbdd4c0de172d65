"""Events and the DAG: persisting an event with its edges, state group, extremities and
current state in one transaction; reading events back by ID or in stream order."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from homeserver.events.canonical import canonical_json
from homeserver.events.event import Event
from homeserver.events.room_versions import room_version
from storage.cache import LruCache
from storage.database import DatabasePool, Transaction
from storage.stores.rooms import record_txn_id_txn
from storage.stores.state import StateKey, insert_state_group_txn

# Every event write takes this lock on PostgreSQL, so stream orderings are handed out
# and committed in one order, with no gaps a reader could skip past.
_EVENTS_LOCK_ID = 0x44726F64


class GroupRef:
    """A state group that may not be written yet. The transaction that writes it fills in
    ``id`` and ``depth``; events queued behind it refer to it before it exists."""

    __slots__ = ("id", "depth")

    def __init__(self, group_id: int | None = None, depth: int = 0):
        self.id = group_id
        self.depth = depth

    def __repr__(self) -> str:
        return f"<GroupRef {self.id} depth={self.depth}>"


@dataclass
class PersistPlan:
    """What persisting one event changes besides the event row, decided by the handler."""
    # The group holding the state before the event (None: no group holds it, e.g. after a
    # resolution across forks; then a state event's new group is a full snapshot).
    state_group_before: GroupRef | None
    # For a state event: the state after it, and the ref its new group is written into.
    state_after: Mapping[StateKey, str] | None = None
    group_after: GroupRef | None = None
    # Current-state rows to write (key -> event_id) and to delete, when they change.
    current_state_updates: dict[StateKey, str] = field(default_factory=dict)
    current_state_deletes: list[StateKey] = field(default_factory=list)
    # Forward extremities after this event.
    remove_extremities: list[str] = field(default_factory=list)
    add_extremity: bool = True
    # (user_id, device_id, txn_key) of the client request that sent it, for idempotent retries.
    client_txn: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Persisted:
    stream_ordering: int
    state_group: int | None


class DuplicateTransaction(Exception):
    """The client transaction ID already made an event (found only in the database)."""

    def __init__(self, event_id: str, client_txn: tuple[str, str, str]):
        super().__init__(f"transaction already sent {event_id}")
        self.event_id = event_id
        self.client_txn = client_txn


def _membership_of(event_id: str, key: StateKey, events: Mapping[str, Event]) -> str | None:
    if key[0] != "m.room.member":
        return None
    event = events.get(event_id)
    return event.membership if event is not None else None


def persist_events_txn(txn: Transaction, batch: list[tuple[Event, PersistPlan, Mapping[str, Event]]],
                       received_ts: int) -> list[Persisted]:
    """Persist events in order, in one transaction (a batch queued for one room)."""
    if txn.dialect == "postgres":
        txn.execute("SELECT pg_advisory_xact_lock(?)", (_EVENTS_LOCK_ID,))
    # Backfilled history takes negative positions, so the next new event is above 0.
    stream = max(txn.select_one("SELECT COALESCE(MAX(stream_ordering), 0) FROM events")[0], 0)
    results = []
    for event, plan, known_events in batch:
        stream += 1
        results.append(_persist_one_txn(txn, event, plan, received_ts, known_events, stream))
    return results


def persist_backfilled_txn(txn: Transaction, events: list[Event], received_ts: int) -> list[Persisted]:
    """Store history fetched from another server below every position handed out so far
    (newest first, each one lower), so /messages finds it going back and /sync never
    shows it as new. Events we held as outliers join the timeline at their new position."""
    if txn.dialect == "postgres":
        txn.execute("SELECT pg_advisory_xact_lock(?)", (_EVENTS_LOCK_ID,))
    stream = min(txn.select_one("SELECT COALESCE(MIN(stream_ordering), 0) FROM events")[0], 0)
    results = []
    for event in sorted(events, key=lambda e: (-e.depth, e.event_id)):
        stream -= 1
        row = txn.select_one("SELECT outlier, state_group FROM events WHERE event_id = ?", (event.event_id,))
        if row is not None:
            txn.execute("UPDATE events SET outlier = FALSE, stream_ordering = ? WHERE event_id = ?",
                        (stream, event.event_id))
            results.append(Persisted(stream, row[1]))
            continue
        plan = PersistPlan(state_group_before=None, add_extremity=False)
        results.append(_persist_one_txn(txn, event, plan, received_ts, {}, stream))
    return results


def relation_of(event: Event) -> tuple[str, str, str | None] | None:
    """(target event, rel_type, annotation key) of an event's m.relates_to, if well formed."""
    relates = event.content.get("m.relates_to")
    if not isinstance(relates, dict):
        return None
    target, rel_type = relates.get("event_id"), relates.get("rel_type")
    if not isinstance(target, str) or not isinstance(rel_type, str) or not target.startswith("$"):
        return None
    key = relates.get("key") if isinstance(relates.get("key"), str) else None
    return target, rel_type, key


def _persist_one_txn(txn: Transaction, event: Event, plan: PersistPlan, received_ts: int,
                     known_events: Mapping[str, Event], stream: int) -> Persisted:
    if plan.client_txn is not None:
        earlier = txn.select_one("SELECT event_id FROM event_txn_ids WHERE user_id = ? AND device_id = ?"
                                 " AND txn_key = ?", plan.client_txn)
        if earlier is not None:
            raise DuplicateTransaction(earlier[0], plan.client_txn)

    before = plan.state_group_before
    state_group = before.id if before is not None else None
    if plan.state_after is not None and plan.group_after is not None:
        # A state event's new group, or (after a resolution across forks) a snapshot of
        # the resolved state so that every event has the state at it stored.
        delta = {event.state_tuple: event.event_id} if event.is_state() and not event.rejected else {}
        parent = before if before is not None and before.id is not None else None
        state_group, depth = insert_state_group_txn(txn, event.room_id, parent.id if parent else None,
                                                    parent.depth if parent else 0, delta, plan.state_after)
        if plan.group_after is not None:
            plan.group_after.id, plan.group_after.depth = state_group, depth

    txn.execute(
        "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender, depth, origin_server_ts,"
        " received_ts, json, rejected_reason, soft_failed, outlier, state_group)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (stream, event.event_id, event.room_id, event.type, event.state_key, event.sender, event.depth,
         event.origin_server_ts, received_ts, canonical_json(event.pdu).decode("utf-8"), event.rejected_reason,
         event.soft_failed, event.outlier, state_group))
    txn.execute_many("INSERT INTO event_edges (event_id, prev_event_id, room_id) VALUES (?, ?, ?)"
                     " ON CONFLICT DO NOTHING",
                     [(event.event_id, prev, event.room_id) for prev in event.prev_event_ids])
    txn.execute_many("INSERT INTO event_auth (event_id, auth_id, room_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                     [(event.event_id, auth, event.room_id) for auth in event.auth_event_ids])
    relation = relation_of(event)
    if relation is not None and not event.rejected:
        target, rel_type, key = relation
        txn.execute("INSERT INTO event_relations (event_id, relates_to_id, rel_type, aggregation_key, room_id,"
                    " sender, type, stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (event.event_id, target, rel_type, key, event.room_id, event.sender, event.type, stream))
    if event.type == "m.room.redaction" and event.redacts and not event.rejected:
        # A redacted event no longer relates to anything (its content is gone).
        txn.execute("DELETE FROM event_relations WHERE event_id = ?", (event.redacts,))
        txn.execute("INSERT INTO event_redactions (event_id, redacts, room_id) VALUES (?, ?, ?)"
                    " ON CONFLICT DO NOTHING", (event.event_id, event.redacts, event.room_id))

    if plan.client_txn is not None:
        user_id, device_id, txn_key = plan.client_txn
        record_txn_id_txn(txn, user_id, device_id, txn_key, event.event_id, received_ts)

    if not (event.outlier or event.rejected or event.soft_failed):
        for extremity in plan.remove_extremities:
            txn.execute("DELETE FROM event_forward_extremities WHERE room_id = ? AND event_id = ?",
                        (event.room_id, extremity))
        if plan.add_extremity:
            txn.execute("INSERT INTO event_forward_extremities (room_id, event_id) VALUES (?, ?)"
                        " ON CONFLICT DO NOTHING", (event.room_id, event.event_id))
        for key in plan.current_state_deletes:
            txn.execute("DELETE FROM current_state WHERE room_id = ? AND type = ? AND state_key = ?",
                        (event.room_id, key[0], key[1]))
        for key, event_id in plan.current_state_updates.items():
            txn.execute(
                "INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = excluded.event_id,"
                " membership = excluded.membership",
                (event.room_id, key[0], key[1], event_id, _membership_of(event_id, key, known_events)))
    return Persisted(stream, state_group)


_EVENT_COLUMNS = "e.event_id, e.json, e.room_id, r.room_version, e.rejected_reason, e.soft_failed, e.outlier," \
                 " e.stream_ordering, e.state_group"


@dataclass(frozen=True)
class EventRow:
    event: Event
    state_group: int | None


def _row_to_event(row) -> EventRow:
    event_id, raw, room_id, version_id, rejected, soft_failed, outlier, stream, group = row
    event = Event(json.loads(raw), room_version(version_id), event_id, room_id=room_id)
    event.rejected_reason = rejected
    event.soft_failed = bool(soft_failed)
    event.outlier = bool(outlier)
    event.stream_ordering = stream
    return EventRow(event, group)


def get_event_rows_txn(txn: Transaction, event_ids: list[str]) -> dict[str, EventRow]:
    found: dict[str, EventRow] = {}
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start:start + 500]
        placeholders = ",".join("?" * len(chunk))
        for row in txn.select_all(f"SELECT {_EVENT_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
                                  f" WHERE e.event_id IN ({placeholders})", chunk):
            parsed = _row_to_event(row)
            found[parsed.event.event_id] = parsed
    return found


class EventStore:
    def __init__(self, db: DatabasePool, cache_size: int = 20000):
        self.db = db
        self._cache: LruCache[str, EventRow] = LruCache(cache_size)

    def remember(self, event: Event, state_group: int | None) -> None:
        self._cache.set(event.event_id, EventRow(event, state_group))

    async def get_event_rows(self, event_ids: Iterable[str]) -> dict[str, EventRow]:
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, EventRow] = {}
        missing = []
        for event_id in wanted:
            row = self._cache.get(event_id)
            if row is None:
                missing.append(event_id)
            else:
                found[event_id] = row
        if missing:
            loaded = await self.db.run_interaction("get_events", get_event_rows_txn, missing)
            for event_id, row in loaded.items():
                self._cache.set(event_id, row)
            found.update(loaded)
        return found

    async def get_events(self, event_ids: Iterable[str]) -> dict[str, Event]:
        return {k: v.event for k, v in (await self.get_event_rows(event_ids)).items()}

    async def get_event(self, event_id: str) -> Event | None:
        return (await self.get_events([event_id])).get(event_id)

    async def persist_batch(self, batch: list[tuple[Event, PersistPlan, Mapping[str, Event]]],
                            received_ts: int) -> list[Persisted]:
        results = await self.db.run_interaction("persist_events", persist_events_txn, batch, received_ts)
        for (event, _, _), persisted in zip(batch, results):
            event.stream_ordering = persisted.stream_ordering
            self._cache.set(event.event_id, EventRow(event, persisted.state_group))
        return results

    async def persist_backfilled(self, events: list[Event], received_ts: int) -> None:
        results = await self.db.run_interaction("persist_backfilled", persist_backfilled_txn, events, received_ts)
        ordered = sorted(events, key=lambda e: (-e.depth, e.event_id))
        for event, persisted in zip(ordered, results):
            event.outlier = False
            event.stream_ordering = persisted.stream_ordering
            self._cache.set(event.event_id, EventRow(event, persisted.state_group))

    async def backward_extremities(self, room_id: str, limit: int = 20) -> list[str]:
        """Events the room's timeline refers to as prev events but that are not in it
        here (before our join, or lost while we were away): where backfill starts."""
        rows = await self.db.run_interaction("backward_extremities", lambda txn: txn.select_all(
            "SELECT DISTINCT ed.prev_event_id FROM event_edges ed"
            " JOIN events child ON child.event_id = ed.event_id AND NOT child.outlier"
            " LEFT JOIN events e ON e.event_id = ed.prev_event_id"
            " WHERE ed.room_id = ? AND (e.event_id IS NULL OR e.outlier) LIMIT ?", (room_id, limit)))
        return [r[0] for r in rows]

    async def get_redactions(self, event_ids: list[str]) -> dict[str, Event]:
        """For each of ``event_ids`` that was redacted, the redaction event (the first by ID
        when there are several, so every reader shows the same one)."""
        if not event_ids:
            return {}

        def txn_func(txn: Transaction) -> dict[str, str]:
            first: dict[str, str] = {}
            for offset in range(0, len(event_ids), 500):
                chunk = event_ids[offset:offset + 500]
                placeholders = ",".join("?" * len(chunk))
                for event_id, redacts in txn.select_all(
                        f"SELECT event_id, redacts FROM event_redactions WHERE redacts IN ({placeholders})"
                        " ORDER BY event_id", chunk):
                    first.setdefault(redacts, event_id)
            return first
        first = await self.db.run_interaction("get_redactions", txn_func)
        events = await self.get_events(first.values())
        return {target: events[redaction] for target, redaction in first.items() if redaction in events}

    async def recent_events(self, room_ids: list[str], limit: int, after: int, upto: int) -> dict[str, list[EventRow]]:
        """Per room, the newest ``limit`` visible events with ``after < stream <= upto``,
        oldest first, in one query for all rooms."""
        if not room_ids or limit <= 0:
            return {}

        def txn_func(txn: Transaction) -> dict[str, list[EventRow]]:
            result: dict[str, list[EventRow]] = {}
            for offset in range(0, len(room_ids), 500):
                chunk = room_ids[offset:offset + 500]
                placeholders = ",".join("?" * len(chunk))
                rows = txn.select_all(
                    f"SELECT {_EVENT_COLUMNS} FROM (SELECT x.*, ROW_NUMBER() OVER"
                    " (PARTITION BY x.room_id ORDER BY x.stream_ordering DESC) AS rn FROM events x"
                    f" WHERE x.room_id IN ({placeholders}) AND x.stream_ordering > ? AND x.stream_ordering <= ?"
                    " AND NOT x.outlier AND NOT x.soft_failed AND x.rejected_reason IS NULL) e"
                    " JOIN rooms r ON r.room_id = e.room_id WHERE e.rn <= ? ORDER BY e.stream_ordering",
                    [*chunk, after, upto, limit])
                for row in rows:
                    parsed = _row_to_event(row)
                    result.setdefault(parsed.event.room_id, []).append(parsed)
            return result
        rows = await self.db.run_interaction("recent_events", txn_func)
        for room_rows in rows.values():
            for row in room_rows:
                self._cache.set(row.event.event_id, row)
        return rows

    async def last_event_before(self, room_ids: list[str], upto: int) -> dict[str, EventRow]:
        """Per room, the newest visible event with ``stream <= upto`` (its state group is
        the room's state at that point of the stream)."""
        rows = await self.recent_events(room_ids, 1, 0, upto)
        return {room_id: room_rows[-1] for room_id, room_rows in rows.items() if room_rows}

    async def paginate(self, room_id: str, from_stream: int, backwards: bool, limit: int,
                       to_stream: int | None = None) -> list[EventRow]:
        """Events of a room from a stream position: older first when going forwards, newer
        first when going backwards (the /messages order)."""
        def txn_func(txn: Transaction) -> list[EventRow]:
            if backwards:
                bound, lower = "e.stream_ordering < ?", to_stream if to_stream is not None else -2 ** 62
                where = f"{bound} AND e.stream_ordering > ?"
                order = "DESC"
            else:
                where = "e.stream_ordering >= ? AND e.stream_ordering < ?"
                lower = to_stream if to_stream is not None else 2 ** 62
                order = "ASC"
            rows = txn.select_all(
                f"SELECT {_EVENT_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
                f" WHERE e.room_id = ? AND {where} AND NOT e.outlier AND NOT e.soft_failed"
                f" AND e.rejected_reason IS NULL ORDER BY e.stream_ordering {order} LIMIT ?",
                (room_id, from_stream, lower, limit))
            return [_row_to_event(row) for row in rows]
        rows = await self.db.run_interaction("paginate", txn_func)
        for row in rows:
            self._cache.set(row.event.event_id, row)
        return rows

    async def get_auth_chain_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Every event reachable from ``event_ids`` through auth_events (not including them)."""
        start = list(event_ids)

        def txn_func(txn: Transaction) -> set[str]:
            seen: set[str] = set()
            frontier = start
            while frontier:
                found = []
                for offset in range(0, len(frontier), 500):
                    chunk = frontier[offset:offset + 500]
                    placeholders = ",".join("?" * len(chunk))
                    found += [r[0] for r in txn.select_all(
                        f"SELECT auth_id FROM event_auth WHERE event_id IN ({placeholders})", chunk)]
                frontier = [e for e in set(found) if e not in seen]
                seen.update(frontier)
            return seen
        return await self.db.run_interaction("get_auth_chain_ids", txn_func)

    async def max_stream_ordering(self) -> int:
        return await self.db.run_interaction(
            "max_stream", lambda txn: txn.select_one("SELECT COALESCE(MAX(stream_ordering), 0) FROM events")[0])

    # --- history read by the Drocsid audit log (homeserver.drocsid.audit_log) ------------

    async def state_keys_ever(self, room_ids: list[str], event_type: str) -> list[tuple[str, str, int]]:
        """Every (room_id, state_key) that a state event of this type ever had in these
        rooms, with the stream ordering of the first such event."""
        if not room_ids:
            return []
        placeholders = ",".join("?" * len(room_ids))
        rows = await self.db.run_interaction("state_keys_ever", lambda txn: txn.select_all(
            f"SELECT room_id, state_key, MIN(stream_ordering) FROM events WHERE room_id IN ({placeholders})"
            " AND type = ? AND state_key IS NOT NULL AND NOT outlier AND rejected_reason IS NULL"
            " GROUP BY room_id, state_key", [*room_ids, event_type]))
        return sorted((r[0], r[1], r[2]) for r in rows)

    async def first_events(self, room_ids: list[str], limit: int) -> dict[str, list[Event]]:
        """Per room, its first ``limit`` events in stream order (how it was created)."""
        if not room_ids:
            return {}

        def txn_func(txn: Transaction) -> list[EventRow]:
            # One short index range per room (not a window over whole rooms' histories).
            return [_row_to_event(row) for room_id in room_ids for row in txn.select_all(
                f"SELECT {_EVENT_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
                " WHERE e.room_id = ? AND NOT e.outlier AND e.rejected_reason IS NULL"
                " ORDER BY e.stream_ordering LIMIT ?", (room_id, limit))]
        result: dict[str, list[Event]] = {}
        for row in await self.db.run_interaction("first_events", txn_func):
            result.setdefault(row.event.room_id, []).append(row.event)
        return result

    async def state_history(self, room_ids: list[str], *, before_stream: int | None = None,
                            after_stream: int | None = None, before_ts: int | None = None,
                            after_ts: int | None = None, limit: int = 100) -> list[tuple[Event, str | None]]:
        """State events and redactions of these rooms, newest first, each with the ID of the
        event it replaced in the state (same room, type and state_key; None for the first
        and for redactions). One query; bounds are exclusive."""
        if not room_ids:
            return []
        placeholders = ",".join("?" * len(room_ids))
        where, args = [], []
        for clause, value in (("e.stream_ordering < ?", before_stream), ("e.stream_ordering > ?", after_stream),
                              ("e.origin_server_ts < ?", before_ts), ("e.origin_server_ts > ?", after_ts)):
            if value is not None:
                where.append(clause)
                args.append(value)

        def txn_func(txn: Transaction) -> list[tuple[EventRow, str | None]]:
            rows = txn.select_all(
                f"SELECT {_EVENT_COLUMNS}, e.prev_id FROM (SELECT x.*, LAG(x.event_id) OVER"
                " (PARTITION BY x.room_id, x.type, x.state_key ORDER BY x.stream_ordering) AS prev_id FROM events x"
                f" WHERE x.room_id IN ({placeholders}) AND (x.state_key IS NOT NULL OR x.type = 'm.room.redaction')"
                " AND NOT x.outlier AND NOT x.soft_failed AND x.rejected_reason IS NULL) e"
                " JOIN rooms r ON r.room_id = e.room_id"
                f" WHERE {' AND '.join(where) or '1 = 1'} ORDER BY e.stream_ordering DESC LIMIT ?",
                [*room_ids, *args, limit])
            return [(_row_to_event(row[:-1]), row[-1]) for row in rows]
        rows = await self.db.run_interaction("state_history", txn_func)
        return [(row.event, prev_id if row.event.state_key is not None else None) for row, prev_id in rows]

    async def stream_ordering_of(self, event_id: str) -> int | None:
        row = await self.db.run_interaction("stream_ordering_of", lambda txn: txn.select_one(
            "SELECT stream_ordering FROM events WHERE event_id = ?", (event_id,)))
        return row[0] if row else None


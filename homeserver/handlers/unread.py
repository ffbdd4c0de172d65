"""Unread counts for /sync: the events after a user's read receipt that their push rules
say notify (and highlight).

Counted when a sync asks, over at most ``MAX_EVENTS_COUNTED`` events after the receipt
(a room unread for longer shows that many); the push rules come from ``hs.push_rules``.
A count is kept per user and room with the stream position it reached, so the next
sync only judges the events that arrived since, until the receipt moves or the push
rules change.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.events.auth_rules import user_power_level
from homeserver.handlers.room_members import RoomMembersCache
from homeserver.push import PushContext
from storage.cache import LruCache

MAX_EVENTS_COUNTED = 200
COUNTED_TYPES = ("m.room.message", "m.room.encrypted", "m.sticker", "m.call.invite", "m.room.member",
                 "m.room.tombstone", "m.room.server_acl", "m.poll.start", "org.matrix.msc3381.poll.start")


@dataclass(frozen=True)
class _Count:
    read_position: int
    evaluator: object
    upto: int  # the newest stream position judged
    notify: int
    highlight: int


class UnreadCounter:
    def __init__(self, receipts_db, events, writer, heads, push_rules_service):
        self._db = receipts_db
        self._events = events
        self._writer = writer
        self._heads = heads
        self._push_rules = push_rules_service
        self.members = RoomMembersCache(heads, writer)
        self._counts: LruCache[tuple[str, str], _Count] = LruCache(100_000)

    async def push_rules_json(self, user_id: str) -> dict | None:
        """The user's push rules as the m.push_rules account data clients expect."""
        service = self._push_rules()
        return await service.ruleset_json(user_id) if service is not None else None

    async def _read_positions(self, user_id: str, room_ids: list[str]) -> dict[str, int]:
        """room -> stream position of the user's newest read receipt (main timeline)."""
        if not room_ids:
            return {}
        placeholders = ",".join("?" * len(room_ids))
        rows = await self._db.run_interaction("read_positions", lambda txn: txn.select_all(
            f"SELECT r.room_id, MAX(e.stream_ordering) FROM receipts r JOIN events e ON e.event_id = r.event_id"
            f" WHERE r.user_id = ? AND r.receipt_type IN ('m.read', 'm.read.private')"
            f" AND r.thread_id IN ('', 'main') AND r.room_id IN ({placeholders}) GROUP BY r.room_id",
            [user_id, *room_ids]))
        return {r[0]: r[1] for r in rows}

    async def counts(self, user_id: str, room_ids: list[str]) -> dict[str, tuple[int, int]]:
        """room -> (notification_count, highlight_count)."""
        if self._push_rules() is None or not room_ids:
            return {}
        evaluator = await self._push_rules().evaluator_for_user(user_id)
        positions = await self._read_positions(user_id, room_ids)
        result = {}
        for room_id in room_ids:
            read_position = positions.get(room_id, 0)
            earlier = self._counts.get((user_id, room_id))
            if earlier is None or earlier.read_position != read_position or earlier.evaluator is not evaluator:
                earlier = _Count(read_position, evaluator, read_position, 0, 0)
            rows = (await self._events.recent_events([room_id], MAX_EVENTS_COUNTED, earlier.upto, 2 ** 62)
                    ).get(room_id, [])
            if len(rows) >= MAX_EVENTS_COUNTED and earlier.upto != read_position:
                # Too much arrived since the last count to add to it: count afresh.
                earlier = _Count(read_position, evaluator, read_position, 0, 0)
                rows = (await self._events.recent_events([room_id], MAX_EVENTS_COUNTED, read_position, 2 ** 62)
                        ).get(room_id, [])
            notify, highlight = earlier.notify, earlier.highlight
            events = [r.event for r in rows if r.event.sender != user_id and r.event.type in COUNTED_TYPES]
            if events:
                context = await self._context(user_id, room_id)
                for event in events:
                    outcome = evaluator.evaluate(event, context(event.sender))
                    if outcome.notify:
                        notify += 1
                        highlight += 1 if outcome.highlight else 0
            upto = max([earlier.upto] + [r.event.stream_ordering or 0 for r in rows])
            self._counts.set((user_id, room_id), _Count(read_position, evaluator, upto, notify, highlight))
            result[room_id] = (notify, highlight)
        return result

    async def _context(self, user_id: str, room_id: str):
        head = await self._heads.get(room_id)
        keys = [("m.room.power_levels", ""), ("m.room.create", ""), ("m.room.member", user_id)]
        ids = {k: head.state[k] for k in keys if k in head.state}
        loaded = await self._writer.get_events(ids.values())
        state = {k: loaded[v] for k, v in ids.items() if v in loaded}
        members = len((await self.members.get(room_id)).joined)
        member = state.get(("m.room.member", user_id))
        name = member.content.get("displayname") if member else None
        levels = state.get(("m.room.power_levels", ""))
        notification_levels = levels.content.get("notifications") if levels else None

        def for_sender(sender: str) -> PushContext:
            return PushContext(user_id, member_count=members, display_name=name,
                               sender_power_level=user_power_level(head.version, state, sender),
                               notification_levels=notification_levels)
        return for_sender

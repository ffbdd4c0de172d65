"""/sync: what changed for a user since a token, or everything for a first sync.

Reads are batched across rooms: one query for the timelines of all rooms, one for the
events before them, one for receipts, one for account data; room state comes from the
cached room heads and state groups. With nothing new, it long-polls on the notifier
(listening before it reads, so nothing written meanwhile is missed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable

from homeserver.events.client_format import client_event, stripped_event, stripped_state_ids
from homeserver.events.event import Event
from homeserver.handlers.filtering import SyncFilter
from homeserver.notifier import StreamToken

MAX_TIMEOUT_SECS = 600


@dataclass
class _RoomPlan:
    room_id: str
    membership: str
    # The room's events are read from here (exclusive) ...
    after: int
    # ... up to here (inclusive; a left room stops at the leave).
    upto: int
    full_state: bool
    member_event: Event | None = None


@dataclass
class SyncResult:
    token: StreamToken
    body: dict[str, Any] = field(default_factory=dict)
    # Whether a section provider found something new.
    provider_news: bool = False

    def is_empty(self) -> bool:
        rooms = self.body["rooms"]
        return not (rooms["join"] or rooms["invite"] or rooms["leave"] or rooms["knock"]
                    or self.body["account_data"]["events"]
                    or self.provider_news)


SectionProvider = Callable[[str, str, "StreamToken | None", "StreamToken"], Awaitable[tuple[dict, bool]]]


class SyncHandler:
    def __init__(self, clock, notifier, rooms, events, state, heads, writer, receipts, account_data, typing,
                 relations, unread):
        self._providers: list[SectionProvider] = []
        # (room_id, user_id) -> the room preview of an invite from another server (federation sets it).
        self.remote_invite_state = None
        self._unread = unread
        self._relations = relations
        self._clock = clock
        self._notifier = notifier
        self._rooms = rooms
        self._events = events
        self._state = state
        self._heads = heads
        self._writer = writer
        self._receipts = receipts
        self._account_data = account_data
        self._typing = typing

    def add_section_provider(self, provider: "SectionProvider") -> None:
        """Another part of the server adds to every sync (to-device, device lists,
        presence ...): ``provider(user_id, device_id, since, token)`` returns the top-level
        keys it fills and whether they hold anything new."""
        self._providers.append(provider)

    async def sync(self, user_id: str, device_id: str, since: StreamToken | None, sync_filter: SyncFilter,
                   timeout_ms: int, full_state: bool) -> dict[str, Any]:
        joined = await self._rooms.get_rooms_for_user(user_id)
        listener = self._notifier.listen(user_id, joined)
        try:
            result = await self._build(user_id, device_id, since, sync_filter, full_state)
            if since is not None and result.is_empty() and timeout_ms > 0:
                await self._notifier.wait(listener, min(timeout_ms / 1000, MAX_TIMEOUT_SECS), self._clock)
                result = await self._build(user_id, device_id, since, sync_filter, full_state)
        finally:
            self._notifier.stop_listening(listener)
        return {"next_batch": result.token.serialize(), **result.body}

    async def _build(self, user_id: str, device_id: str, since: StreamToken | None, sync_filter: SyncFilter,
                     full_state: bool) -> SyncResult:
        token = self._notifier.current_token()
        if since is not None:
            # Typing lives in memory: after a restart its positions start again from 0.
            if since.typing > token.typing:
                since = replace(since, typing=0)
            if since.events > token.events:
                since = replace(since, events=token.events)
        plans = await self._plan_rooms(user_id, since, token, sync_filter, full_state)
        now = self._clock.time_ms()

        join_plans = [p for p in plans if p.membership == "join"]
        leave_plans = [p for p in plans if p.membership in ("leave", "ban")]
        ignored = await self.ignored_users(user_id)
        # Invites from users one ignores are not shown (m.ignored_user_list).
        invite_plans = [p for p in plans if p.membership == "invite"
                        and not (p.member_event is not None and p.member_event.sender in ignored)]
        timelines = await self._timelines(join_plans + leave_plans, sync_filter)
        receipts = await self._receipts.for_rooms([p.room_id for p in join_plans],
                                                  0 if since is None else since.receipts)
        room_account_data: dict[str, list] = {}
        global_account_data = []
        for room_id, data_type, content in await self._account_data.changed_since(
                user_id, 0 if since is None else since.account_data):
            if room_id:
                room_account_data.setdefault(room_id, []).append({"type": data_type, "content": content})
            elif sync_filter.account_data.allows(data_type, user_id):
                global_account_data.append({"type": data_type, "content": content})

        if since is None and not any(e["type"] == "m.push_rules" for e in global_account_data):
            push_rules = await self._unread.push_rules_json(user_id)
            if push_rules is not None:
                global_account_data.append({"type": "m.push_rules", "content": push_rules})

        rooms: dict[str, dict] = {"join": {}, "invite": {}, "leave": {}, "knock": {}}
        for plan in join_plans:
            section = await self._room_section(user_id, device_id, plan, timelines.get(plan.room_id), since,
                                               sync_filter, now, ignored)
            ephemeral = self._ephemeral(user_id, plan, since, receipts)
            data = room_account_data.get(plan.room_id, [])
            if since is not None and not plan.full_state and not section["timeline"]["events"] \
                    and not section["state"]["events"] and not ephemeral and not data:
                continue
            section["ephemeral"] = {"events": ephemeral}
            section["account_data"] = {"events": data}
            section["unread_notifications"] = {"notification_count": 0, "highlight_count": 0}
            section["summary"] = await self._summary(user_id, plan.room_id)
            rooms["join"][plan.room_id] = section
        counts = await self._unread.counts(user_id, list(rooms["join"]))
        for room_id, (notify, highlight) in counts.items():
            rooms["join"][room_id]["unread_notifications"] = {"notification_count": notify,
                                                              "highlight_count": highlight}
        for plan in leave_plans:
            section = await self._room_section(user_id, device_id, plan, timelines.get(plan.room_id), since,
                                               sync_filter, now, ignored)
            section["account_data"] = {"events": room_account_data.get(plan.room_id, [])}
            rooms["leave"][plan.room_id] = section
        for plan in invite_plans:
            rooms["invite"][plan.room_id] = {"invite_state": {"events": await self._invite_state(plan, now)}}
        for plan in (p for p in plans if p.membership == "knock"):
            rooms["knock"][plan.room_id] = {"knock_state": {"events": await self._invite_state(plan, now)}}

        body = {
            "rooms": rooms,
            "account_data": {"events": global_account_data},
            "presence": {"events": []},
            "to_device": {"events": []},
            "device_lists": {"changed": [], "left": []},
            "device_one_time_keys_count": {},
            "device_unused_fallback_key_types": [],
        }
        news = False
        for provider in self._providers:
            fragment, has_news = await provider(user_id, device_id, since, token)
            body.update(fragment)
            news = news or has_news
        return SyncResult(token, body, news)

    async def _plan_rooms(self, user_id: str, since: StreamToken | None, token: StreamToken,
                          sync_filter: SyncFilter, full_state: bool) -> list[_RoomPlan]:
        """Which rooms to send, and from where: rooms whose membership changed since the
        token are sent from the start (full state), others incrementally."""
        memberships = await self._rooms.get_memberships_of_user(user_id)
        forgotten = await self._rooms.forgotten_rooms(user_id)
        member_ids = [event_id for _, (_, event_id) in memberships.items()]
        member_rows = await self._events.get_event_rows(member_ids)
        plans = []
        for room_id, (membership, event_id) in memberships.items():
            if not sync_filter.allows_room(room_id):
                continue
            row = member_rows.get(event_id)
            changed_at = row.event.stream_ordering if row and row.event.stream_ordering else 0
            fresh = since is None or changed_at > since.events
            if membership == "join":
                plans.append(_RoomPlan(room_id, "join", 0 if fresh or full_state else since.events,
                                       token.events, fresh or full_state, row.event if row else None))
            elif membership in ("invite", "knock") and fresh:
                plans.append(_RoomPlan(room_id, membership, 0, token.events, True, row.event if row else None))
            elif membership in ("leave", "ban") and room_id not in forgotten \
                    and (fresh and since is not None or sync_filter.include_leave):
                plans.append(_RoomPlan(room_id, membership, 0 if since is None else since.events, changed_at,
                                       True, row.event if row else None))
        return plans

    async def _timelines(self, plans: list[_RoomPlan], sync_filter: SyncFilter) -> dict[str, list]:
        """One query per distinct window: the newest limit+1 events of each room."""
        limit = sync_filter.timeline_limit
        windows: dict[tuple[int, int], list[str]] = {}
        for plan in plans:
            windows.setdefault((plan.after, plan.upto), []).append(plan.room_id)
        timelines: dict[str, list] = {}
        for (after, upto), room_ids in windows.items():
            timelines.update(await self._events.recent_events(room_ids, limit + 1, after, upto))
        return timelines

    async def _room_section(self, user_id: str, device_id: str, plan: _RoomPlan, rows, since: StreamToken | None,
                            sync_filter: SyncFilter, now: int, ignored: frozenset[str] = frozenset()) -> dict:
        limit = sync_filter.timeline_limit
        rows = list(rows or [])
        limited = len(rows) > limit
        window = rows[len(rows) - limit:] if limited else rows
        returned = [r for r in window if sync_filter.timeline.allows_event(r.event)
                    and not (r.event.sender in ignored and not r.event.is_state())] if limit else []
        events = [r.event for r in returned]
        redactions = await self._events.get_redactions([e.event_id for e in events])
        txn_ids = await self._transaction_ids(user_id, device_id, [e for e in events if e.sender == user_id])
        bundles = await self._relations.bundle(events, user_id)
        timeline_events = [client_event(e, now, redacted_by=redactions.get(e.event_id), include_room_id=False,
                                        transaction_id=txn_ids.get(e.event_id), relations=bundles.get(e.event_id))
                           for e in events]
        prev_batch = f"t{events[0].stream_ordering}" if events else f"t{plan.upto + 1}"

        state_events: list[dict] = []
        if plan.full_state or limited:
            start_state = await self._state_before_timeline(plan, rows, returned)
            if not plan.full_state and since is not None:
                # Only what changed between the token and the start of the timeline.
                before = await self._state_at(plan.room_id, since.events)
                start_state = {k: v for k, v in start_state.items() if before.get(k) != v}
            timeline_ids = {e.event_id for e in events}
            wanted = {k: v for k, v in start_state.items() if v not in timeline_ids}
            if sync_filter.state.lazy_load_members:
                senders = {e.sender for e in events} | {user_id}
                wanted = {k: v for k, v in wanted.items() if k[0] != "m.room.member" or k[1] in senders}
            loaded = await self._writer.get_events(wanted.values())
            state_events = [client_event(loaded[v], now, include_room_id=False) for v in wanted.values()
                            if v in loaded and sync_filter.state.allows_event(loaded[v])]
        return {"timeline": {"events": timeline_events, "limited": limited, "prev_batch": prev_batch},
                "state": {"events": state_events}}

    async def ignored_users(self, user_id: str) -> frozenset[str]:
        content = await self._account_data.get(user_id, "", "m.ignored_user_list") or {}
        ignored = content.get("ignored_users")
        return frozenset(ignored) if isinstance(ignored, dict) else frozenset()

    async def _transaction_ids(self, user_id: str, device_id: str, own_events: list[Event]) -> dict[str, str]:
        """The transaction IDs this device sent its events with, so clients match echoes."""
        keys = await self._rooms.txn_keys_for_events(user_id, device_id, [e.event_id for e in own_events])
        found = {}
        for event in own_events:
            key = keys.get(event.event_id)
            prefix = f"send/{event.room_id}/{event.type}/"
            if key is not None and key.startswith(prefix):
                found[event.event_id] = key[len(prefix):]
        return found

    async def _state_before_timeline(self, plan: _RoomPlan, rows, returned) -> dict:
        """The room state just before the first event the timeline returns: the state
        group of the event before it. With nothing returned, the state after the window."""
        if not returned:
            if rows and rows[-1].state_group is not None:
                return dict(await self._state.get_state_for_group(rows[-1].state_group))
            return await self._state_at(plan.room_id, plan.upto)
        index = rows.index(returned[0])
        if index > 0:
            group = rows[index - 1].state_group
            return dict(await self._state.get_state_for_group(group)) if group is not None else {}
        if plan.after == 0:
            return {}  # the timeline starts at the room's creation
        return await self._state_at(plan.room_id, plan.after)

    async def _state_at(self, room_id: str, stream: int) -> dict:
        last = await self._events.last_event_before([room_id], stream)
        row = last.get(room_id)
        if row is None or row.state_group is None:
            return {}
        return dict(await self._state.get_state_for_group(row.state_group))

    def _ephemeral(self, user_id: str, plan: _RoomPlan, since: StreamToken | None, receipts) -> list[dict]:
        events = []
        if since is None or plan.full_state or self._typing.changed_since(plan.room_id, since.typing):
            typing = self._typing.typing_in(plan.room_id)
            if typing or since is not None:
                events.append({"type": "m.typing", "content": {"user_ids": typing}})
        content: dict[str, dict] = {}
        for receipt in receipts:
            if receipt.room_id != plan.room_id:
                continue
            if receipt.receipt_type == "m.read.private" and receipt.user_id != user_id:
                continue
            data: dict[str, Any] = {"ts": receipt.ts}
            if receipt.thread_id:
                data["thread_id"] = receipt.thread_id
            content.setdefault(receipt.event_id, {}).setdefault(receipt.receipt_type, {})[receipt.user_id] = data
        if content:
            events.append({"type": "m.receipt", "content": content})
        return events

    async def _summary(self, user_id: str, room_id: str) -> dict:
        if await self._heads.get(room_id) is None:
            return {}
        members = await self._unread.members.get(room_id)
        heroes = [u for u in members.joined + members.invited if u != user_id][:5]
        return {"m.heroes": heroes, "m.joined_member_count": len(members.joined),
                "m.invited_member_count": len(members.invited)}

    async def _invite_state(self, plan: _RoomPlan, now: int) -> list[dict]:
        head = await self._heads.get(plan.room_id)
        if head is None:
            return []
        if not head.extremities and self.remote_invite_state is not None:
            # An invite into a room on another server: the preview it sent along.
            preview = await self.remote_invite_state(plan.room_id, plan.member_event.state_key
                                                     if plan.member_event is not None else "")
            if preview is not None:
                return preview
        ids = stripped_state_ids(head.state)
        if plan.member_event is not None:
            ids.append(plan.member_event.event_id)
            sender_key = ("m.room.member", plan.member_event.sender)
            if sender_key in head.state:
                ids.append(head.state[sender_key])
        loaded = await self._writer.get_events(ids)
        return [stripped_event(loaded[i]) for i in dict.fromkeys(ids) if i in loaded]

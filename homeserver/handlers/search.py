"""Server-side search (``POST /search``, category ``room_events``) and the follower that
keeps the search index and the user directory in step with the event stream.

The follower is poked by the notifier after every committed event and reads the events
table above its stored position, in batches, each batch one transaction that also moves
the position. A restart therefore loses nothing: the first poke (a new event, or a
search or user-directory query) reads whatever was written while it was not running.
Queries wait (briefly) for the follower to reach the stream position they started at,
so a message is searchable as soon as its send has been answered.

Results are limited to rooms the user is joined to or has left (not forgotten), and
each event is checked against the room's history visibility at that event, as /messages
does. Redacted events are removed from the index when the redaction is followed, and
excluded at query time in any case.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from homeserver.events.client_format import client_event
from homeserver.events.event import Event
from homeserver.events.visibility import history_visibility_of, may_see_event
from homeserver.handlers.filtering import EventFilter, parse_event_filter
from homeserver.http.errors import MatrixError, invalid_param, missing_param
from storage.stores.search import (ALL_KEYS, SearchCriteria, SearchHit, SearchQuery, SearchStore,
                                   parse_search_query, searchable_text)

log = Logger()

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
DEFAULT_CONTEXT = 5
MAX_CONTEXT = 20
GROUP_KEYS = ("room_id", "sender")
# Rounds of reading index rows per request; rows the user may not see do not fill a page.
_MAX_ROUNDS = 8
_WORD = re.compile(r"[^\W_]+")


class DiscoveryFollower:
    """Reads the events table in stream order into the search index and user directory."""

    BATCH_SIZE = 500

    def __init__(self, hs, store: SearchStore):
        self._hs = hs
        self._store = store
        self._server_name = hs.config.server_name
        self.position: int | None = None
        self._running = False
        self._again = False
        self._waiters: list[tuple[int, defer.Deferred]] = []

    def on_event(self, event: Event) -> None:
        """The notifier's event listener (reactor thread, after the event's commit)."""
        self.poke()

    def poke(self) -> None:
        if self._running:
            self._again = True
            return
        if getattr(self._hs, "_stopping", False):
            return
        self._running = True
        defer.ensureDeferred(self._run())

    async def _run(self) -> None:
        try:
            while True:
                self._again = False
                if self.position is None:
                    self.position = await self._store.position()
                done = False
                while not done:
                    self.position, done = await self._store.follow(self._server_name, self.position,
                                                                   self.BATCH_SIZE)
                    self._release()
                if not self._again:
                    break
        except Exception:
            if not getattr(self._hs, "_stopping", False):
                log.failure("the search index and user directory could not follow the event stream")
            self._release(everyone=True)  # queries go ahead on what is indexed
        finally:
            self._running = False

    def _release(self, everyone: bool = False) -> None:
        """Wake the queries waiting for a position now reached (or all of them)."""
        waiting, self._waiters = self._waiters, []
        for target, waiter in waiting:
            if everyone or (self.position is not None and self.position >= target):
                if not waiter.called:
                    waiter.callback(None)
            else:
                self._waiters.append((target, waiter))

    async def wait_caught_up(self, timeout: float = 10.0) -> None:
        """Until everything committed when called is followed (or ``timeout`` seconds)."""
        target = self._hs.notifier.events_position
        if self.position is not None and self.position >= target:
            return
        waiter: defer.Deferred = defer.Deferred()
        self._waiters.append((target, waiter))
        self.poke()
        if waiter.called:
            return
        timer = self._hs.clock.call_later(timeout, lambda: waiter.called or waiter.callback(None))
        try:
            await waiter
        finally:
            if timer.active():
                timer.cancel()


# -- pagination tokens -----------------------------------------------------------------------

@dataclass(frozen=True)
class SearchToken:
    order: str
    rank: float
    stream: int
    group: tuple[str, str] | None = None

    def encode(self) -> str:
        body: dict[str, Any] = {"o": self.order, "r": self.rank, "s": self.stream}
        if self.group is not None:
            body["g"] = list(self.group)
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "SearchToken":
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            body = json.loads(raw)
            group = body.get("g")
            if group is not None:
                if not (isinstance(group, list) and len(group) == 2 and group[0] in GROUP_KEYS
                        and isinstance(group[1], str)):
                    raise ValueError(group)
                group = (group[0], group[1])
            token = cls(body["o"], float(body["r"]), int(body["s"]), group)
        except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
            raise invalid_param("Invalid next_batch token") from None
        if token.order not in ("rank", "recent"):
            raise invalid_param("Invalid next_batch token")
        return token


# -- the request -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RoomEventsRequest:
    query: SearchQuery
    search_term: str
    keys: tuple[str, ...]
    event_filter: EventFilter
    limit: int
    order: str
    before_limit: int
    after_limit: int
    include_profile: bool
    want_context: bool
    include_state: bool
    group_by: tuple[str, ...]


def _int_field(body: dict, name: str, default: int, maximum: int) -> int:
    value = body.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid_param(f"'{name}' must be a non-negative integer")
    return min(value, maximum)


def parse_room_events(criteria: Any) -> RoomEventsRequest:
    if not isinstance(criteria, dict):
        raise invalid_param("'room_events' must be an object")
    term = criteria.get("search_term")
    if term is None:
        raise missing_param("search_term")
    if not isinstance(term, str):
        raise invalid_param("'search_term' must be a string")
    keys = criteria.get("keys", list(ALL_KEYS))
    if not isinstance(keys, list) or not all(k in ALL_KEYS for k in keys):
        raise invalid_param(f"'keys' must list some of {', '.join(ALL_KEYS)}")
    event_filter = parse_event_filter(criteria.get("filter"), "filter")
    limit = min(event_filter.limit or DEFAULT_LIMIT, MAX_LIMIT)
    order = criteria.get("order_by", "rank")
    if order not in ("rank", "recent"):
        raise invalid_param("'order_by' must be rank or recent")
    context = criteria.get("event_context")
    if context is not None and not isinstance(context, dict):
        raise invalid_param("'event_context' must be an object")
    context = context or {}
    include_profile = context.get("include_profile", False)
    if not isinstance(include_profile, bool):
        raise invalid_param("'include_profile' must be a boolean")
    include_state = criteria.get("include_state", False)
    if not isinstance(include_state, bool):
        raise invalid_param("'include_state' must be a boolean")
    groupings = criteria.get("groupings") or {}
    if not isinstance(groupings, dict) or not isinstance(groupings.get("group_by", []), list):
        raise invalid_param("'groupings' must be an object with a 'group_by' list")
    group_by = []
    for group in groupings.get("group_by", []):
        key = group.get("key") if isinstance(group, dict) else None
        if key not in GROUP_KEYS:
            raise invalid_param("'group_by' keys must be room_id or sender")
        if key not in group_by:
            group_by.append(key)
    return RoomEventsRequest(
        parse_search_query(term), term, tuple(dict.fromkeys(keys)), event_filter, limit, order,
        _int_field(context, "before_limit", DEFAULT_CONTEXT, MAX_CONTEXT),
        _int_field(context, "after_limit", DEFAULT_CONTEXT, MAX_CONTEXT), include_profile,
        "event_context" in criteria, include_state, tuple(group_by))


class _Visibility:
    """May the user see events of a room; state lookups shared across one request."""

    def __init__(self, hs, user_id: str, memberships: dict[str, str]):
        self._hs = hs
        self._user_id = user_id
        self._memberships = memberships
        self._by_group: dict[int, tuple[str, str | None]] = {}

    async def allows(self, event: Event, state_group: int | None) -> bool:
        current = self._memberships.get(event.room_id)
        if state_group is None:
            return current == "join"
        found = self._by_group.get(state_group)
        if found is None:
            state = await self._hs.state.get_state_for_group(state_group)
            ids = {k: state[k] for k in (("m.room.history_visibility", ""), ("m.room.member", self._user_id))
                   if k in state}
            events = await self._hs.events.get_events(ids.values())
            visibility = events.get(ids.get(("m.room.history_visibility", "")))
            member = events.get(ids.get(("m.room.member", self._user_id)))
            found = (history_visibility_of(visibility.content if visibility else None),
                     member.membership if member else None)
            self._by_group[state_group] = found
        own = event.type == "m.room.member" and event.state_key == self._user_id
        return may_see_event(found[0], found[1], current, own)


class SearchHandler:
    def __init__(self, hs, store: SearchStore, follower: DiscoveryFollower):
        self._hs = hs
        self._store = store
        self._follower = follower

    async def search(self, user_id: str, body: dict, next_batch: str | None) -> dict:
        categories = body.get("search_categories")
        if categories is None:
            raise missing_param("search_categories")
        if not isinstance(categories, dict):
            raise invalid_param("'search_categories' must be an object")
        result: dict[str, Any] = {}
        if "room_events" in categories:
            request = parse_room_events(categories["room_events"])
            token = SearchToken.decode(next_batch) if next_batch else None
            if token is not None and token.order != request.order:
                raise invalid_param("next_batch was issued for another order_by")
            result["room_events"] = await self._room_events(user_id, request, token)
        return {"search_categories": result}

    async def _candidate_rooms(self, user_id: str) -> dict[str, str]:
        """room_id -> current membership, for rooms whose events the user may have seen."""
        memberships = await self._hs.rooms.get_memberships_of_user(user_id)
        forgotten = await self._hs.rooms.forgotten_rooms(user_id)
        return {room_id: membership for room_id, (membership, _) in memberships.items()
                if membership in ("join", "leave", "ban") and room_id not in forgotten}

    async def _room_events(self, user_id: str, request: RoomEventsRequest, token: SearchToken | None) -> dict:
        await self._follower.wait_caught_up()
        memberships = await self._candidate_rooms(user_id)
        flt = request.event_filter
        rooms = [r for r in sorted(memberships) if flt.rooms is None or r in flt.rooms]
        rooms = [r for r in rooms if r not in flt.not_rooms]
        senders = flt.senders
        group = token.group if token is not None else None
        if group is not None and group[0] == "room_id":
            rooms = [r for r in rooms if r == group[1]]
        if group is not None and group[0] == "sender":
            senders = tuple(s for s in (senders if senders is not None else (group[1],)) if s == group[1])
        criteria = SearchCriteria(tuple(rooms), request.keys, senders, flt.not_senders, request.order)

        visibility = _Visibility(self._hs, user_id, memberships)
        found: list[tuple[SearchHit, Event, int | None]] = []
        after = (token.rank, token.stream) if token is not None else None
        more = False
        for _ in range(_MAX_ROUNDS):
            wanted = min((request.limit - len(found)) * 2 + 1, 201)
            hits = await self._store.search(request.query, criteria, after, wanted)
            rows = await self._hs.events.get_event_rows([h.event_id for h in hits])
            for index, hit in enumerate(hits):
                after = (hit.rank, hit.stream_ordering)
                row = rows.get(hit.event_id)
                if row is None or row.event.rejected or not flt.allows_event(row.event):
                    continue
                if not await visibility.allows(row.event, row.state_group):
                    continue
                found.append((hit, row.event, row.state_group))
                if len(found) == request.limit:
                    more = index < len(hits) - 1 or len(hits) == wanted
                    break
            else:
                # Every row read: the index is exhausted unless the read was cut at ``wanted``
                # (then, if the rounds run out with the page not full, say where to go on).
                more = len(hits) == wanted
                if more:
                    continue
            break

        now = self._hs.clock.time_ms()
        results = []
        for hit, event, state_group in found:
            entry: dict[str, Any] = {"rank": hit.rank, "result": client_event(event, now)}
            if request.want_context:
                entry["context"] = await self._context(user_id, event, state_group, request, visibility, now)
            results.append(entry)

        answer: dict[str, Any] = {
            "count": await self._store.count(request.query, criteria),
            "highlights": self._highlights(request, [event for _, event, _ in found]),
            "results": results,
        }
        next_token = None
        if more and after is not None:
            next_token = SearchToken(request.order, after[0], after[1], group)
            answer["next_batch"] = next_token.encode()
        if request.group_by:
            answer["groups"] = self._groups(request, found, next_token)
        if request.include_state:
            state = {}
            for room_id in dict.fromkeys(event.room_id for _, event, _ in found):
                try:
                    state[room_id] = await self._hs.room_reader.get_state(user_id, room_id)
                except MatrixError:
                    continue
            answer["state"] = state
        return answer

    @staticmethod
    def _groups(request: RoomEventsRequest, found, next_token: SearchToken | None) -> dict:
        groups: dict[str, dict[str, dict]] = {}
        for key in request.group_by:
            by_value: dict[str, dict] = {}
            for hit, event, _ in found:
                value = event.room_id if key == "room_id" else event.sender
                group = by_value.get(value)
                if group is None:
                    group = by_value[value] = {"results": [], "order": len(by_value) + 1}
                    if next_token is not None:
                        group["next_batch"] = SearchToken(next_token.order, next_token.rank, next_token.stream,
                                                          (key, value)).encode()
                group["results"].append(event.event_id)
            groups[key] = by_value
        return groups

    @staticmethod
    def _highlights(request: RoomEventsRequest, events: list[Event]) -> list[str]:
        """The query's words, and the words of the results they matched as a prefix."""
        words = request.query.words()
        found: dict[str, None] = dict.fromkeys(words)
        for event in events:
            text = searchable_text(event.type, event.content) or ""
            for word in _WORD.findall(text):
                folded = word.casefold()
                if any(folded.startswith(w) for w in words):
                    found.setdefault(word, None)
        return list(found)

    async def _context(self, user_id: str, event: Event, state_group: int | None, request: RoomEventsRequest,
                       visibility: _Visibility, now: int) -> dict:
        stream = event.stream_ordering or 0
        before_rows = await self._hs.events.paginate(event.room_id, stream, True, request.before_limit) \
            if request.before_limit else []
        after_rows = await self._hs.events.paginate(event.room_id, stream + 1, False, request.after_limit) \
            if request.after_limit else []
        before = [r.event for r in before_rows if await visibility.allows(r.event, r.state_group)]
        after = [r.event for r in after_rows if await visibility.allows(r.event, r.state_group)]
        redactions = await self._hs.events.get_redactions([e.event_id for e in before + after])
        context: dict[str, Any] = {
            "events_before": [client_event(e, now, redacted_by=redactions.get(e.event_id)) for e in before],
            "events_after": [client_event(e, now, redacted_by=redactions.get(e.event_id)) for e in after],
            "start": f"t{before_rows[-1].event.stream_ordering}" if before_rows else f"t{stream}",
            "end": f"t{after_rows[-1].event.stream_ordering + 1}" if after_rows else f"t{stream + 1}",
        }
        if request.include_profile:
            context["profile_info"] = await self._profiles({e.sender for e in [event, *before, *after]},
                                                           state_group, event.room_id)
        return context


    async def _profiles(self, senders: set[str], state_group: int | None, room_id: str) -> dict:
        """Each sender's name and avatar in the room's state at the result."""
        if state_group is not None:
            state = await self._hs.state.get_state_for_group(state_group)
        else:
            head = await self._hs.room_heads.get(room_id)
            state = head.state if head else {}
        ids = {s: state[("m.room.member", s)] for s in senders if ("m.room.member", s) in state}
        events = await self._hs.events.get_events(ids.values())
        profiles = {}
        for sender in sorted(senders):
            member = events.get(ids.get(sender))
            profile = {}
            if member is not None:
                for key in ("displayname", "avatar_url"):
                    if isinstance(member.content.get(key), str):
                        profile[key] = member.content[key]
            profiles[sender] = profile
        return profiles

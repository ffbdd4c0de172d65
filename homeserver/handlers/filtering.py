"""Sync and /messages filters (the client-server filter definition), pure logic."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from homeserver.http.errors import MatrixError

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 500


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern))


def _matches_any(value: str, patterns: tuple[str, ...]) -> bool:
    return any(_glob(p).match(value) for p in patterns)


@dataclass(frozen=True)
class EventFilter:
    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    lazy_load_members: bool = False
    include_redundant_members: bool = False
    contains_url: bool | None = None

    def allows(self, event_type: str, sender: str, room_id: str | None = None, content: dict | None = None) -> bool:
        if self.types is not None and not _matches_any(event_type, self.types):
            return False
        if self.not_types and _matches_any(event_type, self.not_types):
            return False
        if self.senders is not None and sender not in self.senders:
            return False
        if sender in self.not_senders:
            return False
        if room_id is not None:
            if self.rooms is not None and room_id not in self.rooms:
                return False
            if room_id in self.not_rooms:
                return False
        if self.contains_url is not None and content is not None:
            if ("url" in content) != self.contains_url:
                return False
        return True

    def allows_event(self, event) -> bool:
        return self.allows(event.type, event.sender, event.room_id, event.content)


@dataclass(frozen=True)
class SyncFilter:
    timeline: EventFilter = field(default_factory=EventFilter)
    state: EventFilter = field(default_factory=EventFilter)
    ephemeral: EventFilter = field(default_factory=EventFilter)
    room_account_data: EventFilter = field(default_factory=EventFilter)
    account_data: EventFilter = field(default_factory=EventFilter)
    presence: EventFilter = field(default_factory=EventFilter)
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    include_leave: bool = False
    event_fields: tuple[str, ...] | None = None

    @property
    def timeline_limit(self) -> int:
        return self.timeline.limit if self.timeline.limit is not None else DEFAULT_TIMELINE_LIMIT

    def allows_room(self, room_id: str) -> bool:
        if self.rooms is not None and room_id not in self.rooms:
            return False
        return room_id not in self.not_rooms


def _strings(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MatrixError(400, "M_INVALID_PARAM", f"filter '{name}' must be a list of strings")
    return tuple(value)


def parse_event_filter(raw: Any, name: str = "filter") -> EventFilter:
    if raw is None:
        return EventFilter()
    if not isinstance(raw, dict):
        raise MatrixError(400, "M_INVALID_PARAM", f"'{name}' must be an object")
    limit = raw.get("limit")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise MatrixError(400, "M_INVALID_PARAM", f"'{name}.limit' must be a non-negative integer")
        limit = min(limit, MAX_TIMELINE_LIMIT)
    for flag in ("lazy_load_members", "include_redundant_members"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise MatrixError(400, "M_INVALID_PARAM", f"'{name}.{flag}' must be a boolean")
    contains_url = raw.get("contains_url")
    if contains_url is not None and not isinstance(contains_url, bool):
        raise MatrixError(400, "M_INVALID_PARAM", f"'{name}.contains_url' must be a boolean")
    return EventFilter(limit=limit, types=_strings(raw.get("types"), "types"),
                       not_types=_strings(raw.get("not_types"), "not_types") or (),
                       senders=_strings(raw.get("senders"), "senders"),
                       not_senders=_strings(raw.get("not_senders"), "not_senders") or (),
                       rooms=_strings(raw.get("rooms"), "rooms"),
                       not_rooms=_strings(raw.get("not_rooms"), "not_rooms") or (),
                       lazy_load_members=bool(raw.get("lazy_load_members", False)),
                       include_redundant_members=bool(raw.get("include_redundant_members", False)),
                       contains_url=contains_url)


def parse_sync_filter(raw: Any) -> SyncFilter:
    if raw is None:
        return SyncFilter()
    if not isinstance(raw, dict):
        raise MatrixError(400, "M_INVALID_PARAM", "filter must be an object")
    room = raw.get("room") or {}
    if not isinstance(room, dict):
        raise MatrixError(400, "M_INVALID_PARAM", "'room' must be an object")
    include_leave = room.get("include_leave", False)
    if not isinstance(include_leave, bool):
        raise MatrixError(400, "M_INVALID_PARAM", "'room.include_leave' must be a boolean")
    return SyncFilter(
        timeline=parse_event_filter(room.get("timeline"), "room.timeline"),
        state=parse_event_filter(room.get("state"), "room.state"),
        ephemeral=parse_event_filter(room.get("ephemeral"), "room.ephemeral"),
        room_account_data=parse_event_filter(room.get("account_data"), "room.account_data"),
        account_data=parse_event_filter(raw.get("account_data"), "account_data"),
        presence=parse_event_filter(raw.get("presence"), "presence"),
        rooms=_strings(room.get("rooms"), "room.rooms"),
        not_rooms=_strings(room.get("not_rooms"), "room.not_rooms") or (),
        include_leave=include_leave,
        event_fields=_strings(raw.get("event_fields"), "event_fields"))

"""The audit log of a Drocsid server, read from its rooms (DESIGN.md §2): pure.

There is no audit table to forge or to forget to write: every entry is a state event or
a redaction in the server's space or one of its channel rooms. This module turns one
such event (with the state it replaced) into at most one entry; reading the events is
``homeserver.drocsid.moderation.read_audit_log``.

Who did it: the event's sender, except that when the homeserver acted as the owner on
someone's behalf (Matrix auth let only the owner send it) the owner's event names the
real actor in ``io.drocsid.actor`` (``deleted_by`` on ``io.drocsid.deleted``). That
field is believed only on events the owner sent, so nobody can put their act on someone
else.

What is left out as noise: the events that created a room (one ``channel_create`` entry
stands for a channel's creation), joins, self-leaves and invites, the power-level mirror
and join rules (they follow roles and overwrites, which are logged), bans and kicks
repeated in channel rooms (the space's is the record) and people deleting their own
messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from homeserver.drocsid import permissions as perms

ACTOR_FIELD = "io.drocsid.actor"
DELETED_EVENT = "io.drocsid.deleted"

ACTIONS = ("server_update", "channel_create", "channel_update", "channel_delete", "role_create", "role_update",
           "role_delete", "member_role_update", "overwrite_update", "member_kick", "member_ban", "member_unban",
           "message_delete", "message_pin", "message_unpin")

_DESCRIBED = ("m.room.name", "m.room.topic", "m.room.avatar")
_CHANGE_KEYS = {"m.room.name": "name", "m.room.topic": "topic", "m.room.avatar": "url"}
# Content fields that describe the act rather than the state.
_META_FIELDS = frozenset({ACTOR_FIELD, "reason"})


@dataclass(frozen=True)
class AuditEntry:
    id: str                 # the event ID
    action: str
    user_id: str            # the actor
    target_id: str | None
    reason: str | None
    changes: list[dict]     # [{key, old, new}]
    created_ts: int
    channel_id: str | None  # the channel room it happened in; None for the space

    def to_json(self) -> dict:
        from homeserver.api.users import iso_timestamp

        return {"id": self.id, "action": self.action, "user_id": self.user_id, "target_id": self.target_id,
                "reason": self.reason, "changes": self.changes, "channel_id": self.channel_id,
                "created_at": iso_timestamp(self.created_ts)}


@dataclass(frozen=True)
class RoomInfo:
    """What the log needs to know about one room of the server."""
    room_id: str
    is_space: bool
    creation: frozenset[str] = frozenset()  # IDs of the events that created the room
    name: str | None = None                 # the name it was created with
    kind: str | None = None                 # a channel's create type, for channel_create
    current_name: str | None = None         # its name now (a deleted channel's last name)


def actor_of(event: Any, owner_id: str) -> str:
    """Who did what ``event`` records (see the module docstring)."""
    content = event.content if isinstance(event.content, Mapping) else {}
    claimed = content.get(ACTOR_FIELD)
    if claimed is None and event.type == DELETED_EVENT:
        claimed = content.get("deleted_by")  # what deleting a channel records
    if event.sender == owner_id and isinstance(claimed, str) and claimed.startswith("@") and ":" in claimed:
        return claimed
    return event.sender


def creation_events(first_events: Iterable[Any], made_before: int | None = None) -> RoomInfo | None:
    """From a room's first events in stream order: the run that made it (its create event
    and then, all from its creator, each state key set once, as room creation does), up
    to ``made_before`` (a stream ordering: a channel is linked into its server, and a
    server's first channel created, only once the room is made).
    Returns a RoomInfo without room ID and space flag; None if the create is not first."""
    events = list(first_events)
    if not events or events[0].type != "m.room.create":
        return None
    creator, seen, ids, name = events[0].sender, set(), [], None
    for event in events:
        key = (event.type, event.state_key)
        if event.sender != creator or event.state_key is None or key in seen \
                or (made_before is not None and event.stream_ordering >= made_before):
            break
        seen.add(key)
        ids.append(event.event_id)
        if event.type == "m.room.name" and isinstance(event.content.get("name"), str):
            name = event.content["name"]
    kind = events[0].content.get("type")
    return RoomInfo(events[0].room_id, False, frozenset(ids), name, kind if isinstance(kind, str) else None)


def diff(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[dict]:
    """The fields that changed, sorted by key, as ``{key, old, new}`` (missing -> None)."""
    old, new = dict(old or {}), dict(new or {})
    keys = sorted((set(old) | set(new)) - _META_FIELDS)
    return [{"key": k, "old": old.get(k), "new": new.get(k)} for k in keys if old.get(k) != new.get(k)]


def _reason(event: Any) -> str | None:
    reason = event.content.get("reason")
    return reason if isinstance(reason, str) and reason else None


def _content(event: Any | None) -> dict:
    return dict(event.content) if event is not None and isinstance(event.content, Mapping) else {}


def _has_via(content: Mapping[str, Any]) -> bool:
    return isinstance(content.get("via"), list) and bool(content.get("via"))


def entry_for(event: Any, previous: Any | None, room: RoomInfo, owner_id: str,
              redacted: Any | None = None) -> AuditEntry | None:
    """The audit entry ``event`` makes, or None.

    ``previous`` is the state event it replaced (same type and key), ``redacted`` the
    event a redaction removed; ``room`` says which room of the server it is in."""
    if event.event_id in room.creation and not (event.type == "m.room.create" and not room.is_space):
        return None
    found = (_space_entry if room.is_space else _channel_entry)(event, previous, room, redacted)
    if found is None:
        return None
    action, target, changes = found
    actor = actor_of(event, owner_id)
    if action == "message_delete" and actor == target:
        return None  # someone deleting their own message
    channel_id = None if room.is_space else room.room_id
    return AuditEntry(event.event_id, action, actor, target, _reason(event), changes, event.origin_server_ts,
                      channel_id)


def _update(event: Any, previous: Any | None) -> list[dict]:
    key = _CHANGE_KEYS[event.type]
    old, new = _content(previous).get(key), _content(event).get(key)
    return [] if old == new else [{"key": key if key != "url" else "icon_url", "old": old, "new": new}]


def _space_entry(event, previous, room: RoomInfo, redacted):
    kind, new, old = event.type, _content(event), _content(previous)
    if kind in _DESCRIBED:
        changes = _update(event, previous)
        return ("server_update", room.room_id, changes) if changes else None
    if kind == perms.ROLE_EVENT:
        if perms.parse_role(event.state_key, new) is None:
            return ("role_delete", event.state_key, diff(old, {})) if old else None
        action = "role_update" if perms.parse_role(event.state_key, old) is not None else "role_create"
        changes = diff(old, new)
        return (action, event.state_key, changes) if changes or action == "role_create" else None
    if kind == perms.MEMBER_EVENT:
        user_id = perms.user_of_state_key(event.state_key)
        if user_id is None:
            return None
        before = set(perms.parse_member_roles(user_id, old).role_ids)
        after = set(perms.parse_member_roles(user_id, new).role_ids)
        changes = [{"key": "$add", "old": None, "new": sorted(after - before)},
                   {"key": "$remove", "old": None, "new": sorted(before - after)}]
        changes = [c for c in changes if c["new"]]
        return ("member_role_update", user_id, changes) if changes else None
    if kind == "m.room.member":
        return _membership_entry(event, previous)
    if kind == "m.space.child":
        # Reordering; links appearing or going are channel creation, deletion or moves.
        if _has_via(new) and _has_via(old) and new.get("order") != old.get("order"):
            return "channel_update", event.state_key, [{"key": "position", "old": old.get("order"),
                                                        "new": new.get("order")}]
    return None


def _membership_entry(event, previous):
    membership = event.content.get("membership")
    before = _content(previous).get("membership")
    target = event.state_key
    if membership == "ban" and before != "ban":
        return "member_ban", target, []
    if membership == "leave" and event.sender != target:
        if before == "ban":
            return "member_unban", target, []
        if before in ("join", "invite", "knock"):
            return "member_kick", target, []
    return None


def _channel_entry(event, previous, room: RoomInfo, redacted):
    kind, new, old = event.type, _content(event), _content(previous)
    if kind == "m.room.create":
        changes = [{"key": "name", "old": None, "new": room.name}]
        channel_kind = {"m.space": "category", "io.drocsid.voice": "voice"}.get(room.kind or "", "text")
        changes.append({"key": "type", "old": None, "new": channel_kind})
        return "channel_create", room.room_id, changes
    if kind in _DESCRIBED:
        changes = _update(event, previous)
        return ("channel_update", room.room_id, changes) if changes else None
    if kind == DELETED_EVENT:
        name = room.current_name or room.name
        return "channel_delete", room.room_id, [{"key": "name", "old": name, "new": None}] if name else []
    if kind == perms.OVERWRITE_EVENT:
        target = perms.user_of_state_key(event.state_key) or event.state_key
        changes = diff(old, new)
        if not changes:
            return None
        return "overwrite_update", room.room_id, [{"key": "id", "old": None, "new": target}, *changes]
    if kind == "m.room.pinned_events":
        old_pins, new_pins = _pins(old), _pins(new)
        added = [p for p in new_pins if p not in old_pins]
        removed = [p for p in old_pins if p not in new_pins]
        if added:
            return "message_pin", added[0], [{"key": "message_id", "old": None, "new": added[0]}]
        if removed:
            return "message_unpin", removed[0], [{"key": "message_id", "old": removed[0], "new": None}]
        return None
    if kind == "m.room.redaction" and redacted is not None and redacted.type == "m.room.message":
        return "message_delete", redacted.sender, [{"key": "message_id", "old": redacted.event_id, "new": None}]
    return None


def _pins(content: Mapping[str, Any]) -> list[str]:
    pinned = content.get("pinned")
    return [p for p in pinned if isinstance(p, str)] if isinstance(pinned, list) else []


@dataclass
class AuditQuery:
    """Filters of ``GET /servers/{id}/audit-log`` applied to entries."""
    action: str | None = None
    user_id: str | None = None
    limit: int = 50
    entries: list[AuditEntry] = field(default_factory=list)

    def matches(self, entry: AuditEntry) -> bool:
        return (self.action is None or entry.action == self.action) and \
            (self.user_id is None or entry.user_id == self.user_id)

    def add(self, entry: AuditEntry | None) -> bool:
        """Keep the entry if it matches; True once ``limit`` entries are kept."""
        if entry is not None and self.matches(entry) and len(self.entries) < self.limit:
            self.entries.append(entry)
        return len(self.entries) >= self.limit

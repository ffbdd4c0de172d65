"""Building a new event of ours: fill in the fields, hash, sign, compute the ID."""

from __future__ import annotations

from typing import Any

from homeserver.events.event import Event
from homeserver.events.hashing import compute_event_id
from homeserver.events.room_versions import RoomVersion
from homeserver.events.signing import sign_event
from homeserver.events.validation import MAX_PREV_EVENTS, check_event_size, check_field_lengths

MAX_DEPTH = 2 ** 53 - 1


def build_event(version: RoomVersion, *, room_id: str | None, sender: str, event_type: str, content: dict,
                state_key: str | None = None, prev_events: list[str], auth_events: list[str], depth: int,
                origin_server_ts: int, server_name: str, signing_key, redacts: str | None = None,
                unsigned: dict | None = None) -> Event:
    """A signed event. ``room_id`` is None only for a v12 create event (its ID names the room)."""
    pdu: dict[str, Any] = {
        "type": event_type,
        "sender": sender,
        "content": content,
        "origin_server_ts": origin_server_ts,
        "depth": min(depth, MAX_DEPTH),
        "prev_events": list(prev_events[:MAX_PREV_EVENTS]),
        "auth_events": list(auth_events),
    }
    if room_id is not None:
        pdu["room_id"] = room_id
    if state_key is not None:
        pdu["state_key"] = state_key
    if redacts is not None and not version.redacts_in_content:
        pdu["redacts"] = redacts
    check_field_lengths(pdu)
    sign_event(version, pdu, server_name, signing_key)
    check_event_size(pdu)
    event_id = compute_event_id(version, pdu)
    event = Event(pdu, version, event_id)
    if unsigned:
        event.unsigned.update(unsigned)
    return event

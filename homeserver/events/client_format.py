"""Events as clients see them (the client-server "ClientEvent" shape)."""

from __future__ import annotations

from typing import Any, Mapping

from homeserver.events.event import Event
from homeserver.events.redaction import prune_event_dict


# The state shown of a room one is invited to or knocks on, without being in it.
STRIPPED_STATE_TYPES = ("m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar",
                        "m.room.canonical_alias", "m.room.encryption", "m.room.topic")


def stripped_state_ids(state: Mapping[tuple[str, str], str]) -> list[str]:
    """IDs of the room-preview events in a state map, in ``STRIPPED_STATE_TYPES`` order."""
    return [state[(t, "")] for t in STRIPPED_STATE_TYPES if (t, "") in state]


def stripped_event(event: Event) -> dict[str, Any]:
    """An event as stripped state: what a preview needs and nothing that identifies it."""
    return {"type": event.type, "state_key": event.state_key, "sender": event.sender, "content": event.content}


def client_event(event: Event, now_ms: int, *, redacted_by: Event | None = None, include_room_id: bool = True,
                 transaction_id: str | None = None, relations: dict[str, Any] | None = None) -> dict[str, Any]:
    content = event.content
    if redacted_by is not None:
        content = prune_event_dict(event.room_version, event.pdu)["content"]
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "sender": event.sender,
        "origin_server_ts": event.origin_server_ts,
        "content": content,
    }
    if include_room_id:
        body["room_id"] = event.room_id
    if event.state_key is not None:
        body["state_key"] = event.state_key
    redacts = event.redacts
    if redacts is not None:
        # Both places, so clients of every age find it whatever the room version keeps.
        body["redacts"] = redacts
        if "redacts" not in content and redacted_by is None:
            body["content"] = {**content, "redacts": redacts}
    unsigned: dict[str, Any] = {"age": max(0, now_ms - event.origin_server_ts)}
    unsigned.update(event.unsigned)
    if transaction_id is not None:
        unsigned["transaction_id"] = transaction_id
    if redacted_by is not None:
        unsigned["redacted_because"] = client_event(redacted_by, now_ms, include_room_id=include_room_id)
    elif relations:
        unsigned["m.relations"] = relations
    body["unsigned"] = unsigned
    return body

"""Format and size limits of events (the specification's, per room version)."""

from __future__ import annotations

from typing import Any

from homeserver.events.canonical import CanonicalJsonError, canonical_json, check_canonical

MAX_EVENT_BYTES = 65536
MAX_ID_BYTES = 255
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10


class EventFormatError(ValueError):
    """The event breaks a format rule; the message says which."""


class EventTooLarge(EventFormatError):
    """The event is over the 64 KiB canonical size limit."""


def _byte_length(value: str) -> int:
    return len(value.encode("utf-8"))


def check_field_lengths(event: dict[str, Any]) -> None:
    for name in ("type", "state_key", "sender", "room_id"):
        value = event.get(name)
        if isinstance(value, str) and _byte_length(value) > MAX_ID_BYTES:
            raise EventFormatError(f"'{name}' is longer than {MAX_ID_BYTES} bytes")


def check_event_size(event: dict[str, Any]) -> bytes:
    """The canonical encoding of the event, after checking it fits the 64 KiB limit."""
    try:
        check_canonical(event)
    except CanonicalJsonError as error:
        raise EventFormatError(str(error)) from None
    encoded = canonical_json({k: v for k, v in event.items() if k != "unsigned"})
    if len(encoded) > MAX_EVENT_BYTES:
        raise EventTooLarge(f"event is larger than {MAX_EVENT_BYTES} bytes")
    return encoded


def check_pdu_format(event: dict[str, Any]) -> None:
    """Structural checks of a PDU as it arrives (types of the required fields, list limits)."""
    for name, kind in (("type", str), ("sender", str), ("content", dict), ("origin_server_ts", int),
                       ("depth", int), ("prev_events", list), ("auth_events", list), ("hashes", dict),
                       ("signatures", dict)):
        value = event.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise EventFormatError(f"'{name}' is missing or not of type {kind.__name__}")
    if "state_key" in event and not isinstance(event["state_key"], str):
        raise EventFormatError("'state_key' must be a string")
    if len(event["prev_events"]) > MAX_PREV_EVENTS:
        raise EventFormatError(f"more than {MAX_PREV_EVENTS} prev_events")
    if len(event["auth_events"]) > MAX_AUTH_EVENTS:
        raise EventFormatError(f"more than {MAX_AUTH_EVENTS} auth_events")
    for name in ("prev_events", "auth_events"):
        if not all(isinstance(e, str) and e.startswith("$") for e in event[name]):
            raise EventFormatError(f"'{name}' must list event IDs")
    check_field_lengths(event)
    check_event_size(event)

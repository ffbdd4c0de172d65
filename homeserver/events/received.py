"""Turning a PDU from another server into an ``Event``: the format checks of the room
version, the event ID computed from its reference hash, and the content-hash check.

Pure: signatures need keys and are checked by the caller (``federation.keyring``).
An event whose content hash is wrong is kept in its redacted form, as the
specification asks, so it still takes its place in the DAG without its content.
"""

from __future__ import annotations

import re
from typing import Any

from homeserver.events.event import Event
from homeserver.events.hashing import check_content_hash, compute_event_id
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import RoomVersion
from homeserver.events.validation import EventFormatError, check_pdu_format

_SERVER_NAME = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?$")


def server_name_of(identifier: str) -> str:
    """The server part of a user, room or alias ID ("" when it has none)."""
    return identifier.split(":", 1)[1] if ":" in identifier else ""


def is_valid_server_name(name: str) -> bool:
    found = _SERVER_NAME.match(name)
    if found is None:
        return False
    port = found.group(2)
    return port is None or 0 < int(port[1:]) < 65536


def is_valid_user_id(user_id: str) -> bool:
    if not isinstance(user_id, str) or not user_id.startswith("@") or len(user_id.encode()) > 255:
        return False
    local, sep, server = user_id[1:].partition(":")
    return bool(local) and bool(sep) and is_valid_server_name(server)


def check_room_and_sender(pdu: dict[str, Any], room_id: str | None = None) -> None:
    sender = pdu.get("sender")
    if not is_valid_user_id(sender):
        raise EventFormatError("'sender' is not a valid user ID")
    if pdu.get("type") == "m.room.create" and "room_id" not in pdu:
        return  # v12: the create event names the room by its own ID
    found = pdu.get("room_id")
    if not isinstance(found, str) or not found.startswith("!"):
        raise EventFormatError("'room_id' is missing or not a room ID")
    if room_id is not None and found != room_id:
        raise EventFormatError(f"event is for room {found}, not {room_id}")


def parse_received_pdu(version: RoomVersion, pdu: dict[str, Any], room_id: str | None = None) -> tuple[Event, bool]:
    """The event a PDU describes and whether its content hash held (raises EventFormatError).

    ``unsigned`` from another server is not trusted and is dropped, as is any
    ``event_id`` key: from room v3 on the ID is computed, never taken.
    """
    if not isinstance(pdu, dict):
        raise EventFormatError("a PDU must be a JSON object")
    cleaned = {k: v for k, v in pdu.items() if k not in ("unsigned", "event_id")}
    check_pdu_format(cleaned)
    check_room_and_sender(cleaned, room_id)
    event_id = compute_event_id(version, cleaned)
    hash_ok = check_content_hash(cleaned)
    if not hash_ok:
        # Keep what the signature covers; the content is gone.
        cleaned = prune_event_dict(version, cleaned)
    return Event(cleaned, version, event_id, room_id), hash_ok

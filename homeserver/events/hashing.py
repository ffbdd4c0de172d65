"""Content hashes, reference hashes, event IDs and (v12) room IDs."""

from __future__ import annotations

import hashlib
from typing import Any

from homeserver.events.canonical import canonical_json, decode_base64, encode_base64
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import RoomVersion


def content_hash(event: dict[str, Any]) -> str:
    """SHA-256 of the event without unsigned, signatures and hashes (standard base64)."""
    stripped = {k: v for k, v in event.items() if k not in ("unsigned", "signatures", "hashes")}
    return encode_base64(hashlib.sha256(canonical_json(stripped)).digest())


def add_content_hash(event: dict[str, Any]) -> None:
    event["hashes"] = {"sha256": content_hash(event)}


def check_content_hash(event: dict[str, Any]) -> bool:
    hashes = event.get("hashes")
    if not isinstance(hashes, dict) or not isinstance(hashes.get("sha256"), str):
        return False
    try:
        expected = decode_base64(hashes["sha256"])
    except ValueError:
        return False
    stripped = {k: v for k, v in event.items() if k not in ("unsigned", "signatures", "hashes")}
    return hashlib.sha256(canonical_json(stripped)).digest() == expected


def reference_hash(version: RoomVersion, event: dict[str, Any]) -> bytes:
    pruned = prune_event_dict(version, event)
    pruned.pop("signatures", None)
    pruned.pop("unsigned", None)
    return hashlib.sha256(canonical_json(pruned)).digest()


def compute_event_id(version: RoomVersion, event: dict[str, Any]) -> str:
    return "$" + encode_base64(reference_hash(version, event), urlsafe=True)


def room_id_from_create_event_id(event_id: str) -> str:
    """v12: the room ID is the create event's ID with the sigil '!'."""
    return "!" + event_id[1:]

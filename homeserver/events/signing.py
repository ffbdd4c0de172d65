"""Signing events and JSON objects with the server key, and checking signatures."""

from __future__ import annotations

from typing import Any, Mapping

from signedjson.key import decode_verify_key_bytes
from signedjson.sign import SignatureVerifyException, sign_json, verify_signed_json

from homeserver.events.hashing import add_content_hash
from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import RoomVersion


def key_id(signing_key) -> str:
    return f"{signing_key.alg}:{signing_key.version}"


def sign_event(version: RoomVersion, event: dict[str, Any], server_name: str, signing_key) -> None:
    """Add the content hash, then sign the redacted form and copy the signature back."""
    add_content_hash(event)
    redacted = prune_event_dict(version, event)
    redacted.pop("signatures", None)
    signed = sign_json(redacted, server_name, signing_key)
    signatures = dict(event.get("signatures") or {})
    server_sigs = dict(signatures.get(server_name, {}))
    server_sigs.update(signed["signatures"][server_name])
    signatures[server_name] = server_sigs
    event["signatures"] = signatures


def countersign_event(version: RoomVersion, event: dict[str, Any], server_name: str, signing_key) -> None:
    """Add our signature to another server's event, leaving its hashes as they are
    (invites we accept, restricted joins we authorise)."""
    redacted = prune_event_dict(version, event)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    signed = sign_json(redacted, server_name, signing_key)
    signatures = dict(event.get("signatures") or {})
    signatures[server_name] = {**signatures.get(server_name, {}), **signed["signatures"][server_name]}
    event["signatures"] = signatures


def verify_event_signature(version: RoomVersion, event: dict[str, Any], server_name: str,
                           verify_keys: Mapping[str, Any]) -> bool:
    """True if ``server_name`` signed the redacted event with one of ``verify_keys`` (key ID -> key)."""
    signatures = event.get("signatures")
    if not isinstance(signatures, dict) or not isinstance(signatures.get(server_name), dict):
        return False
    redacted = prune_event_dict(version, event)
    redacted["signatures"] = {server_name: signatures[server_name]}
    for key_name in signatures[server_name]:
        verify_key = verify_keys.get(key_name)
        if verify_key is None:
            continue
        try:
            verify_signed_json(redacted, server_name, verify_key)
            return True
        except SignatureVerifyException:
            continue
    return False


def verify_key_from_base64(key_name: str, encoded: str):
    from homeserver.events.canonical import decode_base64

    algorithm, _, version = key_name.partition(":")
    return decode_verify_key_bytes(key_name, decode_base64(encoded)) if algorithm == "ed25519" else None


__all__ = ["sign_event", "countersign_event", "verify_event_signature", "sign_json", "key_id", "verify_key_from_base64"]

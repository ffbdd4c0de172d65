"""The redaction algorithm: what of an event survives, per room version.

Used for redacting events for clients, and (on a copy) for signing and for reference
hashes, which cover only the parts that survive redaction.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.room_versions import RoomVersion

_TOP_LEVEL_V11 = frozenset({"event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
                            "signatures", "depth", "prev_events", "auth_events", "origin_server_ts"})
# v9 rules (used by v10) also keep these three.
_TOP_LEVEL_V9 = _TOP_LEVEL_V11 | {"origin", "membership", "prev_state"}

_POWER_LEVEL_KEYS_V9 = ("ban", "events", "events_default", "kick", "redact", "state_default", "users",
                        "users_default")

_CONTENT_V9: dict[str, tuple[str, ...]] = {
    "m.room.member": ("membership", "join_authorised_via_users_server"),
    "m.room.create": ("creator",),
    "m.room.join_rules": ("join_rule", "allow"),
    "m.room.power_levels": _POWER_LEVEL_KEYS_V9,
    "m.room.history_visibility": ("history_visibility",),
}
_CONTENT_V11: dict[str, tuple[str, ...]] = {
    **_CONTENT_V9,
    "m.room.power_levels": _POWER_LEVEL_KEYS_V9 + ("invite",),
    "m.room.redaction": ("redacts",),
}


def prune_event_dict(version: RoomVersion, event: dict[str, Any]) -> dict[str, Any]:
    """A redacted copy of an event dict (``unsigned`` is dropped; callers re-add what they need)."""
    v11 = version.redaction_rules == "v11"
    keep_top = _TOP_LEVEL_V11 if v11 else _TOP_LEVEL_V9
    pruned = {key: value for key, value in event.items() if key in keep_top}
    event_type = event.get("type")
    content = event.get("content")
    if not isinstance(content, dict):
        content = {}
    if v11 and event_type == "m.room.create":
        new_content = dict(content)
    else:
        keep = (_CONTENT_V11 if v11 else _CONTENT_V9).get(event_type, ())
        new_content = {key: content[key] for key in keep if key in content}
        if v11 and event_type == "m.room.member":
            invite = content.get("third_party_invite")
            if isinstance(invite, dict) and "signed" in invite:
                new_content["third_party_invite"] = {"signed": invite["signed"]}
    pruned["content"] = new_content
    return pruned

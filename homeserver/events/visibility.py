"""History visibility: may a user see an event, given the state at that event."""

from __future__ import annotations

from typing import Mapping


def may_see_event(history_visibility: str, membership_at_event: str | None, current_membership: str | None,
                  is_own_membership_event: bool = False) -> bool:
    """``history_visibility`` and ``membership_at_event`` are from the state at the event."""
    if is_own_membership_event:
        return True
    if history_visibility == "world_readable":
        return True
    if membership_at_event == "join":
        return True
    if history_visibility == "invited" and membership_at_event == "invite":
        return True
    if history_visibility == "shared" and current_membership == "join":
        return True
    return False


def history_visibility_of(state_content: Mapping[str, object] | None) -> str:
    value = (state_content or {}).get("history_visibility")
    return value if value in ("invited", "joined", "shared", "world_readable") else "shared"

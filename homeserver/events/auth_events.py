"""Which state events an event cites as its ``auth_events`` (the auth events selection).

Used both to build new events (which state to cite) and, in the auth rules, to refuse
events citing anything else. Malformed content never raises here: the pairs that cannot
be derived are left out, and the auth rules reject the event for its content later.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.room_versions import RoomVersion

CREATE = "m.room.create"
POWER_LEVELS = "m.room.power_levels"
MEMBER = "m.room.member"
JOIN_RULES = "m.room.join_rules"
THIRD_PARTY_INVITE = "m.room.third_party_invite"

CREATE_KEY = (CREATE, "")
POWER_LEVELS_KEY = (POWER_LEVELS, "")
JOIN_RULES_KEY = (JOIN_RULES, "")

AUTHORISING_USER = "join_authorised_via_users_server"

# Memberships whose outcome depends on the join rule.
_JOIN_RULE_MEMBERSHIPS = frozenset({"join", "invite", "knock"})


def auth_types_for_event(version: RoomVersion, event_type: str, sender: str, state_key: str | None,
                         content: dict[str, Any]) -> list[tuple[str, str]]:
    """The (type, state_key) pairs of the state an event must cite, in a fixed order.

    The create event cites nothing. In v12 (``create_in_auth_events`` false) the create
    event is implied by the room ID and is not selected.
    """
    if event_type == CREATE:
        return []
    selected: list[tuple[str, str]] = []
    if version.create_in_auth_events:
        selected.append(CREATE_KEY)
    selected.append(POWER_LEVELS_KEY)
    selected.append((MEMBER, sender))
    if event_type == MEMBER:
        _add_membership_types(selected, sender, state_key, content)
    return selected


def _add_membership_types(selected: list[tuple[str, str]], sender: str, state_key: str | None,
                          content: dict[str, Any]) -> None:
    membership = content.get("membership")
    if not isinstance(membership, str):
        membership = None
    if isinstance(state_key, str) and state_key != sender:
        selected.append((MEMBER, state_key))
    if membership in _JOIN_RULE_MEMBERSHIPS:
        selected.append(JOIN_RULES_KEY)
    if membership == "invite":
        token = _third_party_invite_token(content)
        if token is not None:
            selected.append((THIRD_PARTY_INVITE, token))
    elif membership == "join":
        authoriser = content.get(AUTHORISING_USER)
        if isinstance(authoriser, str) and authoriser not in (sender, state_key):
            selected.append((MEMBER, authoriser))


def _third_party_invite_token(content: dict[str, Any]) -> str | None:
    invite = content.get("third_party_invite")
    if not isinstance(invite, dict):
        return None
    signed = invite.get("signed")
    if not isinstance(signed, dict):
        return None
    token = signed.get("token")
    return token if isinstance(token, str) else None

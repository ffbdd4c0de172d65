"""The authorisation rules of room versions 10, 11 and 12.

Two entry points, matching the two kinds of check on a received PDU:

* ``check_auth_events``: the rules about the event's own ``auth_events`` list (which
  entries it may cite, and, in v12, that the room ID names the create event);
* ``check_auth``: every other rule, against a given state (the event's auth events, the
  state before it, or the current state).

Both raise ``AuthError`` naming the rule that failed. The power-level helpers below are
public because handlers (redactions, room admin) and state resolution need the same
answers the rules use. Every difference between versions comes from ``RoomVersion``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from nacl.exceptions import BadSignatureError
from signedjson.key import decode_verify_key_bytes

from homeserver.events.auth_events import (
    AUTHORISING_USER, CREATE, CREATE_KEY, JOIN_RULES_KEY, MEMBER, POWER_LEVELS, POWER_LEVELS_KEY,
    THIRD_PARTY_INVITE, auth_types_for_event,
)
from homeserver.events.canonical import canonical_json, decode_base64
from homeserver.events.event import Event
from homeserver.events.hashing import room_id_from_create_event_id
from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

StateMap = Mapping[tuple[str, str], Event]

# Without a power_levels event, the creator(s) of a v10/v11 room have this level.
CREATOR_DEFAULT_LEVEL = 100
INFINITE_POWER = float("inf")

_NAMED_LEVEL_DEFAULTS = {"invite": 0, "kick": 50, "ban": 50, "redact": 50}
_STATE_DEFAULT = 50
_EVENTS_DEFAULT = 0
_USERS_DEFAULT = 0

# The scalar power-level properties, and the mappings of levels.
_LEVEL_SCALARS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")
_LEVEL_MAPPINGS = ("events", "notifications")

_SERVER_NAME = re.compile(r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.\-]{1,255})(?::[0-9]{1,5})?\Z")
_MAX_USER_ID_BYTES = 255

_MISSING = object()


class AuthError(Exception):
    """The event is not authorised; the message says which rule refused it."""


# --- identifiers ---------------------------------------------------------------------

def is_valid_user_id(user_id: Any) -> bool:
    """The user ID grammar as events must accept it (historical localparts included)."""
    if not isinstance(user_id, str) or not user_id.startswith("@"):
        return False
    try:
        if len(user_id.encode("utf-8")) > _MAX_USER_ID_BYTES:
            return False
    except UnicodeEncodeError:  # lone surrogates
        return False
    localpart, colon, server_name = user_id[1:].partition(":")
    if not colon or "\x00" in localpart:
        return False
    return _SERVER_NAME.match(server_name) is not None


def _domain(user_id: str) -> str:
    return user_id.partition(":")[2]


# --- creators and power levels -------------------------------------------------------

def _has_additional_creators(version: RoomVersion) -> bool:
    # additional_creators came with infinite creator power (MSC4289); there is no flag of its own.
    return version.infinite_creator_power


def creators(version: RoomVersion, create_event: Event) -> frozenset[str]:
    """The room's creators: content.creator (v10), the sender (v11), plus additional_creators (v12)."""
    content = create_event.content
    if not version.creator_from_sender:
        creator = content.get("creator")
        return frozenset((creator,)) if isinstance(creator, str) else frozenset()
    found = {create_event.sender}
    if _has_additional_creators(version):
        extra = content.get("additional_creators")
        if isinstance(extra, list):
            found.update(user for user in extra if isinstance(user, str))
    return frozenset(found)


def _original_creator(version: RoomVersion, create_event: Event) -> str | None:
    """The one user whose join may directly follow the create event."""
    if version.creator_from_sender:
        return create_event.sender
    creator = create_event.content.get("creator")
    return creator if isinstance(creator, str) else None


def _is_creator(version: RoomVersion, create_event: Event, user_id: str) -> bool:
    # Same answer as ``user_id in creators(...)`` without building a set on every check.
    if not version.creator_from_sender:
        return create_event.content.get("creator") == user_id
    if user_id == create_event.sender:
        return True
    if _has_additional_creators(version):
        extra = create_event.content.get("additional_creators")
        return isinstance(extra, list) and user_id in extra
    return False


def _int_or(value: Any, default: int) -> int:
    # bool is an int subclass, but never a power level.
    return value if type(value) is int else default


def _power_levels_content(state: StateMap) -> dict[str, Any]:
    event = state.get(POWER_LEVELS_KEY)
    return event.content if event is not None else {}


def user_power_level(version: RoomVersion, state: StateMap, user_id: str) -> int | float:
    """A user's power level; infinite for v12 creators, 100 for creators when no PL event exists."""
    create = state.get(CREATE_KEY)
    if version.infinite_creator_power and create is not None and _is_creator(version, create, user_id):
        return INFINITE_POWER
    power_levels = state.get(POWER_LEVELS_KEY)
    if power_levels is None:
        if create is not None and _is_creator(version, create, user_id):
            return CREATOR_DEFAULT_LEVEL
        return _USERS_DEFAULT
    content = power_levels.content
    users = content.get("users")
    if isinstance(users, dict):
        level = users.get(user_id)
        if type(level) is int:
            return level
    return _int_or(content.get("users_default"), _USERS_DEFAULT)


def event_power_level(state: StateMap, event_type: str, is_state: bool) -> int:
    """The level needed to send an event of this type (the 'required power level')."""
    content = _power_levels_content(state)
    events = content.get("events")
    if isinstance(events, dict):
        level = events.get(event_type)
        if type(level) is int:
            return level
    if is_state:
        return _int_or(content.get("state_default"), _STATE_DEFAULT)
    return _int_or(content.get("events_default"), _EVENTS_DEFAULT)


def power_level_for(state: StateMap, action: str) -> int:
    """The level needed to "invite", "kick", "ban" or "redact"."""
    try:
        default = _NAMED_LEVEL_DEFAULTS[action]
    except KeyError:
        raise ValueError(f"unknown power-level action {action!r}") from None
    return _int_or(_power_levels_content(state).get(action), default)


def membership_of(state: StateMap, user_id: str) -> str:
    """A user's membership in ``state``; "leave" when they have no member event."""
    member = state.get((MEMBER, user_id))
    if member is None:
        return "leave"
    return member.membership or "leave"


def is_power_event(event: Event) -> bool:
    """A power event for state resolution: one that may take an ability away from someone.

    Besides the spec's list (power levels, join rules, kicks and bans) this counts the create
    event, as Synapse and other implementations do, so that state resolution converges.
    """
    if event.state_key is None:
        return False
    if event.type in (POWER_LEVELS, "m.room.join_rules", CREATE):
        return event.state_key == ""
    if event.type == MEMBER:
        return event.membership in ("leave", "ban") and event.sender != event.state_key
    return False


# --- the event's own auth_events -----------------------------------------------------

def check_auth_events(version: RoomVersion, event: Event, auth_events: Sequence[Event]) -> None:
    """Check the rules about the events ``event`` cites as its ``auth_events``.

    ``auth_events`` holds the events named by ``event.auth_event_ids`` (every one must be
    supplied; a missing one refuses the event). In v12 the caller also passes the room's
    create event here although the event does not, and must not, cite it: that create
    event is recognised as the ``m.room.create`` event whose ID is not among
    ``event.auth_event_ids``, is used only to check that the room ID names it, and does
    not count as an unexpected entry. Other supplied events that are not cited are ignored.
    """
    if event.type == CREATE:
        return  # the create event cites nothing; its own rules are in check_auth
    cited_ids = event.auth_event_ids
    cited = set(cited_ids)
    by_id = {auth_event.event_id: auth_event for auth_event in auth_events}
    if version.room_id_from_create:
        _check_room_id_names_create(event, by_id.values(), cited)
    if len(cited) != len(cited_ids):
        raise AuthError("auth_events lists the same event more than once")
    expected = set(auth_types_for_event(version, event.type, event.sender, event.state_key, event.content))
    seen: set[tuple[str, str]] = set()
    for event_id in cited_ids:
        auth_event = by_id.get(event_id)
        if auth_event is None:
            raise AuthError(f"auth event {event_id} is not available")
        key = (auth_event.type, auth_event.state_key)
        if key in seen:
            raise AuthError(f"auth_events has more than one entry for {key}")
        if key not in expected:
            raise AuthError(f"auth_events has an entry the selection does not pick: {key}")
        if auth_event.rejected:
            raise AuthError(f"auth event {event_id} was itself rejected")
        if auth_event.room_id != event.room_id:
            raise AuthError(f"auth event {event_id} belongs to another room")
        seen.add(key)
    if version.create_in_auth_events and CREATE_KEY not in seen:
        raise AuthError("auth_events has no m.room.create event")


def _check_room_id_names_create(event: Event, supplied: Iterable[Event], cited: set[str]) -> None:
    creates = [e for e in supplied if e.type == CREATE and e.state_key == ""]
    # Prefer the create passed alongside; a cited one is refused later as an unexpected entry.
    create = next((e for e in creates if e.event_id not in cited), creates[0] if creates else None)
    if create is None:
        raise AuthError("the room's create event was not supplied")
    if create.rejected:
        raise AuthError("the room's create event was rejected")
    if event.room_id != room_id_from_create_event_id(create.event_id):
        raise AuthError("room_id is not the ID of the room's create event")


# --- the rules against a state -------------------------------------------------------

def check_auth(version: RoomVersion, event: Event, state: StateMap) -> None:
    """Check every authorisation rule except those about the auth_events list itself.

    ``state`` maps (type, state_key) to the state to check against; it must hold the
    create event (in v12 too, though events do not cite it), and is empty for a create.
    """
    if event.type == CREATE:
        _check_create(version, event)
        return
    create = state.get(CREATE_KEY)
    if create is None:
        raise AuthError("there is no m.room.create event in the state")
    if create.content.get("m.federate", True) is False and _domain(event.sender) != _domain(create.sender):
        raise AuthError("the room does not federate and the sender is from another server")
    if event.type == MEMBER:
        _check_membership(version, event, state, create)
        return
    if membership_of(state, event.sender) != "join":
        raise AuthError("sender is not joined to the room")
    sender_level = user_power_level(version, state, event.sender)
    if event.type == THIRD_PARTY_INVITE:
        if sender_level < power_level_for(state, "invite"):
            raise AuthError("sender's power level is below the invite level")
        return
    if event_power_level(state, event.type, event.is_state()) > sender_level:
        raise AuthError("sender's power level is below the level required for this event type")
    state_key = event.state_key
    if state_key is not None and state_key.startswith("@") and state_key != event.sender:
        raise AuthError("state_key names another user")
    if event.type == POWER_LEVELS:
        _check_power_levels(version, event, state, create, sender_level)


def _check_create(version: RoomVersion, event: Event) -> None:
    if event.prev_event_ids:
        raise AuthError("m.room.create has prev_events")
    if version.room_id_from_create:
        if "room_id" in event.pdu:
            raise AuthError("m.room.create has a room_id")
    else:
        room_id = event.pdu.get("room_id")
        if not isinstance(room_id, str) or _domain(room_id) != _domain(event.sender):
            raise AuthError("m.room.create room_id domain does not match the sender's")
    content = event.content
    room_version = content.get("room_version", _MISSING)
    if room_version is not _MISSING and (not isinstance(room_version, str)
                                         or room_version not in KNOWN_ROOM_VERSIONS):
        raise AuthError("m.room.create names an unknown room_version")
    if _has_additional_creators(version) and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, list) or not all(is_valid_user_id(user) for user in extra):
            raise AuthError("m.room.create additional_creators is not a list of user IDs")
    if not version.creator_from_sender and "creator" not in content:
        raise AuthError("m.room.create has no creator")


# --- m.room.member -------------------------------------------------------------------

def _check_membership(version: RoomVersion, event: Event, state: StateMap, create: Event) -> None:
    membership = event.membership
    if event.state_key is None or membership is None:
        raise AuthError("m.room.member needs a state_key and a membership")
    if AUTHORISING_USER in event.content:
        _check_authoriser_signed(event)
    if membership == "join":
        _check_join(version, event, state, create)
    elif membership == "invite":
        _check_invite(version, event, state)
    elif membership == "leave":
        _check_leave(version, event, state)
    elif membership == "ban":
        _check_ban(version, event, state)
    elif membership == "knock":
        _check_knock(version, event, state)
    else:
        raise AuthError(f"unknown membership {membership!r}")


def _check_authoriser_signed(event: Event) -> None:
    # Only presence is checked here: signatures are verified when the PDU is received.
    authoriser = event.content[AUTHORISING_USER]
    if not isinstance(authoriser, str) or ":" not in authoriser:
        raise AuthError(f"{AUTHORISING_USER} is not a user ID")
    signatures = event.pdu.get("signatures")
    if not isinstance(signatures, dict) or not signatures.get(_domain(authoriser)):
        raise AuthError(f"event is not signed by the server of {AUTHORISING_USER}")


def _join_rule(state: StateMap) -> Any:
    event = state.get(JOIN_RULES_KEY)
    # With no join rules event, behave as "invite" (as Synapse does).
    return event.content.get("join_rule", "invite") if event is not None else "invite"


def _is_restricted(version: RoomVersion, join_rule: Any) -> bool:
    return join_rule == "restricted" or (version.knock_restricted and join_rule == "knock_restricted")


def _allows_knocking(version: RoomVersion, join_rule: Any) -> bool:
    return join_rule == "knock" or (version.knock_restricted and join_rule == "knock_restricted")


def _check_join(version: RoomVersion, event: Event, state: StateMap, create: Event) -> None:
    if event.prev_event_ids == [create.event_id] and event.state_key == _original_creator(version, create):
        return  # the creator's own first join
    if event.sender != event.state_key:
        raise AuthError("cannot join on behalf of another user")
    current = membership_of(state, event.sender)
    if current == "ban":
        raise AuthError("sender is banned")
    join_rule = _join_rule(state)
    if join_rule in ("invite", "knock"):
        if current not in ("invite", "join"):
            raise AuthError("the room is invite-only and sender is not invited")
        return
    if _is_restricted(version, join_rule):
        if current in ("invite", "join"):
            return
        _check_join_authoriser(version, event, state)
        return
    if join_rule == "public":
        return
    raise AuthError(f"join rule {join_rule!r} does not allow joining")


def _check_join_authoriser(version: RoomVersion, event: Event, state: StateMap) -> None:
    authoriser = event.content.get(AUTHORISING_USER)
    if not isinstance(authoriser, str):
        raise AuthError(f"restricted join without {AUTHORISING_USER}")
    if membership_of(state, authoriser) != "join":
        raise AuthError(f"{AUTHORISING_USER} is not joined to the room")
    if user_power_level(version, state, authoriser) < power_level_for(state, "invite"):
        raise AuthError(f"{AUTHORISING_USER} cannot invite users")


def _check_invite(version: RoomVersion, event: Event, state: StateMap) -> None:
    if "third_party_invite" in event.content:
        _check_third_party_invite(event, state)
        return
    if membership_of(state, event.sender) != "join":
        raise AuthError("sender is not joined")
    if membership_of(state, event.state_key) in ("join", "ban"):
        raise AuthError("target is joined or banned")
    if user_power_level(version, state, event.sender) < power_level_for(state, "invite"):
        raise AuthError("sender's power level is below the invite level")


def _check_third_party_invite(event: Event, state: StateMap) -> None:
    if membership_of(state, event.state_key) == "ban":
        raise AuthError("target is banned")
    invite = event.content["third_party_invite"]
    signed = invite.get("signed") if isinstance(invite, dict) else None
    if not isinstance(signed, dict):
        raise AuthError("third_party_invite has no signed block")
    if "mxid" not in signed or "token" not in signed:
        raise AuthError("third_party_invite.signed needs mxid and token")
    if signed["mxid"] != event.state_key:
        raise AuthError("third_party_invite.signed.mxid is not the state_key")
    token = signed["token"]
    original = state.get((THIRD_PARTY_INVITE, token)) if isinstance(token, str) else None
    if original is None:
        raise AuthError("no m.room.third_party_invite for the token")
    if original.sender != event.sender:
        raise AuthError("sender did not send the m.room.third_party_invite")
    if not _signed_by_any(signed, _third_party_public_keys(original.content)):
        raise AuthError("no signature in third_party_invite.signed matches the invite's public keys")


def _third_party_public_keys(content: dict[str, Any]) -> list[str]:
    keys = []
    if isinstance(content.get("public_key"), str):
        keys.append(content["public_key"])
    listed = content.get("public_keys")
    if isinstance(listed, list):
        keys.extend(entry["public_key"] for entry in listed
                    if isinstance(entry, dict) and isinstance(entry.get("public_key"), str))
    return keys


def _signed_by_any(signed: dict[str, Any], public_keys: list[str]) -> bool:
    """True if any ed25519 signature in ``signed``, by any server name, verifies with any key."""
    signatures = signed.get("signatures")
    if not isinstance(signatures, dict) or not public_keys:
        return False
    candidates = [decoded for decoded in (_decode_signature(name, sig)
                                          for by_server in signatures.values() if isinstance(by_server, dict)
                                          for name, sig in by_server.items())
                  if decoded is not None]
    if not candidates:
        return False
    try:
        message = canonical_json({k: v for k, v in signed.items() if k not in ("signatures", "unsigned")})
    except (TypeError, ValueError):
        return False
    for public_key in public_keys:
        try:
            verify_key = decode_verify_key_bytes("ed25519:third_party_invite", decode_base64(public_key))
        except ValueError:
            continue  # not a usable ed25519 key
        for signature in candidates:
            try:
                verify_key.verify(message, signature)
                return True
            except (BadSignatureError, ValueError):
                continue
    return False


def _decode_signature(key_name: Any, signature: Any) -> bytes | None:
    if not isinstance(key_name, str) or not key_name.startswith("ed25519:") or not isinstance(signature, str):
        return None
    try:
        return decode_base64(signature)
    except ValueError:
        return None


def _check_leave(version: RoomVersion, event: Event, state: StateMap) -> None:
    if event.sender == event.state_key:
        if membership_of(state, event.sender) not in ("invite", "join", "knock"):
            raise AuthError("cannot leave: sender is not invited, joined or knocking")
        return
    if membership_of(state, event.sender) != "join":
        raise AuthError("sender is not joined")
    sender_level = user_power_level(version, state, event.sender)
    if membership_of(state, event.state_key) == "ban" and sender_level < power_level_for(state, "ban"):
        raise AuthError("sender's power level is below the ban level, so cannot unban")
    if sender_level < power_level_for(state, "kick"):
        raise AuthError("sender's power level is below the kick level")
    if user_power_level(version, state, event.state_key) >= sender_level:
        raise AuthError("target's power level is not below the sender's")


def _check_ban(version: RoomVersion, event: Event, state: StateMap) -> None:
    if membership_of(state, event.sender) != "join":
        raise AuthError("sender is not joined")
    sender_level = user_power_level(version, state, event.sender)
    if sender_level < power_level_for(state, "ban"):
        raise AuthError("sender's power level is below the ban level")
    if user_power_level(version, state, event.state_key) >= sender_level:
        raise AuthError("target's power level is not below the sender's")


def _check_knock(version: RoomVersion, event: Event, state: StateMap) -> None:
    if not _allows_knocking(version, _join_rule(state)):
        raise AuthError("the join rule does not allow knocking")
    if event.sender != event.state_key:
        raise AuthError("cannot knock on behalf of another user")
    if membership_of(state, event.sender) in ("ban", "invite", "join"):
        raise AuthError("sender is banned, invited or joined, so cannot knock")


# --- m.room.power_levels -------------------------------------------------------------

def _check_power_levels(version: RoomVersion, event: Event, state: StateMap, create: Event,
                        sender_level: int | float) -> None:
    new = event.content
    _check_power_levels_shape(new)
    if version.infinite_creator_power:
        users = new.get("users", {})
        if any(creator in users for creator in creators(version, create)):
            raise AuthError("power_levels users must not list a room creator")
    previous = state.get(POWER_LEVELS_KEY)
    if previous is None:
        return
    old = previous.content
    for name in _LEVEL_SCALARS:
        _check_level_change(name, old.get(name, _MISSING), new.get(name, _MISSING), sender_level)
    for name in _LEVEL_MAPPINGS:
        _check_mapping_changes(name, old.get(name), new.get(name), sender_level)
    _check_users_changes(old.get("users"), new.get("users"), event.sender, sender_level)


def _check_power_levels_shape(content: dict[str, Any]) -> None:
    # Every supported room version (integer_power_levels) refuses non-integer levels.
    for name in _LEVEL_SCALARS:
        if name in content and type(content[name]) is not int:
            raise AuthError(f"power_levels {name} is not an integer")
    for name in _LEVEL_MAPPINGS:
        if name in content and not _is_level_mapping(content[name]):
            raise AuthError(f"power_levels {name} is not an object of integers")
    if "users" in content:
        users = content["users"]
        if not _is_level_mapping(users) or not all(is_valid_user_id(user) for user in users):
            raise AuthError("power_levels users is not an object of user IDs to integers")


def _is_level_mapping(value: Any) -> bool:
    return isinstance(value, dict) and all(type(level) is int for level in value.values())


def _check_level_change(name: str, old: Any, new: Any, sender_level: int | float) -> None:
    if old == new:
        return
    if old is not _MISSING and old > sender_level:
        raise AuthError(f"cannot change power_levels {name}: its current value is above the sender's level")
    if new is not _MISSING and new > sender_level:
        raise AuthError(f"cannot set power_levels {name} above the sender's level")


def _check_mapping_changes(name: str, old: Any, new: Any, sender_level: int | float) -> None:
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    for key, old_level in old.items():
        if new.get(key, _MISSING) != old_level and old_level > sender_level:
            raise AuthError(f"cannot change power_levels {name}[{key!r}]: "
                            "its current value is above the sender's level")
    for key, new_level in new.items():
        if old.get(key, _MISSING) != new_level and new_level > sender_level:
            raise AuthError(f"cannot set power_levels {name}[{key!r}] above the sender's level")


def _check_users_changes(old: Any, new: Any, sender: str, sender_level: int | float) -> None:
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    for user, old_level in old.items():
        if user != sender and new.get(user, _MISSING) != old_level and old_level >= sender_level:
            raise AuthError(f"cannot change the level of {user}: it is not below the sender's")
    for user, new_level in new.items():
        if old.get(user, _MISSING) != new_level and new_level > sender_level:
            raise AuthError(f"cannot set the level of {user} above the sender's")

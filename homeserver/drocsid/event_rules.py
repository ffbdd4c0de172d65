"""Whether one event in a Drocsid server's rooms is allowed by Drocsid permissions.

Matrix auth rules (with the coarse power-level mirror) already passed when this is
asked; this adds the Drocsid bits, the role hierarchy and who may touch whose state.
Pure: the caller supplies the server's facts and the state before the event, so every
instance that holds the rooms gives the same answer. Local sends that fail are refused
(403); received events that fail are kept in the DAG but never shown (soft-failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.permissions import P
from homeserver.drocsid.voice_rules import VOICE_STATE_EVENT, check_call_member, check_voice_state

DELETED_EVENT = "io.drocsid.deleted"


@dataclass(frozen=True)
class ServerFacts:
    """What the permission math needs from a server space."""
    owner_id: str
    roles: Mapping[str, perms.Role]
    member_roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # at least sender and target

    def roles_of(self, user_id: str) -> tuple[str, ...]:
        return self.member_roles.get(user_id, ())


@dataclass(frozen=True)
class EventFacts:
    """The event and what it replaces: the prior content of its state key and, for a
    redaction, the sender of the redacted event."""
    type: str
    sender: str
    content: Any
    state_key: str | None = None
    prior_content: Any = None
    redacted_sender: str | None = None


def _name(bits: int) -> str:
    return "|".join(flag.name for flag in P if bits & flag and flag.name) or str(bits)


def _membership(content: Any) -> str | None:
    value = content.get("membership") if isinstance(content, Mapping) else None
    return value if isinstance(value, str) else None


def check_event(server: ServerFacts, event: EventFacts, overwrites: Mapping[str, perms.Overwrite] | None
                ) -> str | None:
    """None when allowed, else why not. ``overwrites`` is None for an event in the
    server space itself, else the channel's overwrites (as it follows them)."""
    sender = event.sender
    if sender == server.owner_id:
        return None
    in_space = overwrites is None
    if in_space:
        bits = perms.server_permissions(server.owner_id, server.roles, server.roles_of(sender), sender)
    else:
        bits = perms.channel_permissions(server.owner_id, server.roles, server.roles_of(sender), sender, overwrites)

    if event.type == perms.MEMBER_EVENT:
        return _check_member_roles(server, event, bits) if in_space else None
    if event.type == perms.CALL_MEMBER_EVENT:
        return None if in_space else check_call_member(sender, event.state_key, event.content, bits)
    if event.type == VOICE_STATE_EVENT:
        return None if in_space else check_voice_state(sender, event.state_key, event.content, event.prior_content,
                                                        bits)
    if event.type == DELETED_EVENT:
        # Deleting a server is the owner's alone; deleting a channel needs MANAGE_CHANNELS.
        return "only the owner deletes a server" if in_space else _need(bits, int(P.MANAGE_CHANNELS))

    required = perms.required_permission(event.type, event.content, state_key=event.state_key, sender=sender,
                                         in_space=in_space)
    if event.type == "m.room.member":
        required = _membership_requirement(event, in_space, required)
    if event.type == "m.room.redaction" and event.redacted_sender not in (None, sender):
        required = (required or 0) | int(P.MANAGE_MESSAGES)
    refused = _need(bits, required)
    if refused:
        return refused

    if event.type == perms.ROLE_EVENT and in_space:
        return _check_role(server, event)
    if event.type == perms.OVERWRITE_EVENT and not in_space:
        return _check_overwrite(event, bits)
    if event.type == "m.room.member":
        return _check_moderation(server, event)
    return None


def _need(bits: int, required: int | None) -> str | None:
    if perms.has_permissions(bits, required):
        return None
    return f"missing permission {_name(required & ~bits)}"


def _membership_requirement(event: EventFacts, in_space: bool, required: int | None) -> int | None:
    membership, prior = _membership(event.content), _membership(event.prior_content)
    if membership == "join" and prior != "join" and not in_space:
        return int(P.VIEW_CHANNEL)  # entering a channel is seeing it
    if membership == "leave" and prior == "ban" and event.state_key != event.sender:
        return int(P.BAN_MEMBERS)  # an unban
    return required


def _check_moderation(server: ServerFacts, event: EventFacts) -> str | None:
    """Kicks and bans reach only members below the actor (never the owner)."""
    target, membership = event.state_key, _membership(event.content)
    if target is None or target == event.sender or membership not in ("leave", "ban"):
        return None
    bit = int(P.BAN_MEMBERS) if membership == "ban" or _membership(event.prior_content) == "ban" \
        else int(P.KICK_MEMBERS)
    if perms.can_moderate(server.owner_id, server.roles, server.roles_of(event.sender), event.sender,
                          server.roles_of(target), target, bit):
        return None
    return "cannot moderate a member at or above your highest role"


def _check_role(server: ServerFacts, event: EventFacts) -> str | None:
    key = event.state_key if event.state_key is not None else ""
    old = perms.parse_role(key, event.prior_content)
    new = perms.parse_role(key, event.content)
    actor_roles = server.roles_of(event.sender)
    if new is None:
        if old is None:
            return None
        if old.is_everyone:
            return "@everyone cannot be deleted"
        allowed = perms.can_manage_role(server.owner_id, server.roles, actor_roles, event.sender, old)
    else:
        allowed = perms.can_edit_role(server.owner_id, server.roles, actor_roles, event.sender, old, new)
    return None if allowed else "cannot manage a role at or above your highest role, or grant what you lack"


def _check_member_roles(server: ServerFacts, event: EventFacts, bits: int) -> str | None:
    """A member event carries roles (MANAGE_ROLES and the hierarchy) and a nickname
    (CHANGE_NICKNAME for one's own, MANAGE_NICKNAMES for others')."""
    target = perms.user_of_state_key(event.state_key)
    if target is None:
        return "member state must be keyed by member:<user ID>"
    old = set(perms.parse_member_roles(target, event.prior_content).role_ids)
    new = set(perms.parse_member_roles(target, event.content).role_ids)
    if old != new:
        refused = _need(bits, int(P.MANAGE_ROLES))
        if refused:
            return refused
        if not perms.can_assign_roles(server.owner_id, server.roles, server.roles_of(event.sender), event.sender,
                                      added=sorted(new - old), removed=sorted(old - new)):
            return "cannot assign a role at or above your highest role, or one with permissions you lack"
    if _nick(event.content) != _nick(event.prior_content):
        return _need(bits, int(P.CHANGE_NICKNAME if target == event.sender else P.MANAGE_NICKNAMES))
    return None


def _nick(content: Any) -> str | None:
    value = content.get("nick") if isinstance(content, Mapping) else None
    return value if isinstance(value, str) and value else None


def _check_overwrite(event: EventFacts, bits: int) -> str | None:
    """Only bits the actor holds in the channel may be allowed, denied or cleared."""
    key = event.state_key if event.state_key is not None else ""
    old = perms.parse_overwrite(key, event.prior_content)
    new = perms.parse_overwrite(key, event.content)
    old_allow, old_deny = (old.allow, old.deny) if old is not None else (0, 0)
    new_allow, new_deny = (new.allow, new.deny) if new is not None else (0, 0)
    changed = (old_allow ^ new_allow) | (old_deny ^ new_deny)
    if changed & ~bits:
        return f"cannot change permission {_name(changed & ~bits)} you do not hold"
    return None

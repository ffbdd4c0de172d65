"""Drocsid permissions: the Discord bitfield, computed from room state alone.

Pure: callers pass the contents of ``io.drocsid.role`` (server space, state_key = role
ID, ``""`` = @everyone), ``io.drocsid.member`` (server space, state_key = user ID) and
``io.drocsid.overwrite`` (channel room, state_key = role ID or user ID) events. Every
Drocsid instance runs the same functions over the same state, so all agree on who may
do what, and on which federated events to hide.

Malformed state fails closed: a role that cannot be read grants nothing, an overwrite
whose ``allow`` cannot be read allows nothing, and one whose ``deny`` cannot be read
denies every bit (a private channel stays private while someone fixes it).

Unlike the original, Drocsid has a role hierarchy: nobody edits, grants or removes a
role at or above their own highest role, nobody grants a bit they lack, and nobody
moderates a member whose highest role is at or above theirs. The owner is above all.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

ROLE_EVENT = "io.drocsid.role"
MEMBER_EVENT = "io.drocsid.member"
OVERWRITE_EVENT = "io.drocsid.overwrite"
EVERYONE = ""  # the state_key (and role ID) of @everyone
# State about one user (their roles, their channel overwrite) is keyed "member:<user ID>",
# not by the bare user ID: Matrix auth rules let only the user themselves send state whose
# key starts with "@", and these events are written by those who manage the user.
MEMBER_KEY_PREFIX = "member:"


def member_state_key(user_id: str) -> str:
    """The state_key of ``io.drocsid.member`` and member ``io.drocsid.overwrite`` events."""
    return MEMBER_KEY_PREFIX + user_id


def user_of_state_key(state_key: Any) -> str | None:
    """The user a member-keyed state_key names, or None if it names none."""
    if isinstance(state_key, str) and state_key.startswith(MEMBER_KEY_PREFIX + "@"):
        return state_key[len(MEMBER_KEY_PREFIX):]
    return None


class Permission(enum.IntFlag):
    """The bits of the original's i64 bitfield (Discord's positions where names match)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_SERVER = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    STREAM = 1 << 9  # screen share in voice (Discord's bit; not in the original's list)
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MUTE_MEMBERS = 1 << 22
    DEAFEN_MEMBERS = 1 << 23
    MOVE_MEMBERS = 1 << 24
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    MANAGE_EXPRESSIONS = 1 << 30
    MANAGE_THREADS = 1 << 34
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40
    USE_SOUNDBOARD = 1 << 42
    MANAGE_SOUNDBOARD = 1 << 43  # Drocsid's own; Discord's bit 43 is something else


P = Permission

CALL_MEMBER_EVENT = "org.matrix.msc3401.call.member"  # MatrixRTC call membership (MSC3401/MSC4143)

# The union of the defined bits (not -1, not 2**63-1): 14587822337791 (the original's
# 14587822337279 plus STREAM).
ALL = 0
for _bit in Permission:
    ALL |= int(_bit)
del _bit

DEFAULT_EVERYONE = int(
    P.VIEW_CHANNEL | P.SEND_MESSAGES | P.READ_MESSAGE_HISTORY | P.ADD_REACTIONS | P.CONNECT
    | P.SPEAK | P.CHANGE_NICKNAME | P.CREATE_INSTANT_INVITE | P.EMBED_LINKS | P.ATTACH_FILES
    | P.USE_EXTERNAL_EMOJIS | P.MENTION_EVERYONE | P.USE_SOUNDBOARD | P.STREAM
)  # 4398117277249: the original's 4398117276737 plus STREAM, as Discord's default has it

# Bits that only make sense server-wide; everything else is a channel permission and is
# lost in a channel the user cannot view (Discord's "implicitly denied" rule).
SERVER_ONLY = int(
    P.KICK_MEMBERS | P.BAN_MEMBERS | P.ADMINISTRATOR | P.MANAGE_SERVER | P.VIEW_AUDIT_LOG
    | P.CHANGE_NICKNAME | P.MANAGE_NICKNAMES | P.MANAGE_EXPRESSIONS | P.MODERATE_MEMBERS
    | P.MANAGE_SOUNDBOARD
)
CHANNEL_SCOPED = ALL & ~SERVER_ONLY

# What sending a message carries with it; without SEND_MESSAGES these mean nothing.
SEND_DEPENDENT = int(P.MENTION_EVERYONE | P.ATTACH_FILES | P.EMBED_LINKS)

# Bits that make someone a moderator in the coarse power-level mirror.
MODERATION = int(
    P.KICK_MEMBERS | P.BAN_MEMBERS | P.MANAGE_MESSAGES | P.MANAGE_CHANNELS | P.MANAGE_SERVER
    | P.MANAGE_ROLES
)

_MAX_DIGITS = 20  # i64 fits in 19; refuse to parse anything longer
_DIGITS = re.compile(r"[0-9]{1,%d}\Z" % _MAX_DIGITS)


# --- the bitfield as text ------------------------------------------------------------

def parse_permissions(value: Any) -> int:
    """A bitfield from an int or a decimal string (how room state carries it).

    Strict, for input we are about to write: negatives, signs, spaces, floats, bools,
    and bits outside ``ALL`` raise ``ValueError`` rather than being masked, so a client
    learns its mistake instead of silently losing a bit.
    """
    if isinstance(value, bool):
        raise ValueError("permissions must be an integer or a decimal string, not a bool")
    if isinstance(value, int):
        bits = value
    elif isinstance(value, str) and _DIGITS.match(value):
        bits = int(value)
    else:
        raise ValueError("permissions must be a non-negative decimal integer")
    if bits < 0:
        raise ValueError("permissions must not be negative")
    if bits & ~ALL:
        raise ValueError("permissions have undefined bits: %d" % (bits & ~ALL))
    return bits


def format_permissions(bits: int) -> str:
    """The decimal string room state and ``/api/v1`` carry (JSON numbers lose i64 bits)."""
    return str(parse_permissions(int(bits)))


def _state_bits(value: Any) -> int | None:
    """Bits read from room state: None if unreadable; unknown bits masked off.

    Masking (not refusing) lets state written by a newer Drocsid that knows more bits
    keep the bits this one knows.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value & ALL if value >= 0 else None
    if isinstance(value, str) and _DIGITS.match(value):
        return int(value) & ALL
    return None


# --- state shapes --------------------------------------------------------------------

@dataclass(frozen=True)
class Role:
    """An ``io.drocsid.role`` state event: ``role_id`` is its state_key."""

    role_id: str
    name: str = ""
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    mentionable: bool = False

    @property
    def is_everyone(self) -> bool:
        return self.role_id == EVERYONE


@dataclass(frozen=True)
class MemberRoles:
    """An ``io.drocsid.member`` state event: the roles a user holds (not @everyone)."""

    user_id: str
    role_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Overwrite:
    """An ``io.drocsid.overwrite`` state event in a channel room."""

    target_id: str
    kind: str  # "role" or "member"
    allow: int = 0
    deny: int = 0


def _int_field(content: Mapping[str, Any], key: str, default: int) -> int:
    value = content.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_role(role_id: str, content: Any) -> Role | None:
    """The role, or None when the state is empty or not an object (a deleted role).

    Unreadable permissions grant nothing; an unreadable or negative position puts the
    role at the bottom (0). @everyone is always at position 0.
    """
    if not isinstance(role_id, str) or not isinstance(content, Mapping) or not content:
        return None
    bits = _state_bits(content.get("permissions"))
    name = content.get("name")
    color = _int_field(content, "color", 0)
    position = max(0, _int_field(content, "position", 0))
    return Role(
        role_id=role_id,
        name=name if isinstance(name, str) else "",
        permissions=bits if bits is not None else 0,
        position=0 if role_id == EVERYONE else position,
        color=color if 0 <= color <= 0xFFFFFF else 0,
        hoist=content.get("hoist") is True,
        mentionable=content.get("mentionable") is True,
    )


def parse_member_roles(user_id: str, content: Any) -> MemberRoles:
    """The member's role IDs: strings only, no @everyone, no duplicates, sorted."""
    roles = content.get("roles") if isinstance(content, Mapping) else None
    if not isinstance(roles, list):
        return MemberRoles(user_id)
    ids = sorted({r for r in roles if isinstance(r, str) and r != EVERYONE})
    return MemberRoles(user_id, tuple(ids))


def parse_overwrite(state_key: str, content: Any) -> Overwrite | None:
    """The overwrite, or None when there is none (empty, unknown type, wrong target).

    A member overwrite's state_key is ``member_state_key(user)`` (its target is the
    user ID); a role overwrite's is the role ID, which never looks like one.
    ADMINISTRATOR is stripped: an overwrite can neither grant nor take it away.
    """
    if not isinstance(state_key, str) or not isinstance(content, Mapping):
        return None
    kind = content.get("type")
    user_id = user_of_state_key(state_key)
    if kind not in ("role", "member") or (kind == "member") != (user_id is not None) \
            or state_key.startswith(("@", MEMBER_KEY_PREFIX)) and user_id is None:
        return None
    target_id = user_id if user_id is not None else state_key
    allow = _state_bits(content.get("allow", 0))
    deny = _state_bits(content.get("deny", 0))
    admin = int(P.ADMINISTRATOR)
    return Overwrite(
        target_id=target_id,
        kind=kind,
        allow=(allow if allow is not None else 0) & ~admin,
        deny=(deny if deny is not None else ALL) & ~admin,
    )


def roles_from_state(contents: Mapping[str, Any]) -> dict[str, Role]:
    """Roles by ID from ``{state_key: content}`` of the space's ``io.drocsid.role`` events."""
    roles = {}
    for role_id, content in contents.items():
        role = parse_role(role_id, content)
        if role is not None:
            roles[role_id] = role
    return roles


def overwrites_from_state(contents: Mapping[str, Any]) -> dict[str, Overwrite]:
    """Overwrites by target (role ID or user ID) from ``{state_key: content}`` of a
    channel's overwrite events."""
    overwrites = {}
    for state_key, content in contents.items():
        overwrite = parse_overwrite(state_key, content)
        if overwrite is not None:
            overwrites[overwrite.target_id] = overwrite
    return overwrites


def member_roles_from_state(contents: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Role IDs by user from ``{state_key: content}`` of the space's member events."""
    members = {}
    for state_key, content in contents.items():
        user_id = user_of_state_key(state_key)
        if user_id is not None:
            members[user_id] = parse_member_roles(user_id, content).role_ids
    return members


# --- the computation -----------------------------------------------------------------

def _held(roles: Mapping[str, Role], member_role_ids: Iterable[str]) -> list[Role]:
    # Role IDs naming a deleted role (or @everyone) count for nothing.
    return [roles[r] for r in set(member_role_ids) if r != EVERYONE and r in roles]


def _is_owner(owner_id: str | None, user_id: str) -> bool:
    return bool(owner_id) and owner_id == user_id


def server_permissions(
    owner_id: str | None, roles: Mapping[str, Role], member_role_ids: Iterable[str], user_id: str,
) -> int:
    """Server-wide bits: owner -> ALL; @everyone | the member's roles; ADMINISTRATOR -> ALL.

    Whether ``user_id`` is a member at all is the caller's question.
    """
    if _is_owner(owner_id, user_id):
        return ALL
    everyone = roles.get(EVERYONE)
    bits = everyone.permissions if everyone is not None else 0
    for role in _held(roles, member_role_ids):
        bits |= role.permissions
    bits &= ALL
    return ALL if bits & P.ADMINISTRATOR else bits


def _apply(bits: int, deny: int, allow: int) -> int:
    return (bits & ~deny) | allow


def channel_permissions(
    owner_id: str | None, roles: Mapping[str, Role], member_role_ids: Iterable[str], user_id: str,
    overwrites: Mapping[str, Overwrite],
) -> int:
    """Bits in one channel: the server bits, then the @everyone overwrite, the member's
    roles' overwrites (all denies, then all allows), then the member's own overwrite.

    Owner and ADMINISTRATOR skip overwrites. Then Discord's implicit denials: without
    VIEW_CHANNEL every channel-scoped bit goes (server-only bits such as BAN_MEMBERS
    stay, so a ban still reaches channels the moderator cannot see); without
    SEND_MESSAGES, MENTION_EVERYONE, ATTACH_FILES and EMBED_LINKS go.
    SEND_MESSAGES_IN_THREADS and ADD_REACTIONS stay independent, as in Discord.
    """
    role_ids = list(member_role_ids)
    bits = server_permissions(owner_id, roles, role_ids, user_id)
    if bits & P.ADMINISTRATOR:  # the owner's ALL includes it
        return ALL
    everyone = overwrites.get(EVERYONE)
    if everyone is not None and everyone.kind == "role":
        bits = _apply(bits, everyone.deny, everyone.allow)
    role_allow = role_deny = 0
    for role in _held(roles, role_ids):
        overwrite = overwrites.get(role.role_id)
        if overwrite is not None and overwrite.kind == "role":
            role_allow |= overwrite.allow
            role_deny |= overwrite.deny
    bits = _apply(bits, role_deny, role_allow)
    member = overwrites.get(user_id)
    if member is not None and member.kind == "member":
        bits = _apply(bits, member.deny, member.allow)
    bits &= ALL
    if not bits & P.VIEW_CHANNEL:
        bits &= ~CHANNEL_SCOPED
    if not bits & P.SEND_MESSAGES:
        bits &= ~SEND_DEPENDENT
    return bits


# --- hierarchy -----------------------------------------------------------------------

def highest_position(roles: Mapping[str, Role], member_role_ids: Iterable[str]) -> int:
    """The position of the member's highest role; 0 (@everyone's) when they hold none."""
    return max((role.position for role in _held(roles, member_role_ids)), default=0)


def _rank(owner_id: str | None, roles: Mapping[str, Role], role_ids: Iterable[str], user_id: str) -> float:
    return float("inf") if _is_owner(owner_id, user_id) else highest_position(roles, role_ids)


def can_grant(actor_permissions: int, new_permissions: int, old_permissions: int = 0) -> bool:
    """Whether an actor holding ``actor_permissions`` may turn ``old`` into ``new``.

    Only added bits matter (taking bits away is always allowed); each must be one the
    actor holds, ADMINISTRATOR only by an actor who holds it, and none undefined.
    """
    if new_permissions & ~ALL:
        return False
    added = new_permissions & ~old_permissions
    if added & P.ADMINISTRATOR and not actor_permissions & P.ADMINISTRATOR:
        return False
    return not added & ~actor_permissions


def can_manage_role(
    owner_id: str | None, roles: Mapping[str, Role], actor_role_ids: Iterable[str], actor_id: str,
    target_role: Role,
) -> bool:
    """Whether the actor may edit or delete ``target_role`` (or create one at its position).

    Needs MANAGE_ROLES (admins and the owner have it) and the target strictly below the
    actor's highest role; the owner may manage any role.
    """
    role_ids = list(actor_role_ids)
    if _is_owner(owner_id, actor_id):
        return True
    if not server_permissions(owner_id, roles, role_ids, actor_id) & P.MANAGE_ROLES:
        return False
    return target_role.position < highest_position(roles, role_ids)


def can_edit_role(
    owner_id: str | None, roles: Mapping[str, Role], actor_role_ids: Iterable[str], actor_id: str,
    old_role: Role | None, new_role: Role,
) -> bool:
    """Creating (``old_role`` None) or editing a role: the hierarchy holds for both the
    old and the new position, and every added permission passes ``can_grant``."""
    role_ids = list(actor_role_ids)
    for role in (old_role, new_role):
        if role is not None and not can_manage_role(owner_id, roles, role_ids, actor_id, role):
            return False
    if _is_owner(owner_id, actor_id):
        return not new_role.permissions & ~ALL
    actor_bits = server_permissions(owner_id, roles, role_ids, actor_id)
    old_bits = old_role.permissions if old_role is not None else 0
    return can_grant(actor_bits, new_role.permissions, old_bits)


def can_assign_roles(
    owner_id: str | None, roles: Mapping[str, Role], actor_role_ids: Iterable[str], actor_id: str,
    added: Iterable[str] = (), removed: Iterable[str] = (),
) -> bool:
    """Whether the actor may give (``added``) or take (``removed``) these roles.

    Each role must exist, not be @everyone, and sit strictly below the actor's highest
    role; a role given must carry no bit the actor lacks (so MANAGE_ROLES cannot hand
    out ADMINISTRATOR). The owner may assign any existing role.
    """
    role_ids = list(actor_role_ids)
    added, removed = list(added), list(removed)
    for role_id in added + removed:
        role = roles.get(role_id)
        if role is None or role.is_everyone:
            return False
        if not can_manage_role(owner_id, roles, role_ids, actor_id, role):
            return False
    if _is_owner(owner_id, actor_id):
        return True
    actor_bits = server_permissions(owner_id, roles, role_ids, actor_id)
    return all(can_grant(actor_bits, roles[r].permissions) for r in added)


def can_moderate(
    owner_id: str | None, roles: Mapping[str, Role], actor_role_ids: Iterable[str], actor_id: str,
    target_role_ids: Iterable[str], target_id: str, permission: int,
) -> bool:
    """Whether the actor may kick, ban, time out or rename ``target_id`` using
    ``permission`` (e.g. KICK_MEMBERS): the actor must hold it and rank strictly above
    the target. Nobody moderates the owner, or themselves (leaving is not a kick)."""
    if actor_id == target_id or _is_owner(owner_id, target_id):
        return False
    role_ids = list(actor_role_ids)
    bits = server_permissions(owner_id, roles, role_ids, actor_id)
    if permission & ~bits:
        return False
    return _rank(owner_id, roles, role_ids, actor_id) > _rank(owner_id, roles, target_role_ids, target_id)


# --- the coarse power-level mirror -----------------------------------------------------

ADMIN_LEVEL = 100
MODERATOR_LEVEL = 50
# Where @everyone may not send (or react), those who may are given this level: enough to
# pass events_default, below kick/ban/redact/state_default (50).
SPEAKER_LEVEL = 10

_MIRROR_FIXED = {"users_default": 0, "state_default": MODERATOR_LEVEL, "kick": MODERATOR_LEVEL,
                 "ban": MODERATOR_LEVEL, "redact": MODERATOR_LEVEL}


def _level(bits: int, everyone_bits: int) -> int:
    if bits & P.ADMINISTRATOR:
        return ADMIN_LEVEL
    if bits & MODERATION:
        return MODERATOR_LEVEL
    for bit in (P.SEND_MESSAGES, P.ADD_REACTIONS, P.MENTION_EVERYONE):
        if bits & bit and not everyone_bits & bit:
            return SPEAKER_LEVEL
    return 0


def power_levels_mirror(
    owner_id: str | None, roles: Mapping[str, Role], members: Mapping[str, Iterable[str]],
    existing_content: Mapping[str, Any] | None = None, *,
    overwrites: Mapping[str, Overwrite] | None = None, extra_users: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The ``m.room.power_levels`` content that makes plain Matrix enforce the coarse part.

    Owner and ADMINISTRATOR -> 100; any of ``MODERATION`` -> 50; SEND_MESSAGES,
    ADD_REACTIONS or MENTION_EVERYONE where @everyone lacks it -> 10; everyone else is
    left out (0). ``notifications.room`` is 0 when @everyone may mention everyone, else 10.
    ``events_default`` is 0 when @everyone may send, else 10; ``m.reaction`` likewise
    for ADD_REACTIONS; ``invite`` is 0 when @everyone may invite, else 50. In a channel,
    pass its ``overwrites`` and the levels follow the channel's bits.

    ``users`` is rebuilt from ``members`` (plus ``extra_users``, e.g. the homeserver's
    service user): a stale entry never survives a demotion. Other keys of
    ``existing_content`` are kept. The same input gives the same dict everywhere.
    """
    existing = dict(existing_content) if isinstance(existing_content, Mapping) else {}

    def bits_of(role_ids: Iterable[str], user_id: str) -> int:
        if overwrites is None:
            return server_permissions(owner_id, roles, role_ids, user_id)
        return channel_permissions(owner_id, roles, role_ids, user_id, overwrites)

    # @everyone's own bits: a user with no roles and no member overwrite.
    everyone_bits = bits_of((), "")
    users: dict[str, int] = {}
    for user_id, level in (extra_users or {}).items():
        if isinstance(level, int) and not isinstance(level, bool):
            users[user_id] = level
    for user_id, role_ids in members.items():
        level = _level(bits_of(role_ids, user_id), everyone_bits)
        if level:
            users[user_id] = max(level, users.get(user_id, level))
    if owner_id:
        users[owner_id] = ADMIN_LEVEL

    content = {k: v for k, v in existing.items() if k not in ("users", "events")}
    content.update(_MIRROR_FIXED)
    content["events_default"] = 0 if everyone_bits & P.SEND_MESSAGES else SPEAKER_LEVEL
    content["invite"] = 0 if everyone_bits & P.CREATE_INSTANT_INVITE else MODERATOR_LEVEL
    events = existing.get("events")
    events = {k: v for k, v in events.items() if isinstance(v, int)} if isinstance(events, Mapping) else {}
    events["m.reaction"] = 0 if everyone_bits & P.ADD_REACTIONS else SPEAKER_LEVEL
    # Element Call's membership (MatrixRTC): whoever may connect announces themselves; the
    # Drocsid rules hold each to their own key and to CONNECT.
    events[CALL_MEMBER_EVENT] = 0 if everyone_bits & P.CONNECT else SPEAKER_LEVEL
    content["events"] = dict(sorted(events.items()))
    # Who may ping the whole room: everyone when @everyone holds MENTION_EVERYONE, else
    # those raised to SPEAKER_LEVEL for it (push rules read this for @room highlights).
    notifications = dict(content["notifications"]) if isinstance(content.get("notifications"), Mapping) else {}
    notifications["room"] = 0 if everyone_bits & P.MENTION_EVERYONE else SPEAKER_LEVEL
    content["notifications"] = notifications
    content["users"] = dict(sorted(users.items()))
    return dict(sorted(content.items()))


# --- which bit an event needs --------------------------------------------------------

_MEDIA_MSGTYPES = frozenset({"m.image", "m.file", "m.video", "m.audio"})
_MASS_MENTION = re.compile(r"(?<![\w@.])@(?:everyone|here)\b")
_LEGACY_ROOM_MENTION = re.compile(r"(?<![\w@.])@room\b")

_CHANNEL_STATE = frozenset({
    "m.room.name", "m.room.topic", "m.room.avatar", "m.room.join_rules", "m.room.history_visibility",
    "m.space.parent", "m.space.child",
})
_SERVER_STATE = frozenset({"m.room.name", "m.room.topic", "m.room.avatar", "m.room.server_acl"})


def _message_bits(content: Any) -> int:
    bits = int(P.SEND_MESSAGES)
    if not isinstance(content, Mapping):
        return bits
    if content.get("msgtype") in _MEDIA_MSGTYPES:
        bits |= P.ATTACH_FILES
    mentions = content.get("m.mentions")
    body = content.get("body")
    body = body if isinstance(body, str) else ""
    if isinstance(mentions, Mapping) and mentions.get("room") is True:
        bits |= P.MENTION_EVERYONE
    elif _MASS_MENTION.search(body):
        bits |= P.MENTION_EVERYONE
    elif mentions is None and _LEGACY_ROOM_MENTION.search(body):
        bits |= P.MENTION_EVERYONE  # clients without intentional mentions ping on @room
    return bits


def required_permission(
    event_type: str, content: Any, *, state_key: str | None = None, sender: str | None = None,
    in_space: bool = False,
) -> int | None:
    """The bits (all of them) an event's sender needs, or None when no Drocsid bit governs it.

    Channel bits (``in_space`` False) are checked against ``channel_permissions`` of the
    state before the event; server-space events against ``server_permissions``.
    Deliberately not here, because they depend on more than the event: redacting
    someone else's event (MANAGE_MESSAGES), editing only one's own message, role
    hierarchy, and joining (VIEW_CHANNEL, which the join rules already carry).
    Thread replies need SEND_MESSAGES, as in the original (SEND_MESSAGES_IN_THREADS is
    not in the default @everyone and never enforced there). An unban looks like a kick
    (a leave sent by someone else) and so asks for KICK_MEMBERS.
    """
    if event_type == "m.room.message":
        return _message_bits(content)
    if event_type == "m.sticker":
        return int(P.SEND_MESSAGES)
    if event_type == "m.reaction":
        return int(P.ADD_REACTIONS)
    if event_type == "m.room.pinned_events":
        return int(P.MANAGE_MESSAGES)
    if event_type == OVERWRITE_EVENT:
        return int(P.MANAGE_ROLES)  # the original's "manage permissions", as in Discord
    if event_type in (ROLE_EVENT, MEMBER_EVENT, "m.room.power_levels"):
        return int(P.MANAGE_ROLES)
    if event_type == "m.room.member":
        membership = content.get("membership") if isinstance(content, Mapping) else None
        if membership == "ban":
            return int(P.BAN_MEMBERS)
        if membership == "invite":
            return int(P.CREATE_INSTANT_INVITE)
        if membership == "leave" and state_key is not None and sender is not None and state_key != sender:
            return int(P.KICK_MEMBERS)
        return None
    if in_space:
        if event_type in _SERVER_STATE:
            return int(P.MANAGE_SERVER)
        if event_type in ("m.space.child", "m.room.join_rules", "m.room.history_visibility"):
            return int(P.MANAGE_CHANNELS)
        return None
    if event_type in _CHANNEL_STATE:
        return int(P.MANAGE_CHANNELS)
    return None


def has_permissions(bits: int, required: int | None) -> bool:
    """Whether ``bits`` include every bit of ``required`` (None requires nothing)."""
    return required is None or not (required & ~bits)


__all__ = [
    "ALL", "CHANNEL_SCOPED", "DEFAULT_EVERYONE", "EVERYONE", "MEMBER_EVENT", "MEMBER_KEY_PREFIX", "MODERATION",
    "OVERWRITE_EVENT", "ROLE_EVENT", "SEND_DEPENDENT", "SERVER_ONLY", "ADMIN_LEVEL",
    "MODERATOR_LEVEL", "SPEAKER_LEVEL", "MemberRoles", "Overwrite", "Permission", "Role",
    "can_assign_roles", "can_edit_role", "can_grant", "can_manage_role", "can_moderate",
    "channel_permissions", "format_permissions", "has_permissions", "highest_position",
    "member_roles_from_state", "member_state_key", "user_of_state_key",
    "overwrites_from_state", "parse_member_roles", "parse_overwrite", "parse_permissions",
    "parse_role", "power_levels_mirror", "required_permission", "roles_from_state",
    "server_permissions",
]

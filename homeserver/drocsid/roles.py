"""Roles, members' roles and nicknames, and channel overwrites (DESIGN.md §2): the
checks and the writes behind ``/api/v1`` roles, members and overwrites.

State written here:
- ``io.drocsid.role`` in the space, state_key = role ID (``""`` = @everyone): name,
  color, hoist, position, mentionable, permissions (decimal string). A deleted role's
  state is emptied.
- ``io.drocsid.member`` in the space, state_key = ``member_state_key(user)``:
  ``{"roles": [...], "nick": ...}``.
- ``io.drocsid.overwrite`` in a channel room, state_key = role ID or
  ``member_state_key(user)``: ``{"type", "allow", "deny"}`` (decimal strings).

Positions: @everyone is 0; the other roles are numbered 1..n from the bottom. A role
created or moved to position p ends at p (on top if p is past the end), the others
keeping their order around it, and the roles are renumbered 1..n (only those whose
number changed are rewritten), so their order is all that positions carry.

Hierarchy (``permissions.can_manage_role``, ``can_assign_roles``, ``can_grant``): nobody
creates, edits, moves, deletes, gives or takes a role at or above their own highest
role, or grants a bit they lack; the owner may do all of it. Checks run before any
write, so a refused request changes nothing.

After every change, ``sync_server`` brings the rooms in step: each room's
``m.room.power_levels`` mirror (``permissions.power_levels_mirror``) and, for private
channels, who is in them (``sync_channel_access``). Changes to one server are
serialised, so two requests never renumber roles from the same stale state.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import replace
from typing import Any, Iterable

from twisted.logger import Logger

from homeserver.api.users import iso_timestamp
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.presence import from_matrix_presence
from homeserver.drocsid.webhooks import webhook_id_of
from homeserver.drocsid.server_state import Channel, Server, load_server, server_of_channel
from homeserver.drocsid.servers import _send_as
from homeserver.events.auth_rules import creators
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.locks import KeyedLock

log = Logger(namespace="drocsid.roles")

EVERYONE_TOKEN = "@everyone"  # how @everyone (ID "") is named in a path
MAX_ROLES = 250               # as Discord
MAX_POSITION = 10_000
MAX_NICKNAME = 32
OVERWRITE_TYPES = ("role", "member")
ACCESS_LOST = "lost access"

_ROLE_ID_ALPHABET = string.ascii_letters + string.digits
_ROLE_ID_LENGTH = 12
_UNSET: Any = object()
_locks = KeyedLock()


def new_role_id() -> str:
    # Letters and digits only: never "" (@everyone), never "@..." or "member:..." (user keys).
    return "".join(secrets.choice(_ROLE_ID_ALPHABET) for _ in range(_ROLE_ID_LENGTH))


def role_id_from_path(token: str) -> str:
    """A role ID from a path segment: ``@everyone`` (or an empty segment) is ``""``."""
    return perms.EVERYONE if token in (EVERYONE_TOKEN, "") else token


# --- the /api/v1 shapes (the gateway sends the same) --------------------------------------

def role_json(server_id: str, role: perms.Role) -> dict:
    return {"id": role.role_id, "server_id": server_id, "name": role.name, "color": role.color,
            "hoist": role.hoist, "position": role.position,
            "permissions": perms.format_permissions(role.permissions), "mentionable": role.mentionable}


def overwrite_json(channel_id: str, overwrite: perms.Overwrite) -> dict:
    return {"channel_id": channel_id, "target_type": overwrite.kind, "target_id": overwrite.target_id,
            "allow": perms.format_permissions(overwrite.allow), "deny": perms.format_permissions(overwrite.deny)}


def member_json(server_id: str, user_id: str, *, role_ids: Iterable[str], nickname: str | None,
                joined_at_ms: int | None, display_name: str | None) -> dict:
    return {"server_id": server_id, "user_id": user_id, "nickname": nickname,
            "joined_at": iso_timestamp(joined_at_ms) if joined_at_ms is not None else None,
            "role_ids": list(role_ids), "user": {"id": user_id, "display_name": display_name}}


def sorted_roles(server: Server) -> list[perms.Role]:
    """@everyone first, then the others from the bottom up."""
    return sorted(server.roles.values(), key=lambda r: (r.position, r.role_id))


def _member_content(server: Server, user_id: str) -> dict:
    content = server.state.content(perms.MEMBER_EVENT, perms.member_state_key(user_id))
    return dict(content) if isinstance(content, dict) else {}


def nickname_of(server: Server, user_id: str) -> str | None:
    nick = _member_content(server, user_id).get("nick")
    return nick if isinstance(nick, str) and nick else None


def held_roles(server: Server, user_id: str) -> list[str]:
    """The member's roles that exist, highest first."""
    roles = server.roles
    held = [roles[r] for r in server.member_roles.get(user_id, ()) if r in roles and r != perms.EVERYONE]
    return [r.role_id for r in sorted(held, key=lambda r: (-r.position, r.role_id))]


async def members_json(hs, server: Server, user_ids: list[str]) -> list[dict]:
    """``member_json`` of each joined member, read from the space's member events."""
    head = await hs.room_heads.get(server.room_id)
    event_ids = {u: head.state.get(("m.room.member", u)) for u in user_ids} if head is not None else {}
    events = await hs.events.get_events([e for e in event_ids.values() if e])
    presence = {row.user_id: row for row in await hs.presence_store.get(user_ids)} if user_ids else {}
    answer = []
    for user_id in user_ids:
        event = events.get(event_ids.get(user_id))
        name = event.content.get("displayname") if event is not None else None
        member = member_json(
            server.room_id, user_id, role_ids=held_roles(server, user_id), nickname=nickname_of(server, user_id),
            joined_at_ms=event.origin_server_ts if event is not None else None,
            display_name=name if isinstance(name, str) else user_id[1:].split(":", 1)[0])
        # Presence as the gateway's PRESENCE_UPDATE gives it (invisible reads as offline).
        row = presence.get(user_id)
        status, custom = from_matrix_presence(row.state, row.status_msg) if row is not None else ("offline", None)
        member["status"] = "offline" if status == "invisible" else status
        member["custom_status"] = custom
        # A webhook's virtual user is in the space so it can post; clients do not list it.
        member["webhook"] = webhook_id_of(user_id) is not None
        answer.append(member)
    return answer


# --- loading under the server's lock -------------------------------------------------------

class _Change:
    """One change to one server: the fresh server, checked for the actor, under its lock."""

    def __init__(self, hs, server_id: str, actor: str):
        self.hs, self.server_id, self.actor = hs, server_id, actor
        self._hold = _locks.hold((id(hs), server_id))
        self.server: Server | None = None

    async def __aenter__(self) -> "_Change":
        await self._hold.__aenter__()
        try:
            server = await load_server(self.hs, self.server_id)
            if server is None:
                raise not_found("Unknown server")
            if not server.is_member(self.actor):
                raise forbidden("You are not a member of this server")
        except BaseException:
            await self._hold.__aexit__(None, None, None)
            raise
        self.server = server
        return self

    async def __aexit__(self, kind, error, traceback) -> None:
        await self._hold.__aexit__(kind, error, traceback)

    @property
    def owner(self) -> str:
        return self.server.owner_id

    @property
    def actor_roles(self) -> tuple[str, ...]:
        return self.server.member_roles.get(self.actor, ())

    async def send(self, room_id: str, event_type: str, content: dict, state_key: str) -> None:
        await _send_as(self.hs, self.actor, self.owner, room_id, event_type, content, state_key)

    async def finish(self) -> Server:
        """Bring the rooms in step with the new state; the server as it now is."""
        return await sync_server(self.hs, self.server_id, self.actor)


def _require(bits: int, permission: int, name: str) -> None:
    if not perms.has_permissions(bits, permission):
        raise forbidden(f"Missing permission {name}")


def _bits(value: Any, name: str) -> int:
    try:
        return perms.parse_permissions(value)
    except ValueError as error:
        raise invalid_param(f"'{name}': {error}") from None


# --- roles ---------------------------------------------------------------------------

def _role_content(role: perms.Role, raw: dict | None = None) -> dict:
    content = dict(raw or {})
    content.update({"name": role.name, "permissions": perms.format_permissions(role.permissions),
                    "position": role.position, "color": role.color, "hoist": role.hoist,
                    "mentionable": role.mentionable})
    return content


def _others(roles: dict[str, perms.Role], role_id: str) -> list[str]:
    """The roles but @everyone and ``role_id``, from the bottom up."""
    return [r.role_id for r in sorted(roles.values(), key=lambda r: (r.position, r.role_id))
            if not r.is_everyone and r.role_id != role_id]


def _layout(roles: dict[str, perms.Role], role_id: str, position: int) -> dict[str, int]:
    """Positions 1..n with ``role_id`` at ``position`` (or on top, if that is past the end)
    and the other roles in their order around it."""
    order = _others(roles, role_id)
    order.insert(min(position, len(order) + 1) - 1, role_id)
    return {rid: i + 1 for i, rid in enumerate(order)}


def _default_position(change: "_Change") -> int:
    """Directly below the actor's highest role; on top for the owner."""
    roles = change.server.roles
    order = _others(roles, "")
    if change.actor == change.server.owner_id:
        return len(order) + 1
    held = [i for i, rid in enumerate(order) if rid in change.actor_roles]
    # The new role takes the place of the actor's highest role, which moves up one.
    return max(held) + 1 if held else 1


def _relaid(roles: dict[str, perms.Role], layout: dict[str, int], role: perms.Role) -> dict[str, perms.Role]:
    new = {rid: replace(r, position=layout.get(rid, r.position)) for rid, r in roles.items()}
    new[role.role_id] = role
    return new


def _check_role_change(change: _Change, old: perms.Role | None, new: perms.Role,
                       new_roles: dict[str, perms.Role]) -> None:
    """The hierarchy for creating (``old`` None), editing or moving a role."""
    server, actor = change.server, change.actor
    _require(server.permissions(actor), perms.P.MANAGE_ROLES, "MANAGE_ROLES")
    if old is not None and not perms.can_manage_role(server.owner_id, server.roles, change.actor_roles, actor, old):
        raise forbidden("You can only manage roles below your highest role")
    if not perms.can_manage_role(server.owner_id, new_roles, change.actor_roles, actor, new):
        raise forbidden("A role must stay below your highest role")
    if actor != server.owner_id and not perms.can_grant(server.permissions(actor), new.permissions,
                                                        old.permissions if old is not None else 0):
        raise forbidden("You cannot grant permissions you do not have")


def _check_role_fields(fields: dict) -> None:
    if "name" in fields and (not isinstance(fields["name"], str) or not fields["name"].strip()):
        raise invalid_param("'name' must be between 1 and 100 characters")
    color = fields.get("color")
    if color is not None and not 0 <= color <= 0xFFFFFF:
        raise invalid_param("'color' must be between 0 and 16777215 (0xFFFFFF)")
    position = fields.get("position", 1)
    if position is None or not 1 <= position <= MAX_POSITION:
        raise invalid_param(f"'position' must be between 1 and {MAX_POSITION}")


async def _write_layout(change: _Change, layout: dict[str, int], skip: str) -> None:
    """Rewrite the roles whose position the new layout changes (their order is kept)."""
    server = change.server
    for role_id, position in sorted(layout.items()):
        role = server.roles.get(role_id)
        if role_id == skip or role is None or role.position == position:
            continue
        raw = server.state.content(perms.ROLE_EVENT, role_id)
        await change.send(server.room_id, perms.ROLE_EVENT, {**raw, "position": position}, role_id)


async def create_role(hs, actor: str, server_id: str, fields: dict) -> dict:
    """A new role: by default directly below the actor's highest role (the owner's: on top)."""
    _check_role_fields(fields)
    async with _Change(hs, server_id, actor) as change:
        server = change.server
        roles = server.roles
        if len([r for r in roles.values() if not r.is_everyone]) >= MAX_ROLES:
            raise forbidden(f"A server has at most {MAX_ROLES} roles")
        bits = _bits(fields.get("permissions", 0), "permissions")
        position = fields["position"] if "position" in fields else _default_position(change)
        role_id = new_role_id()
        layout = _layout(roles, role_id, position)
        role = perms.Role(role_id, fields["name"].strip(), bits, layout[role_id], fields.get("color") or 0,
                          bool(fields.get("hoist")), bool(fields.get("mentionable")))
        _check_role_change(change, None, role, _relaid(roles, layout, role))
        await change.send(server.room_id, perms.ROLE_EVENT, _role_content(role), role_id)
        await _write_layout(change, layout, role_id)
        server = await change.finish()
    return role_json(server.room_id, server.roles[role_id])


def _existing_role(server: Server, role_id: str) -> perms.Role:
    role = server.roles.get(role_id)
    if role is None:
        raise not_found("Unknown role")
    return role


async def update_role(hs, actor: str, server_id: str, role_id: str, fields: dict) -> dict:
    _check_role_fields(fields)
    async with _Change(hs, server_id, actor) as change:
        server = change.server
        old = _existing_role(server, role_id)
        if old.is_everyone:
            if "position" in fields:
                raise invalid_param("@everyone is always at position 0")
            if fields.get("name", old.name).strip() != old.name:
                raise invalid_param("@everyone cannot be renamed")
        bits = _bits(fields["permissions"], "permissions") if "permissions" in fields else old.permissions
        layout = {} if old.is_everyone else {r.role_id: r.position for r in server.roles.values()}
        if "position" in fields:
            layout = _layout(server.roles, role_id, fields["position"])
        role = perms.Role(
            role_id, fields["name"].strip() if "name" in fields else old.name, bits,
            layout.get(role_id, old.position),
            (fields.get("color") or 0) if "color" in fields else old.color,
            fields["hoist"] if "hoist" in fields else old.hoist,
            fields["mentionable"] if "mentionable" in fields else old.mentionable)
        _check_role_change(change, old, role, _relaid(server.roles, layout, role))
        if role != old:
            raw = server.state.content(perms.ROLE_EVENT, role_id)
            await change.send(server.room_id, perms.ROLE_EVENT, _role_content(role, raw), role_id)
        if "position" in fields:
            await _write_layout(change, layout, role_id)
        server = await change.finish()
    return role_json(server.room_id, server.roles[role_id])


async def delete_role(hs, actor: str, server_id: str, role_id: str) -> None:
    """Empty the role's state, and take it off its members and out of channel overwrites."""
    async with _Change(hs, server_id, actor) as change:
        server = change.server
        role = _existing_role(server, role_id)
        if role.is_everyone:
            raise invalid_param("@everyone cannot be deleted")
        _require(server.permissions(actor), perms.P.MANAGE_ROLES, "MANAGE_ROLES")
        if not perms.can_manage_role(server.owner_id, server.roles, change.actor_roles, actor, role):
            raise forbidden("You can only manage roles below your highest role")
        await change.send(server.room_id, perms.ROLE_EVENT, {}, role_id)
        for user_id, role_ids in sorted(server.member_roles.items()):
            if role_id in role_ids:
                content = _member_content(server, user_id)
                content["roles"] = [r for r in role_ids if r != role_id]
                await change.send(server.room_id, perms.MEMBER_EVENT, content, perms.member_state_key(user_id))
        for channel in server.channels:
            if role_id in channel.overwrites:
                await change.send(channel.room_id, perms.OVERWRITE_EVENT, {}, role_id)
        # The roles left are renumbered 1..n, their order kept.
        remaining = sorted((r for r in server.roles.values() if not r.is_everyone and r.role_id != role_id),
                           key=lambda r: (r.position, r.role_id))
        await _write_layout(change, {r.role_id: i + 1 for i, r in enumerate(remaining)}, role_id)
        await change.finish()


# --- members -------------------------------------------------------------------------

async def update_member(hs, actor: str, server_id: str, user_id: str, *, nickname: Any = _UNSET,
                        role_ids: list | None = None, add: Iterable[str] = (), remove: Iterable[str] = ()) -> dict:
    """Change a member's nickname and roles: ``role_ids`` replaces them (unknown IDs 400),
    ``add``/``remove`` change one (unknown IDs 404)."""
    add, remove = list(add), list(remove)
    async with _Change(hs, server_id, actor) as change:
        server = change.server
        if not server.is_member(user_id):
            raise not_found("Unknown member")
        roles = server.roles
        current = {r for r in server.member_roles.get(user_id, ()) if r in roles}
        wanted = set(current)
        if role_ids is not None:
            bad = [r for r in role_ids if not isinstance(r, str) or r == perms.EVERYONE or r not in roles]
            if bad:
                raise invalid_param("'role_ids' must name roles of this server other than @everyone")
            wanted = set(role_ids)
        for role_id in add + remove:
            if role_id == perms.EVERYONE:
                raise invalid_param("@everyone is everyone's; it is not given or taken")
            _existing_role(server, role_id)
        wanted = (wanted | set(add)) - set(remove)
        content = _member_content(server, user_id)
        nick_changes = nickname is not _UNSET and (nickname or None) != nickname_of(server, user_id)
        if nick_changes:
            if user_id == actor:
                _require(server.permissions(actor), perms.P.CHANGE_NICKNAME, "CHANGE_NICKNAME")
            elif not perms.can_moderate(server.owner_id, roles, change.actor_roles, actor,
                                        server.member_roles.get(user_id, ()), user_id, perms.P.MANAGE_NICKNAMES):
                raise forbidden("You cannot change this member's nickname")
            if nickname:
                content["nick"] = nickname
            else:
                content.pop("nick", None)
        if wanted != current:
            _require(server.permissions(actor), perms.P.MANAGE_ROLES, "MANAGE_ROLES")
            if not perms.can_assign_roles(server.owner_id, roles, change.actor_roles, actor,
                                          sorted(wanted - current), sorted(current - wanted)):
                raise forbidden("You can only give or take roles below your highest role, "
                                "carrying only permissions you have")
            content["roles"] = sorted(wanted)
        if nick_changes or wanted != current:
            content.setdefault("roles", sorted(wanted))
            await change.send(server.room_id, perms.MEMBER_EVENT, content, perms.member_state_key(user_id))
            server = await change.finish()
        [member] = await members_json(hs, server, [user_id])
    return member


# --- channel overwrites ------------------------------------------------------------------

async def _channel_change(hs, actor: str, channel_id: str):
    """A change to the server of a channel; 404 for unknown channels and non-members."""
    found = await server_of_channel(hs, channel_id) if channel_id.startswith("!") else None
    if found is None or not found[0].is_member(actor):
        raise not_found("Unknown channel")
    return _Change(hs, found[0].room_id, actor)


def _fresh_channel(change: _Change, channel_id: str) -> Channel:
    server, actor = change.server, change.actor
    channel = server.channel(channel_id)
    if channel is None:
        raise not_found("Unknown channel")
    if not server.can_view(actor, channel):
        # As channels.channel_for: members know the server's channels exist.
        raise forbidden("Missing permission VIEW_CHANNEL")
    _require(server.channel_permissions(actor, channel), perms.P.MANAGE_ROLES, "MANAGE_ROLES")
    return channel


def overwrite_key(kind: str, target_id: str) -> str:
    return perms.member_state_key(target_id) if kind == "member" else target_id


def _check_target(change: _Change, kind: str, target_id: str) -> None:
    """The actor may only set overwrites for roles below their own, and members they outrank
    (or themselves)."""
    server, actor = change.server, change.actor
    if kind == "role":
        role = server.roles.get(target_id)
        if role is not None and actor != server.owner_id \
                and role.position >= perms.highest_position(server.roles, change.actor_roles):
            raise forbidden("You can only set overwrites for roles below your highest role")
    elif target_id != actor and not perms.can_moderate(server.owner_id, server.roles, change.actor_roles, actor,
                                                       server.member_roles.get(target_id, ()), target_id, 0):
        raise forbidden("You can only set overwrites for members below you")


def _check_bits(change: _Change, channel: Channel, old: perms.Overwrite | None, allow: int, deny: int) -> None:
    """Every bit the change touches (in allow or deny, added or removed) must be the actor's."""
    actor_bits = change.server.channel_permissions(change.actor, channel)
    old_allow, old_deny = (old.allow, old.deny) if old is not None else (0, 0)
    touched = (old_allow ^ allow) | (old_deny ^ deny)
    if not perms.can_grant(actor_bits, touched):
        raise forbidden("You cannot allow or deny permissions you do not have in this channel")


async def _detach_from_category(change: _Change, channel: Channel) -> None:
    """A channel following its category's overwrites gets its own copy before it diverges."""
    server = change.server
    if channel.overwrites or channel.parent_id is None:
        return
    category = server.channel(channel.parent_id)
    for target_id, overwrite in sorted((category.overwrites if category is not None else {}).items()):
        content = {"type": overwrite.kind, "allow": str(overwrite.allow), "deny": str(overwrite.deny)}
        await change.send(channel.room_id, perms.OVERWRITE_EVENT, content, overwrite_key(overwrite.kind, target_id))


async def list_overwrites(hs, actor: str, channel_id: str) -> list[dict]:
    async with await _channel_change(hs, actor, channel_id) as change:
        channel = _fresh_channel(change, channel_id)
        return [overwrite_json(channel_id, o) for _, o in sorted(channel.overwrites.items())]


def _parse_target(server: Server, kind: str, target_id: str) -> str:
    if kind not in OVERWRITE_TYPES:
        raise invalid_param("'target_type' must be role or member")
    if kind == "role":
        target_id = role_id_from_path(target_id)
        _existing_role(server, target_id)
    elif not target_id.startswith("@") or not server.is_member(target_id):
        raise not_found("Unknown member")
    return target_id


async def set_overwrite(hs, actor: str, channel_id: str, kind: str, target_id: str, allow: Any, deny: Any) -> dict:
    allow_bits, deny_bits = _bits(allow, "allow"), _bits(deny, "deny")
    if (allow_bits | deny_bits) & perms.P.ADMINISTRATOR:
        raise invalid_param("An overwrite cannot allow or deny ADMINISTRATOR")
    async with await _channel_change(hs, actor, channel_id) as change:
        channel = _fresh_channel(change, channel_id)
        target_id = _parse_target(change.server, kind, target_id)
        _check_target(change, kind, target_id)
        _check_bits(change, channel, channel.overwrites.get(target_id), allow_bits, deny_bits)
        await _detach_from_category(change, channel)
        content = {"type": kind, "allow": str(allow_bits), "deny": str(deny_bits)}
        await change.send(channel_id, perms.OVERWRITE_EVENT, content, overwrite_key(kind, target_id))
        server = await change.finish()
    overwrite = server.channel(channel_id).overwrites.get(target_id)
    return overwrite_json(channel_id, overwrite)


async def delete_overwrite(hs, actor: str, channel_id: str, kind: str, target_id: str) -> None:
    async with await _channel_change(hs, actor, channel_id) as change:
        channel = _fresh_channel(change, channel_id)
        if kind not in OVERWRITE_TYPES:
            raise invalid_param("'target_type' must be role or member")
        target_id = role_id_from_path(target_id) if kind == "role" else target_id
        old = channel.overwrites.get(target_id)
        if old is None or old.kind != kind:
            raise not_found("Unknown overwrite")
        _check_target(change, kind, target_id)
        _check_bits(change, channel, old, 0, 0)
        await _detach_from_category(change, channel)
        await change.send(channel_id, perms.OVERWRITE_EVENT, {}, overwrite_key(kind, target_id))
        await change.finish()


# --- keeping the rooms in step ---------------------------------------------------------------

async def sync_server(hs, server_id: str, actor: str | None = None) -> Server | None:
    """After a change of roles, members' roles or overwrites: the power-level mirror of every
    room of the server, then who is in its private channels. The server as it now is."""
    server = await load_server(hs, server_id)
    if server is None:
        return None
    await sync_power_levels(hs, server, actor)
    await sync_channel_access(hs, server, actor)
    return await load_server(hs, server_id)


async def sync_server_in_turn(hs, server_id: str) -> Server | None:
    """``sync_server`` once any change to the server under way here is done (its lock):
    for changes that came in another way (a Matrix client, federation)."""
    async with _locks.hold((id(hs), server_id)):
        return await sync_server(hs, server_id)


async def sync_power_levels(hs, server: Server, actor: str | None = None) -> None:
    """Send each room's mirror where it differs from its ``m.room.power_levels``."""
    member_roles = server.member_roles
    members = {u: member_roles.get(u, ()) for u in server.members}
    members.setdefault(server.owner_id, ())
    await _mirror_room(hs, actor, server, server.room_id, members, None)
    for channel in server.channels:
        await _mirror_room(hs, actor, server, channel.room_id, members, server.overwrites_for(channel))


async def _mirror_room(hs, actor: str | None, server: Server, room_id: str, members: dict, overwrites) -> None:
    head = await hs.room_heads.get(room_id)
    if head is None:
        return
    keys = [("m.room.power_levels", ""), ("m.room.create", "")]
    ids = [head.state.get(k) for k in keys]
    events = await hs.events.get_events([e for e in ids if e])
    power, create = (events.get(e) if e else None for e in ids)
    existing = dict(power.content) if power is not None else {}
    content = perms.power_levels_mirror(server.owner_id, server.roles, members, existing, overwrites=overwrites)
    if head.version.infinite_creator_power and create is not None:
        # Room creators have infinite power and may not be listed (room version 12).
        room_creators = creators(head.version, create)
        content["users"] = {u: v for u, v in content["users"].items() if u not in room_creators}
    if content != existing:
        await _send_as(hs, actor or server.owner_id, server.owner_id, room_id, "m.room.power_levels", content)


async def _as_actor_or_owner(actor: str | None, owner: str, operation) -> None:
    for sender in dict.fromkeys([actor or owner, owner]):
        try:
            await operation(sender)
            return
        except MatrixError as error:
            if error.status != 403 or sender == owner:
                raise


async def sync_channel_access(hs, server: Server, actor: str | None = None) -> None:
    """Private channels (join rule invite): invite the server's members who may view one
    (and join the local ones, as the original adds them), kick those who may not.

    Failures are logged, not raised: the change that led here is already made, and the
    next change tries again.
    """
    local = ":" + hs.config.server_name
    owner = server.owner_id
    for channel in server.channels:
        if channel.kind == "category" or not channel.private:
            continue
        room_id, memberships = channel.state.room_id, channel.state.memberships
        allowed = {u for u in server.members if server.can_view(u, channel)}
        for user_id in sorted(allowed):
            membership = memberships.get(user_id)
            if membership in ("join", "ban"):
                continue
            try:
                if membership != "invite":
                    await _as_actor_or_owner(actor, owner,
                                             lambda s, u=user_id: hs.membership.invite(s, room_id, u))
                if user_id.endswith(local):
                    await hs.membership.join(user_id, room_id)
            except Exception as error:  # federation can fail in many ways
                log.warn("could not bring {user} into {room}: {error}", user=user_id, room=room_id, error=error)
        for user_id, membership in sorted(memberships.items()):
            if membership not in ("join", "invite") or user_id in allowed or user_id == owner:
                continue
            try:
                await _as_actor_or_owner(actor, owner,
                                         lambda s, u=user_id: hs.membership.kick(s, room_id, u, ACCESS_LOST))
            except Exception as error:
                log.warn("could not remove {user} from {room}: {error}", user=user_id, room=room_id, error=error)

"""Writing Drocsid servers and channels as rooms (DESIGN.md §2).

- A server is a space (create ``type: "m.space"``, join rule ``invite``: people come in
  by invitation, later by invite codes) with ``io.drocsid.role`` "" (@everyone, with
  ``DEFAULT_EVERYONE``) and power levels from ``power_levels_mirror``. Its creator is its
  owner.
- A channel is a room with ``m.space.parent`` (canonical) to the server and an
  ``m.space.child`` (``via`` and ``order``) in the server or its category; its join rule
  is ``restricted`` to the server's members, or ``invite`` for a private channel (which
  also carries an ``io.drocsid.overwrite`` denying VIEW_CHANNEL to @everyone). A voice
  channel's create ``type`` is ``io.drocsid.voice``; a category is a sub-space.
- Deleting a channel empties its ``m.space.child`` link, marks the room with state
  ``io.drocsid.deleted`` and removes everyone from it. Deleting a server does the same
  for every channel and then for the space itself: the state ``io.drocsid.deleted``
  stays as the record, and the server disappears from every list and lookup.

Permission checks are the caller's (the ``/api/v1`` handlers); the functions here
assume the actor may do what they ask. State in a channel room is sent by the actor if
they are joined to it, else by the owner (who is in every channel and holds PL 100).
"""

from __future__ import annotations

from twisted.logger import Logger

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.audit_log import ACTOR_FIELD
from homeserver.drocsid.server_state import (DELETED_EVENT, SPACE_TYPE, VOICE_TYPE, Channel, Server,
                                             format_order, load_room_state)
from homeserver.events.room_versions import room_version
from homeserver.http.errors import MatrixError

log = Logger(namespace="drocsid.servers")

CHANNEL_TYPES = ("text", "voice", "category")
MAX_OWNED_SERVERS = 20  # as the original


def _version(hs):
    return room_version(hs.config.rooms.default_version)


def _mirror(version, creator: str, owner_id: str, roles, members, overwrites=None) -> dict:
    content = perms.power_levels_mirror(owner_id, roles, members, overwrites=overwrites)
    if version.infinite_creator_power:
        # Room creators have infinite power and may not be listed (room version 12).
        content["users"] = {u: v for u, v in content["users"].items() if u != creator}
    return content


async def _send_as(hs, actor: str, owner_id: str, room_id: str, event_type: str, content: dict,
                   state_key: str = "") -> None:
    """Send state as the actor, falling back to the owner when the actor is not in the
    room or lacks the Matrix power for it (the caller checked the Drocsid permission)."""
    try:
        await hs.event_sender.send(actor, room_id, event_type, content, state_key=state_key)
        return
    except MatrixError as error:
        if error.status != 403 or actor == owner_id:
            raise
    # The owner signs; the audit log names the real actor (believed only on owner's events).
    # Empty content (a deletion) stays empty: a key would make it read as live state.
    recorded = {**content, ACTOR_FIELD: actor} if content else content
    await hs.event_sender.send(owner_id, room_id, event_type, recorded, state_key=state_key)


async def create_server(hs, owner_id: str, name: str, description: str | None = None,
                        icon_url: str | None = None) -> str:
    version = _version(hs)
    everyone = perms.Role(perms.EVERYONE, "@everyone", perms.DEFAULT_EVERYONE)
    roles = {perms.EVERYONE: everyone}
    initial_state = [
        {"type": perms.ROLE_EVENT, "state_key": perms.EVERYONE,
         "content": {"name": "@everyone", "permissions": perms.format_permissions(perms.DEFAULT_EVERYONE),
                     "position": 0, "color": 0, "hoist": False, "mentionable": False}},
        {"type": "m.room.join_rules", "content": {"join_rule": "invite"}},
        {"type": "m.room.history_visibility", "content": {"history_visibility": "shared"}},
        {"type": "m.room.guest_access", "content": {"guest_access": "forbidden"}},
    ]
    if icon_url:
        initial_state.append({"type": "m.room.avatar", "content": {"url": icon_url}})
    space_id = await hs.room_creator.create_room(
        owner_id, version=version, preset="private_chat", name=name, topic=description or None,
        initial_state=initial_state, creation_content={"type": SPACE_TYPE},
        power_level_content_override=_mirror(version, owner_id, owner_id, roles, {owner_id: ()}))
    await create_channel(hs, owner_id, space_id, owner_id, roles, {owner_id: ()}, "general", "text", position=0)
    return space_id


async def create_channel(hs, actor: str, server_id: str, owner_id: str, roles, member_roles, name: str, kind: str,
                         *, topic: str | None = None, parent_id: str | None = None, position: int = 0,
                         private: bool = False) -> str:
    """Create a channel (or category) in the server; the actor is its room's creator."""
    version = _version(hs)
    via = [hs.config.server_name]
    overwrites: dict[str, perms.Overwrite] = {}
    initial_state = [
        {"type": "m.space.parent", "state_key": server_id, "content": {"via": via, "canonical": True}},
        {"type": "m.room.history_visibility", "content": {"history_visibility": "shared"}},
        {"type": "m.room.guest_access", "content": {"guest_access": "forbidden"}},
    ]
    if private:
        initial_state.append({"type": "m.room.join_rules", "content": {"join_rule": "invite"}})
        view = int(perms.P.VIEW_CHANNEL)
        deny = {"type": "role", "allow": "0", "deny": str(view)}
        initial_state.append({"type": perms.OVERWRITE_EVENT, "state_key": perms.EVERYONE, "content": deny})
        overwrites[perms.EVERYONE] = perms.parse_overwrite(perms.EVERYONE, deny)
        if actor != owner_id:
            # The creator keeps seeing what they made.
            allow = {"type": "member", "allow": str(view), "deny": "0"}
            key = perms.member_state_key(actor)
            initial_state.append({"type": perms.OVERWRITE_EVENT, "state_key": key, "content": allow})
            overwrites[actor] = perms.parse_overwrite(key, allow)
    else:
        initial_state.append({"type": "m.room.join_rules", "content": {
            "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": server_id}]}})
    if topic:
        initial_state.append({"type": "m.room.topic", "content": {"topic": topic}})
    creation_content = {}
    if kind == "voice":
        creation_content["type"] = VOICE_TYPE
    elif kind == "category":
        creation_content["type"] = SPACE_TYPE
    members = dict(member_roles)
    members.setdefault(owner_id, ())
    members.setdefault(actor, ())
    power = _mirror(version, actor, owner_id, roles, members, overwrites)
    if not version.infinite_creator_power:
        # The actor (who holds MANAGE_CHANNELS) creates the room and invites the owner.
        power["users"] = {**power["users"], actor: max(power["users"].get(actor, 0), perms.MODERATOR_LEVEL)}
    channel_id = await hs.room_creator.create_room(
        actor, version=version, preset="private_chat", name=name, initial_state=initial_state,
        creation_content=creation_content or None, power_level_content_override=power)
    if actor != owner_id:
        # The owner is in every channel, so that the server can always be administered.
        await hs.membership.invite(actor, channel_id, owner_id)
        await hs.membership.join(owner_id, channel_id)
    link = {"via": via, "order": format_order(position)}
    await _send_as(hs, actor, owner_id, parent_id or server_id, "m.space.child", link, channel_id)
    return channel_id


async def update_server(hs, actor: str, server: Server, *, name=None, description=None, icon_url=None,
                        fields=()) -> None:
    room_id, owner = server.room_id, server.owner_id
    if "name" in fields:
        await _send_as(hs, actor, owner, room_id, "m.room.name", {"name": name})
    if "description" in fields:
        await _send_as(hs, actor, owner, room_id, "m.room.topic", {"topic": description or ""})
    if "icon_url" in fields:
        await _send_as(hs, actor, owner, room_id, "m.room.avatar", {"url": icon_url} if icon_url else {})


async def update_channel(hs, actor: str, server: Server, channel: Channel, fields: dict) -> None:
    owner = server.owner_id
    if "name" in fields:
        await _send_as(hs, actor, owner, channel.room_id, "m.room.name", {"name": fields["name"]})
    if "topic" in fields:
        await _send_as(hs, actor, owner, channel.room_id, "m.room.topic", {"topic": fields["topic"] or ""})
    old_parent = channel.parent_id or server.room_id
    new_parent = (fields.get("parent_id") or server.room_id) if "parent_id" in fields else old_parent
    position = fields.get("position", channel.position)
    if new_parent != old_parent or "position" in fields:
        link = {"via": [hs.config.server_name], "order": format_order(position)}
        await _send_as(hs, actor, owner, new_parent, "m.space.child", link, channel.room_id)
        if new_parent != old_parent:
            await _send_as(hs, actor, owner, old_parent, "m.space.child", {}, channel.room_id)


async def _empty_room(hs, actor: str, owner_id: str, room_id: str) -> None:
    """Mark a room deleted and remove everyone from it, the owner last."""
    await _send_as(hs, actor, owner_id, room_id, DELETED_EVENT, {"deleted_by": actor})
    state = await load_room_state(hs, room_id, ())
    if state is None:
        return
    for user_id, membership in sorted(state.memberships.items()):
        if user_id != owner_id and membership in ("join", "invite", "knock"):
            await hs.membership.kick(owner_id, room_id, user_id, "deleted")
    if state.memberships.get(owner_id) == "join":
        await hs.membership.leave(owner_id, room_id, "deleted")


async def delete_channel(hs, actor: str, server: Server, channel: Channel) -> None:
    owner = server.owner_id
    parent = channel.parent_id or server.room_id
    await _send_as(hs, actor, owner, parent, "m.space.child", {}, channel.room_id)
    if channel.kind == "category":
        # Its channels move to the top of the server rather than vanishing with it.
        for child in server.channels:
            if child.parent_id == channel.room_id:
                await update_channel(hs, actor, server, child, {"parent_id": None})
    await _empty_room(hs, actor, owner, channel.room_id)


async def delete_server(hs, actor: str, server: Server) -> None:
    for channel in server.channels:
        try:
            await _empty_room(hs, actor, server.owner_id, channel.room_id)
        except MatrixError as error:
            # A channel the owner can no longer act in (they left it): the server goes anyway.
            log.warn("could not empty channel {room_id} of a deleted server: {error}", room_id=channel.room_id,
                     error=error)
    await _empty_room(hs, actor, server.owner_id, server.room_id)


async def join_channel(hs, user_id: str, server: Server, channel: Channel) -> bool:
    """Join the user to a channel they may view; False when there is no way in.

    A restricted channel is joined as a Matrix client would join it: the membership
    handler names a joined local user who may invite (``join_authorised_via_users_server``).
    Private channels are entered by invitation only.
    """
    if channel.kind == "category" or not server.can_view(user_id, channel):
        return False
    membership = channel.state.memberships.get(user_id)
    if membership == "join":
        return True
    if membership == "invite" or (membership != "ban" and channel.state.join_rule == "restricted"):
        await hs.membership.join(user_id, channel.room_id)
        return True
    return False


async def join_channels(hs, user_id: str, server: Server) -> list[str]:
    """Join the user to every channel of the server they may view and can enter."""
    joined = []
    for channel in server.channels:
        if channel.state.memberships.get(user_id) != "join" and await join_channel(hs, user_id, server, channel):
            joined.append(channel.room_id)
    return joined

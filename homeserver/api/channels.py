"""Channels of a server: rooms in its space's hierarchy (DESIGN.md §2).

Listing shows only the channels the user may VIEW; creating, editing and deleting need
MANAGE_CHANNELS in the server (editing and deleting: also in the channel). Joining a
channel (``POST /channels/{id}/join``) needs VIEW_CHANNEL: a restricted join is
authorised by the server's owner, as a Matrix client's join through the space would be.
"""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.servers import member_server, require
from homeserver.drocsid import permissions as perms
from homeserver.drocsid import servers as writer
from homeserver.drocsid.server_state import Server, load_server, server_of_channel
from homeserver.http.errors import forbidden, invalid_param, not_found

CREATE_BODY = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "type": {"type": "string", "enum": list(writer.CHANNEL_TYPES), "description": "Default text"},
        "channel_type": {"type": "string", "enum": list(writer.CHANNEL_TYPES),
                         "description": "The original's name for 'type'"},
        "topic": {"type": ["string", "null"], "maxLength": 1024},
        "parent_id": {"type": ["string", "null"], "description": "A category of this server"},
        "position": {"type": "integer"},
        "private": {"type": "boolean", "description": "Only those given VIEW_CHANNEL see it (join rule invite)"},
    },
}

PATCH_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "topic": {"type": ["string", "null"], "maxLength": 1024},
        "position": {"type": "integer"},
        "parent_id": {"type": ["string", "null"], "description": "A category of this server; null: none"},
    },
}

_MAX_POSITION = 999_999

REORDER_BODY = {
    "type": "object",
    "required": ["channels"],
    "properties": {
        "channels": {"type": "array", "minItems": 1, "maxItems": 500, "items": {
            "type": "object", "required": ["id", "position"],
            "properties": {"id": {"type": "string"}, "position": {"type": "integer"},
                           "parent_id": {"type": ["string", "null"],
                                         "description": "Move into this category (null: out of any)"}}}},
    },
}


def _check_position(body: dict) -> None:
    position = body.get("position")
    if position is not None and not 0 <= position <= _MAX_POSITION:
        raise invalid_param(f"'position' must be between 0 and {_MAX_POSITION}")


def _check_parent(server: Server, parent_id, kind: str | None = None) -> None:
    if parent_id is None:
        return
    if kind == "category":
        raise invalid_param("A category cannot sit in a category")
    parent = server.channel(parent_id)
    if parent is None or parent.kind != "category":
        raise invalid_param("'parent_id' must be a category of this server")


async def channel_for(hs, channel_id: str, user_id: str):
    """(server, channel) for a member who may view the channel. Outside the server the
    channel is unknown (404); a member without VIEW_CHANNEL is refused (403), as Discord
    answers "Missing Access": members know the server's channels exist."""
    found = await server_of_channel(hs, channel_id) if channel_id.startswith("!") else None
    if found is None:
        raise not_found("Unknown channel")
    server, channel = found
    if not server.is_member(user_id):
        raise not_found("Unknown channel")
    if not server.can_view(user_id, channel):
        raise forbidden("Missing permission VIEW_CHANNEL")
    return server, channel


def register(api: ApiRoutes, hs) -> None:
    channel_ref = {"$ref": "#/components/schemas/Channel"}

    async def list_channels(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        return 200, [c.to_json() for c in server.visible_channels(user_id)]

    async def create(call: ApiCall):
        user_id = call.requester.user_id
        body = call.body
        server = await member_server(hs, call.params["server_id"], user_id)
        require(server.permissions(user_id), perms.P.MANAGE_CHANNELS, "MANAGE_CHANNELS")
        kind = body.get("type") or body.get("channel_type") or "text"
        _check_position(body)
        _check_parent(server, body.get("parent_id"), kind)
        if body.get("private") and kind == "category":
            raise invalid_param("A category cannot be private")
        position = body.get("position")
        if position is None:
            siblings = [c.position for c in server.channels if c.parent_id == body.get("parent_id")]
            position = min(max(siblings, default=-1) + 1, _MAX_POSITION)
        channel_id = await writer.create_channel(
            hs, user_id, server.room_id, server.owner_id, server.roles, server.member_roles, body["name"], kind,
            topic=body.get("topic"), parent_id=body.get("parent_id"), position=position,
            private=bool(body.get("private")))
        server = await load_server(hs, server.room_id)
        return 200, server.channel(channel_id).to_json()

    async def reorder(call: ApiCall):
        """Several channels' positions (and categories) at once, as a drag in a client does.
        Everything is checked before the first write."""
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        moves = []
        for entry in call.body["channels"]:
            channel = server.channel(entry["id"])
            if channel is None or not server.can_view(user_id, channel):
                raise not_found(f"Unknown channel {entry['id']}")
            require(server.channel_permissions(user_id, channel), perms.P.MANAGE_CHANNELS, "MANAGE_CHANNELS")
            _check_position(entry)
            if "parent_id" in entry:
                _check_parent(server, entry["parent_id"], channel.kind)
            moves.append((channel, {k: entry[k] for k in ("position", "parent_id") if k in entry}))
        if len({c.room_id for c, _ in moves}) != len(moves):
            raise invalid_param("Each channel may appear once")
        for channel, fields in moves:
            await writer.update_channel(hs, user_id, server, channel, fields)
        server = await load_server(hs, server.room_id)
        return 200, [c.to_json() for c in server.visible_channels(user_id)]

    async def get(call: ApiCall):
        _server, channel = await channel_for(hs, call.params["channel_id"], call.requester.user_id)
        return 200, channel.to_json()

    async def patch(call: ApiCall):
        user_id = call.requester.user_id
        server, channel = await channel_for(hs, call.params["channel_id"], user_id)
        require(server.channel_permissions(user_id, channel), perms.P.MANAGE_CHANNELS, "MANAGE_CHANNELS")
        _check_position(call.body)
        if "parent_id" in call.body:
            _check_parent(server, call.body["parent_id"], channel.kind)
        if "position" in call.body and call.body["position"] is None:
            raise invalid_param("'position' must be an integer")
        await writer.update_channel(hs, user_id, server, channel, dict(call.body))
        server = await load_server(hs, server.room_id)
        return 200, server.channel(channel.room_id).to_json()

    async def delete(call: ApiCall):
        user_id = call.requester.user_id
        server, channel = await channel_for(hs, call.params["channel_id"], user_id)
        require(server.channel_permissions(user_id, channel), perms.P.MANAGE_CHANNELS, "MANAGE_CHANNELS")
        await writer.delete_channel(hs, user_id, server, channel)
        return 200, {}

    async def join(call: ApiCall):
        user_id = call.requester.user_id
        server, channel = await channel_for(hs, call.params["channel_id"], user_id)
        if channel.kind == "category":
            raise invalid_param("A category is not joined")
        if not await writer.join_channel(hs, user_id, server, channel):
            raise forbidden("You cannot join this channel")
        return 200, {"channel_id": channel.room_id}

    api.add("GET", "/servers/{server_id}/channels", list_channels, tag="channels",
            summary="The server's channels the user may view", response={"type": "array", "items": channel_ref},
            description="403 M_FORBIDDEN for non-members; 404 M_NOT_FOUND for unknown servers.")
    api.add("POST", "/servers/{server_id}/channels", create, tag="channels",
            summary="Create a text or voice channel, or a category", request=CREATE_BODY, response=channel_ref,
            description="Needs MANAGE_CHANNELS. A private channel has join rule invite and an overwrite "
                        "denying VIEW_CHANNEL to @everyone; its creator keeps access.")
    api.add("PATCH", "/servers/{server_id}/channels", reorder, tag="channels",
            summary="Reorder channels (and move them between categories) at once", request=REORDER_BODY,
            response={"type": "array", "items": channel_ref},
            description="Needs MANAGE_CHANNELS in every channel named; nothing changes unless all entries are "
                        "valid. Answers the channels the user may view, in their new order.")
    api.add("GET", "/channels/{channel_id}", get, tag="channels", summary="A channel the user may view",
            response=channel_ref)
    api.add("PATCH", "/channels/{channel_id}", patch, tag="channels",
            summary="Edit a channel's name, topic, position or category", request=PATCH_BODY,
            response=channel_ref, description="Needs MANAGE_CHANNELS.")
    api.add("DELETE", "/channels/{channel_id}", delete, tag="channels", summary="Delete a channel",
            response={"type": "object"},
            description="Needs MANAGE_CHANNELS. Empties its m.space.child link, marks the room with state "
                        "io.drocsid.deleted and removes everyone from it.")
    api.add("POST", "/channels/{channel_id}/join", join, tag="channels", summary="Join a channel one may view",
            response={"type": "object"},
            description="Restricted channels are joined with the owner as the authorising user.")

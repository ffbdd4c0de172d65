"""``/servers``: Drocsid servers, which are Matrix spaces (DESIGN.md §2).

Who may do what is computed from the space's state (``homeserver.drocsid``): reading a
server needs membership of its space, editing it MANAGE_SERVER, deleting it being its
owner (its creator). A deleted server keeps its space with the state
``io.drocsid.deleted`` as a record; everyone is removed from the space and its
channels, and it is gone from every list and lookup (404).
"""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.uploads import MAX_IMAGE_BYTES, image_type, request_bytes
from homeserver.drocsid import permissions as perms
from homeserver.drocsid import servers as writer
from homeserver.drocsid.server_state import Server, load_server, user_servers
from homeserver.http.errors import forbidden, invalid_param, not_found

CHANNEL_SCHEMA = {
    "type": "object",
    "required": ["id", "server_id", "name", "type", "topic", "position", "parent_id"],
    "properties": {
        "id": {"type": "string", "description": "The channel's Matrix room ID", "examples": ["!abc:example.org"]},
        "server_id": {"type": "string", "description": "The server's space room ID"},
        "name": {"type": "string"},
        "type": {"type": "string", "enum": ["text", "voice", "category"]},
        "topic": {"type": ["string", "null"]},
        "position": {"type": "integer", "description": "From the m.space.child 'order'"},
        "parent_id": {"type": ["string", "null"], "description": "The category it sits in"},
        "private": {"type": "boolean", "description": "Join rule invite; @everyone cannot view it"},
    },
}

SERVER_SCHEMA = {
    "type": "object",
    "required": ["id", "name", "description", "icon_url", "owner_id", "created_at"],
    "properties": {
        "id": {"type": "string", "description": "The server's space room ID", "examples": ["!abc:example.org"]},
        "name": {"type": "string"},
        "description": {"type": ["string", "null"], "description": "The space's m.room.topic"},
        "icon_url": {"type": ["string", "null"], "description": "The space's m.room.avatar (an mxc:// URI)"},
        "owner_id": {"type": "string", "description": "The space's creator"},
        "created_at": {"type": "string", "format": "date-time"},
        "channels": {"type": "array", "items": {"$ref": "#/components/schemas/Channel"},
                     "description": "The channels the user may view"},
    },
}

CREATE_BODY = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "description": {"type": ["string", "null"], "maxLength": 1024},
        "icon_url": {"type": ["string", "null"], "maxLength": 1024, "description": "An mxc:// URI"},
    },
}

PATCH_BODY = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "description": {"type": ["string", "null"], "maxLength": 1024},
        "icon_url": {"type": ["string", "null"], "maxLength": 1024, "description": "An mxc:// URI; null removes it"},
    },
}


def check_icon(body: dict) -> None:
    icon = body.get("icon_url")
    if icon is not None and not icon.startswith("mxc://"):
        raise invalid_param("'icon_url' must be an mxc:// URI")


async def member_server(hs, server_id: str, user_id: str) -> Server:
    """The server, for one of its members: 404 if there is none, 403 if not a member."""
    if not server_id.startswith("!"):
        raise not_found("Unknown server")
    server = await load_server(hs, server_id)
    if server is None:
        raise not_found("Unknown server")
    if not server.is_member(user_id):
        raise forbidden("You are not a member of this server")
    return server


def require(bits: int, permission: int, name: str) -> None:
    if not perms.has_permissions(bits, permission):
        raise forbidden(f"Missing permission {name}")


PERMISSIONS_SCHEMA = {
    "type": "object", "required": ["server_id", "permissions", "channels"],
    "properties": {
        "server_id": {"type": "string"},
        "permissions": {"type": "string", "description": "Server-level bits (decimal)"},
        "channels": {"type": "object", "additionalProperties": {"type": "string"},
                     "description": "Channel ID -> the bits there, after overwrites"},
    },
}


def register(api: ApiRoutes, hs) -> None:
    api.schema("Channel", CHANNEL_SCHEMA)
    server_ref = api.schema("Server", SERVER_SCHEMA)

    async def create(call: ApiCall):
        check_icon(call.body)
        user_id = call.requester.user_id
        owned = [s for s in await user_servers(hs, user_id) if s.owner_id == user_id]
        if len(owned) >= writer.MAX_OWNED_SERVERS:
            raise forbidden(f"You can own at most {writer.MAX_OWNED_SERVERS} servers")
        space_id = await writer.create_server(hs, user_id, call.body["name"], call.body.get("description"),
                                              call.body.get("icon_url"))
        server = await load_server(hs, space_id)
        return 200, server.to_json(user_id, with_channels=True)

    async def mine(call: ApiCall):
        return 200, [s.to_json() for s in await user_servers(hs, call.requester.user_id)]

    async def get(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        return 200, server.to_json(user_id, with_channels=True)

    async def my_permissions(call: ApiCall):
        # What the caller may do, so a client can offer only what will be allowed; the
        # server still checks every request.
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        channels = {c.room_id: str(server.channel_permissions(user_id, c)) for c in server.visible_channels(user_id)}
        return 200, {"server_id": server.room_id, "permissions": str(server.permissions(user_id)),
                     "channels": channels}

    async def patch(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        require(server.permissions(user_id), perms.P.MANAGE_SERVER, "MANAGE_SERVER")
        check_icon(call.body)
        fields = [f for f in ("name", "description", "icon_url") if f in call.body]
        await writer.update_server(hs, user_id, server, name=call.body.get("name"),
                                   description=call.body.get("description"), icon_url=call.body.get("icon_url"),
                                   fields=fields)
        server = await load_server(hs, server.room_id)
        return 200, server.to_json(user_id, with_channels=True)

    async def upload_icon(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        require(server.permissions(user_id), perms.P.MANAGE_SERVER, "MANAGE_SERVER")
        data = request_bytes(call)
        content_type = image_type(data, MAX_IMAGE_BYTES)
        uri = await hs.media_repository.upload(user_id, data, content_type, "icon")
        await writer.update_server(hs, user_id, server, icon_url=uri, fields=["icon_url"])
        server = await load_server(hs, server.room_id)
        return 200, server.to_json(user_id, with_channels=True)

    async def delete(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        if server.owner_id != user_id:
            raise forbidden("Only the owner can delete a server")
        await writer.delete_server(hs, user_id, server)
        return 200, {}

    api.add("POST", "/servers", create, tag="servers", summary="Create a server (a space) with #general",
            request=CREATE_BODY, response=server_ref,
            description="The caller becomes the owner. 400 M_INVALID_PARAM for a bad name or icon; "
                        "403 M_FORBIDDEN when the caller already owns 20 servers.")
    api.add("GET", "/users/@me/servers", mine, tag="servers", summary="The servers the user is a member of",
            response={"type": "array", "items": server_ref})
    api.add("GET", "/servers/{server_id}", get, tag="servers", summary="A server, with the channels the user may view",
            response=server_ref, description="403 M_FORBIDDEN for non-members; 404 M_NOT_FOUND for unknown servers.")
    api.add("GET", "/servers/{server_id}/permissions/@me", my_permissions, tag="servers",
            summary="The caller's permission bits in the server and in each channel they may view",
            response=PERMISSIONS_SCHEMA,
            description="Decimal strings, as role permissions are. For clients to offer only what is allowed; "
                        "every request is still checked.")
    api.add("PATCH", "/servers/{server_id}", patch, tag="servers", summary="Edit a server's name, description, icon",
            request=PATCH_BODY, response=server_ref, description="Needs MANAGE_SERVER.")
    api.add("POST", "/servers/{server_id}/icon", upload_icon, tag="servers", summary="Upload a server's icon",
            response=server_ref, rate_limited=True,
            description="Needs MANAGE_SERVER. The body is the image itself (PNG, JPEG, GIF or WebP, at most "
                        "5 MiB); stored in the media repository and set as the space's m.room.avatar. 400 "
                        "M_INVALID_PARAM for anything that is not such an image.")
    api.add("DELETE", "/servers/{server_id}", delete, tag="servers", summary="Delete a server (owner only)",
            response={"type": "object"},
            description="Marks the space and its channels with state io.drocsid.deleted and removes every "
                        "member; the server then answers 404 and leaves every list.")

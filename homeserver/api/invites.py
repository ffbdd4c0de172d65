"""/api/v1 invite codes: made per server, previewed without an account, redeemed to
join (``homeserver.drocsid.invites``).

A code of another instance is named with ``?server=<its server name>`` or written
``code@servername``; this homeserver then asks that instance over federation
(``federation.invite_codes``) and joins the user there.
"""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.servers import member_server, require
from homeserver.drocsid import invites
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.server_state import load_server
from homeserver.events.received import is_valid_server_name
from homeserver.http.errors import forbidden, invalid_param, not_found
from homeserver.http.request import query_str

INVITE_SCHEMA = {
    "type": "object",
    "required": ["code", "server_id", "creator_id", "max_uses", "uses", "expires_at", "created_at"],
    "properties": {
        "code": {"type": "string", "description": "12 characters without 0, O, 1, I or l"},
        "server_id": {"type": "string"},
        "creator_id": {"type": "string"},
        "max_uses": {"type": "integer", "description": "0: unlimited"},
        "uses": {"type": "integer"},
        "expires_at": {"type": ["string", "null"], "format": "date-time", "description": "null: never"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

PREVIEW_SCHEMA = {
    "type": "object",
    "required": ["code", "server", "expires_at"],
    "properties": {
        "code": {"type": "string"},
        "server": {"type": "object", "required": ["id", "name", "icon_url", "description", "member_count"],
                   "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                  "icon_url": {"type": ["string", "null"]},
                                  "description": {"type": ["string", "null"]},
                                  "member_count": {"type": "integer"}}},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "instance": {"type": "string", "description": "The other instance, for its codes"},
    },
}

CREATE_BODY = {
    "type": "object",
    "properties": {
        "max_uses": {"type": ["integer", "null"], "description": "0 or null: unlimited"},
        "max_age_secs": {"type": ["integer", "null"], "description": "0, negative or null: never expires"},
    },
}


def code_and_instance(call: ApiCall) -> tuple[str, str | None]:
    """The code and the instance it belongs to (None: this one), from ``?server=`` or
    the ``code@servername`` form."""
    code = call.params["code"]
    instance = query_str(call.request, "server")
    if "@" in code:
        code, _, named = code.partition("@")
        if instance is not None and instance != named:
            raise invalid_param("The code names a different server than ?server=")
        instance = named
    if instance is not None and not is_valid_server_name(instance):
        raise invalid_param("'server' must be a server name")
    return code, instance


def register(api: ApiRoutes, hs) -> None:
    invite_ref = api.schema("Invite", INVITE_SCHEMA)
    preview_ref = api.schema("InvitePreview", PREVIEW_SCHEMA)
    if getattr(hs, "federation_route_modules", None) is not None:
        from federation import invite_codes as federation_invite_codes
        federation_invite_codes.attach(hs)

    async def create(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        require(server.permissions(user_id), perms.P.CREATE_INSTANT_INVITE, "CREATE_INSTANT_INVITE")
        max_uses, max_age = call.body.get("max_uses"), call.body.get("max_age_secs")
        if max_uses is not None and not 0 <= max_uses <= invites.MAX_USES:
            raise invalid_param(f"'max_uses' must be between 0 and {invites.MAX_USES}")
        if max_age is not None and max_age > invites.MAX_AGE_SECS:
            raise invalid_param(f"'max_age_secs' must be at most {invites.MAX_AGE_SECS}")
        invite = await invites.create_invite(hs, server, user_id, max_uses, max_age)
        return 200, invites.invite_json(invite)

    async def listed(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        require(server.permissions(user_id), perms.P.MANAGE_SERVER, "MANAGE_SERVER")
        return 200, [invites.invite_json(i) for i in await hs.invite_codes.for_server(server.room_id)]

    async def delete(call: ApiCall):
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        invite = await hs.invite_codes.get(call.params["code"])
        if invite is None or invite.server_id != server.room_id:
            raise not_found("Unknown invite code")
        if invite.creator_id != user_id and not perms.has_permissions(server.permissions(user_id),
                                                                       perms.P.MANAGE_SERVER):
            raise forbidden("Missing permission MANAGE_SERVER")
        await hs.invite_codes.delete(invite.code)
        return 200, {}

    async def preview(call: ApiCall):
        code, instance = code_and_instance(call)
        return 200, await invites.preview(hs, code, instance)

    async def redeem(call: ApiCall):
        user_id = call.requester.user_id
        code, instance = code_and_instance(call)
        server = await invites.admit(hs, code, user_id, instance)
        server = await load_server(hs, server.room_id) or server
        return 200, server.to_json(user_id, with_channels=True)

    api.add("POST", "/servers/{server_id}/invites", create, tag="invites", summary="Create an invite code",
            request=CREATE_BODY, response=invite_ref,
            description="Needs CREATE_INSTANT_INVITE. 400 M_INVALID_PARAM for max_uses outside 0..1000000 "
                        "or max_age_secs over ten years.")
    api.add("GET", "/servers/{server_id}/invites", listed, tag="invites", summary="The server's invite codes",
            response={"type": "array", "items": invite_ref}, description="Needs MANAGE_SERVER.")
    api.add("DELETE", "/servers/{server_id}/invites/{code}", delete, tag="invites",
            summary="Delete an invite code", response={"type": "object"},
            description="Needs MANAGE_SERVER, or being the code's creator. 404 M_NOT_FOUND for an unknown code.")
    api.add("GET", "/invites/{code}", preview, tag="invites", auth=False, response=preview_ref,
            summary="What an invite code leads to (no account needed)",
            description="404 M_NOT_FOUND when the code is unknown, expired or used up. A code of another "
                        "instance: ?server=<server name> or code@servername; the answer then has 'instance'.")
    api.add("POST", "/invites/{code}", redeem, tag="invites", summary="Join the server of an invite code",
            response={"$ref": "#/components/schemas/Server"},
            description="Answers the server with the channels the user may view. 404 M_NOT_FOUND when the "
                        "code is unknown, expired or used up; 403 M_FORBIDDEN for users banned from the "
                        "server. A member redeeming again gets the server and no use is counted. A code of "
                        "another instance: ?server=<server name> or code@servername.")

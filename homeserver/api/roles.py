"""Roles, members and channel overwrites (DESIGN.md §2; the rules and the writes are in
``homeserver.drocsid.roles``).

Reading roles and members needs membership of the server; creating, editing, moving,
deleting and assigning roles need MANAGE_ROLES and the role hierarchy; overwrites need
MANAGE_ROLES in the channel. @everyone's role ID is ``""``; in a path it is written
``@everyone``. In a member path, ``@me`` is the caller.
"""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.servers import member_server
from homeserver.drocsid import roles as use
from homeserver.http.errors import invalid_param, not_found
from homeserver.http.request import query_int, query_str

BITS = {"type": ["string", "integer"], "description": "A bitfield: a decimal string (or an integer)",
        "examples": ["1024"]}

ROLE_SCHEMA = {
    "type": "object",
    "required": ["id", "server_id", "name", "color", "hoist", "position", "permissions", "mentionable"],
    "properties": {
        "id": {"type": "string", "description": "The role ID; \"\" for @everyone"},
        "server_id": {"type": "string"},
        "name": {"type": "string"},
        "color": {"type": "integer", "description": "0xRRGGBB"},
        "hoist": {"type": "boolean"},
        "position": {"type": "integer", "description": "0 for @everyone; the others 1..n from the bottom"},
        "permissions": {"type": "string", "description": "A bitfield as a decimal string"},
        "mentionable": {"type": "boolean"},
    },
}

MEMBER_SCHEMA = {
    "type": "object",
    "required": ["server_id", "user_id", "nickname", "joined_at", "role_ids", "user"],
    "properties": {
        "server_id": {"type": "string"},
        "user_id": {"type": "string"},
        "nickname": {"type": ["string", "null"]},
        "joined_at": {"type": ["string", "null"], "format": "date-time",
                      "description": "The time of their current membership event in the space"},
        "role_ids": {"type": "array", "items": {"type": "string"}, "description": "Highest first; no @everyone"},
        "user": {"type": "object", "properties": {"id": {"type": "string"},
                                                  "display_name": {"type": ["string", "null"]}}},
        "status": {"type": "string", "enum": ["online", "idle", "dnd", "offline"],
                   "description": "Presence, as PRESENCE_UPDATE gives it (invisible is offline)"},
        "custom_status": {"type": ["string", "null"]},
        "webhook": {"type": "boolean", "description": "A webhook's virtual user (in the space so it can post)"},
    },
}

OVERWRITE_SCHEMA = {
    "type": "object",
    "required": ["channel_id", "target_type", "target_id", "allow", "deny"],
    "properties": {
        "channel_id": {"type": "string"},
        "target_type": {"type": "string", "enum": list(use.OVERWRITE_TYPES)},
        "target_id": {"type": "string", "description": "A role ID (\"\" for @everyone) or a user ID"},
        "allow": {"type": "string"},
        "deny": {"type": "string"},
    },
}

_ROLE_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 100},
    "color": {"type": ["integer", "null"], "description": "0xRRGGBB, 0 for none"},
    "hoist": {"type": "boolean"},
    "permissions": BITS,
    "mentionable": {"type": "boolean"},
    "position": {"type": "integer", "description": "1 is the lowest; the role ends here, the others keeping their order"},
}
ROLE_CREATE_BODY = {"type": "object", "required": ["name"], "properties": _ROLE_FIELDS}
ROLE_PATCH_BODY = {"type": "object", "properties": _ROLE_FIELDS}

MEMBER_PATCH_BODY = {
    "type": "object",
    "properties": {
        "nickname": {"type": ["string", "null"], "maxLength": use.MAX_NICKNAME, "description": "null or \"\" clears"},
        "role_ids": {"type": "array", "items": {"type": "string"}, "description": "Replaces the member's roles"},
    },
}

OVERWRITE_BODY = {"type": "object", "properties": {"allow": BITS, "deny": BITS}}

_MAX_MEMBERS_PAGE = 1000


def _user(call: ApiCall) -> str:
    user_id = call.params["user_id"]
    return call.requester.user_id if user_id == "@me" else user_id


def register(api: ApiRoutes, hs) -> None:
    role_ref = api.schema("Role", ROLE_SCHEMA)
    member_ref = api.schema("Member", MEMBER_SCHEMA)
    overwrite_ref = api.schema("Overwrite", OVERWRITE_SCHEMA)
    empty = {"type": "object"}

    async def list_roles(call: ApiCall):
        server = await member_server(hs, call.params["server_id"], call.requester.user_id)
        return 200, [use.role_json(server.room_id, r) for r in use.sorted_roles(server)]

    async def create_role(call: ApiCall):
        return 200, await use.create_role(hs, call.requester.user_id, call.params["server_id"], call.body)

    async def get_role(call: ApiCall):
        server = await member_server(hs, call.params["server_id"], call.requester.user_id)
        role = server.roles.get(use.role_id_from_path(call.params["role_id"]))
        if role is None:
            raise not_found("Unknown role")
        return 200, use.role_json(server.room_id, role)

    async def patch_role(call: ApiCall):
        return 200, await use.update_role(hs, call.requester.user_id, call.params["server_id"],
                                          use.role_id_from_path(call.params["role_id"]), call.body)

    async def delete_role(call: ApiCall):
        await use.delete_role(hs, call.requester.user_id, call.params["server_id"],
                              use.role_id_from_path(call.params["role_id"]))
        return 200, {}

    async def list_members(call: ApiCall):
        server = await member_server(hs, call.params["server_id"], call.requester.user_id)
        limit = min(query_int(call.request, "limit", _MAX_MEMBERS_PAGE, minimum=1), _MAX_MEMBERS_PAGE)
        after = query_str(call.request, "after")
        members = [u for u in server.members if after is None or u > after][:limit]
        return 200, await use.members_json(hs, server, members)

    async def get_member(call: ApiCall):
        server = await member_server(hs, call.params["server_id"], call.requester.user_id)
        user_id = _user(call)
        if not server.is_member(user_id):
            raise not_found("Unknown member")
        [member] = await use.members_json(hs, server, [user_id])
        return 200, member

    async def patch_member(call: ApiCall):
        body = call.body
        fields = {}
        if "nickname" in body:
            nickname = body["nickname"]
            if nickname is not None and nickname != "" and not nickname.strip():
                raise invalid_param("'nickname' must not be blank")
            fields["nickname"] = nickname
        if "role_ids" in body:
            fields["role_ids"] = body["role_ids"]
        return 200, await use.update_member(hs, call.requester.user_id, call.params["server_id"], _user(call),
                                            **fields)

    async def add_member_role(call: ApiCall):
        return 200, await use.update_member(hs, call.requester.user_id, call.params["server_id"], _user(call),
                                            add=[use.role_id_from_path(call.params["role_id"])])

    async def remove_member_role(call: ApiCall):
        return 200, await use.update_member(hs, call.requester.user_id, call.params["server_id"], _user(call),
                                            remove=[use.role_id_from_path(call.params["role_id"])])

    async def list_overwrites(call: ApiCall):
        return 200, await use.list_overwrites(hs, call.requester.user_id, call.params["channel_id"])

    async def put_overwrite(call: ApiCall):
        p = call.params
        return 200, await use.set_overwrite(hs, call.requester.user_id, p["channel_id"], p["target_type"],
                                            p["target_id"], call.body.get("allow", 0), call.body.get("deny", 0))

    async def delete_overwrite(call: ApiCall):
        p = call.params
        await use.delete_overwrite(hs, call.requester.user_id, p["channel_id"], p["target_type"], p["target_id"])
        return 200, {}

    roles = "/servers/{server_id}/roles"
    role = roles + "/{role_id}"
    hierarchy = (" Hierarchy: the role (before and after) must be below the caller's highest role, and "
                 "every permission added must be one the caller has (ADMINISTRATOR only from an "
                 "administrator); the owner is exempt. 403 M_FORBIDDEN otherwise.")
    api.add("GET", roles, list_roles, tag="roles", summary="The server's roles, @everyone first, then bottom up",
            response={"type": "array", "items": role_ref}, description="Members only.")
    api.add("POST", roles, create_role, tag="roles", summary="Create a role", request=ROLE_CREATE_BODY,
            response=role_ref,
            description="Needs MANAGE_ROLES. Without 'position' the role goes directly below the caller's "
                        "highest role (the owner's: on top). 400 M_INVALID_PARAM for bad permission bits. "
                        f"At most {use.MAX_ROLES} roles." + hierarchy)
    api.add("GET", role, get_role, tag="roles", summary="One role ('@everyone' for @everyone)",
            response=role_ref, description="Members only. 404 M_NOT_FOUND for an unknown role.")
    api.add("PATCH", role, patch_role, tag="roles", summary="Edit or move a role", request=ROLE_PATCH_BODY,
            response=role_ref,
            description="Needs MANAGE_ROLES. @everyone's permissions can be edited; it cannot be renamed or "
                        "moved (400)." + hierarchy)
    api.add("DELETE", role, delete_role, tag="roles", summary="Delete a role", response=empty,
            description="Needs MANAGE_ROLES; @everyone cannot be deleted (400). The role is also taken off "
                        "its members and out of channel overwrites." + hierarchy)

    members = "/servers/{server_id}/members"
    member = members + "/{user_id}"
    api.add("GET", members, list_members, tag="members", summary="The server's members, by user ID",
            response={"type": "array", "items": member_ref},
            description=f"Members only. Query: limit (default and max {_MAX_MEMBERS_PAGE}), after (a user ID).")
    api.add("GET", member, get_member, tag="members", summary="One member ('@me' for oneself)",
            response=member_ref, description="404 M_NOT_FOUND for someone not in the server.")
    api.add("PATCH", member, patch_member, tag="members", summary="Change a member's nickname or roles",
            request=MEMBER_PATCH_BODY, response=member_ref,
            description="One's own nickname needs CHANGE_NICKNAME; another's MANAGE_NICKNAMES and a higher "
                        "rank (never the owner's). 'role_ids' replaces the roles: MANAGE_ROLES, and each role "
                        "given or taken below the caller's highest, carrying no bit the caller lacks.")
    api.add("PUT", member + "/roles/{role_id}", add_member_role, tag="members", summary="Give a member a role",
            response=member_ref, description="As PATCH role_ids. 404 M_NOT_FOUND for an unknown role.")
    api.add("DELETE", member + "/roles/{role_id}", remove_member_role, tag="members",
            summary="Take a role from a member", response=member_ref,
            description="As PATCH role_ids. 404 M_NOT_FOUND for an unknown role.")

    overwrites = "/channels/{channel_id}/overwrites"
    overwrite = overwrites + "/{target_type}/{target_id}"
    api.add("GET", overwrites, list_overwrites, tag="overwrites", summary="The channel's permission overwrites",
            response={"type": "array", "items": overwrite_ref}, description="Needs MANAGE_ROLES in the channel.")
    api.add("PUT", overwrite, put_overwrite, tag="overwrites",
            summary="Set the overwrite of a role ('@everyone' too) or a member", request=OVERWRITE_BODY,
            response=overwrite_ref,
            description="target_type role or member (else 400). Needs MANAGE_ROLES in the channel; every bit "
                        "changed (allow or deny) must be one the caller has there; ADMINISTRATOR is refused "
                        "(400); roles must be below the caller's highest, members below the caller. A private "
                        "channel then admits those who may view it and removes those who may not.")
    api.add("DELETE", overwrite, delete_overwrite, tag="overwrites", summary="Remove an overwrite",
            response=empty, description="As PUT. 404 M_NOT_FOUND when there is none.")


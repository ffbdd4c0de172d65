"""Bans, kicks, leaving a server, and its audit log (DESIGN.md §2 "ban, kick", "audit log").

Banning needs BAN_MEMBERS and kicking KICK_MEMBERS, and both the role hierarchy
(``permissions.can_moderate``): nobody moderates the owner, themselves, or a member whose
highest role is at or above their own. Unlike the original, a ban is enforced: it is a
Matrix ban in the space and every channel, so joins and invite codes fail.
"""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.servers import member_server, require
from homeserver.drocsid import audit_log
from homeserver.drocsid import moderation
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.server_state import Server
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.http.request import query_int, query_str

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

REASON_BODY = {
    "type": "object",
    "properties": {"reason": {"type": ["string", "null"], "maxLength": 512}},
}

BAN_SCHEMA = {
    "type": "object",
    "required": ["user_id", "reason", "banned_by", "created_at"],
    "properties": {
        "user_id": {"type": "string"},
        "reason": {"type": ["string", "null"]},
        "banned_by": {"type": "string", "description": "Who banned them"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}

AUDIT_ENTRY_SCHEMA = {
    "type": "object",
    "required": ["id", "action", "user_id", "target_id", "reason", "changes", "channel_id", "created_at"],
    "properties": {
        "id": {"type": "string", "description": "The ID of the event that records it"},
        "action": {"type": "string", "enum": list(audit_log.ACTIONS)},
        "user_id": {"type": "string", "description": "Who did it"},
        "target_id": {"type": ["string", "null"],
                      "description": "A user (members, message_delete), role, channel, or message (pins)"},
        "reason": {"type": ["string", "null"]},
        "changes": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "old": {}, "new": {}}}},
        "channel_id": {"type": ["string", "null"], "description": "The channel it happened in; null: the server"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}


def _check_user_id(user_id: str) -> None:
    if not user_id.startswith("@") or ":" not in user_id:
        raise invalid_param("Expected a user ID")


def _may_moderate(server: Server, actor: str, target: str, permission: int, name: str) -> None:
    require(server.permissions(actor), permission, name)
    member_roles = server.member_roles
    if not perms.can_moderate(server.owner_id, server.roles, member_roles.get(actor, ()), actor,
                              member_roles.get(target, ()), target, permission):
        if target == actor:
            raise forbidden("You cannot do that to yourself")
        if target == server.owner_id:
            raise forbidden("The owner cannot be moderated")
        raise forbidden("Their highest role is not below yours")


async def _cursor(hs, value: str | None, name: str) -> tuple[int | None, int | None]:
    """(stream, ms) bound from a ``before``/``after`` query value: an entry ID or a time."""
    if value is None:
        return None, None
    if value.startswith("$"):
        stream = await hs.events.stream_ordering_of(value)
        if stream is None:
            raise invalid_param(f"'{name}' names no entry")
        return stream, None
    if value.isdigit() and len(value) <= 15:
        return None, int(value)
    raise invalid_param(f"'{name}' must be an entry ID or a time in milliseconds")


def register(api: ApiRoutes, hs) -> None:
    ban_ref = api.schema("Ban", BAN_SCHEMA)
    entry_ref = api.schema("AuditLogEntry", AUDIT_ENTRY_SCHEMA)

    async def put_ban(call: ApiCall):
        actor, target = call.requester.user_id, call.params["user_id"]
        _check_user_id(target)
        server = await member_server(hs, call.params["server_id"], actor)
        _may_moderate(server, actor, target, perms.P.BAN_MEMBERS, "BAN_MEMBERS")
        await moderation.ban(hs, actor, server, target, call.body.get("reason"))
        return 200, {}

    async def delete_ban(call: ApiCall):
        actor, target = call.requester.user_id, call.params["user_id"]
        _check_user_id(target)
        server = await member_server(hs, call.params["server_id"], actor)
        require(server.permissions(actor), perms.P.BAN_MEMBERS, "BAN_MEMBERS")
        if server.state.memberships.get(target) != "ban":
            raise not_found("That user is not banned")
        await moderation.unban(hs, actor, server, target)
        return 200, {}

    async def list_bans(call: ApiCall):
        actor = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], actor)
        require(server.permissions(actor), perms.P.BAN_MEMBERS, "BAN_MEMBERS")
        return 200, await moderation.bans(hs, server)

    async def kick(call: ApiCall):
        actor, target = call.requester.user_id, call.params["user_id"]
        _check_user_id(target)
        server = await member_server(hs, call.params["server_id"], actor)
        _may_moderate(server, actor, target, perms.P.KICK_MEMBERS, "KICK_MEMBERS")
        if server.state.memberships.get(target) not in ("join", "invite", "knock"):
            raise not_found("That user is not a member")
        await moderation.kick(hs, actor, server, target, call.body.get("reason"))
        return 200, {}

    async def delete_member(call: ApiCall):
        if call.params["user_id"] != "@me":
            return await kick(ApiCall(call.request, call.requester, {}, call.params))
        user_id = call.requester.user_id
        server = await member_server(hs, call.params["server_id"], user_id)
        if server.owner_id == user_id:
            raise MatrixError(400, "M_BAD_STATE", "The owner cannot leave; delete the server instead")
        await moderation.leave(hs, user_id, server)
        return 200, {}

    async def audit(call: ApiCall):
        actor = call.requester.user_id
        server_id = call.params["server_id"]
        server = await member_server(hs, server_id, actor)
        require(server.permissions(actor), perms.P.VIEW_AUDIT_LOG, "VIEW_AUDIT_LOG")
        limit = min(query_int(call.request, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
        action = query_str(call.request, "action")
        if action is not None and action not in audit_log.ACTIONS:
            raise invalid_param(f"Unknown action {action!r}")
        before_stream, before_ts = await _cursor(hs, query_str(call.request, "before"), "before")
        after_stream, after_ts = await _cursor(hs, query_str(call.request, "after"), "after")
        query = audit_log.AuditQuery(action=action, user_id=query_str(call.request, "user_id"), limit=limit)
        entries = await moderation.read_audit_log(hs, server, query, before_stream=before_stream,
                                                  after_stream=after_stream, before_ts=before_ts,
                                                  after_ts=after_ts)
        return 200, [e.to_json() for e in entries]

    hierarchy = ("Not the owner, not yourself, and only a member whose highest role is below yours "
                 "(403 M_FORBIDDEN otherwise).")
    api.add("PUT", "/servers/{server_id}/bans/{user_id}", put_ban, tag="moderation",
            summary="Ban a user from the server and all its channels", request=REASON_BODY,
            response={"type": "object"},
            description="Needs BAN_MEMBERS. " + hierarchy + " An m.room.member ban (with the reason) in the "
                        "space and every channel: the user leaves them all and cannot join again, by any "
                        "face or invite code, until unbanned. The user need not be a member. Body may be {}.")
    api.add("DELETE", "/servers/{server_id}/bans/{user_id}", delete_ban, tag="moderation",
            summary="Unban a user everywhere in the server", response={"type": "object"},
            description="Needs BAN_MEMBERS. 404 M_NOT_FOUND when not banned. They may then be invited again.")
    api.add("GET", "/servers/{server_id}/bans", list_bans, tag="moderation", summary="The server's bans",
            response={"type": "array", "items": ban_ref},
            description="Needs BAN_MEMBERS. Read from the space's member state, oldest first.")
    api.add("POST", "/servers/{server_id}/kick/{user_id}", kick, tag="moderation",
            summary="Kick a member from the server and all its channels", request=REASON_BODY,
            response={"type": "object"},
            description="Needs KICK_MEMBERS. " + hierarchy + " 404 M_NOT_FOUND for a non-member. They may "
                        "come back with a new invite.")
    api.add("DELETE", "/servers/{server_id}/members/{user_id}", delete_member, tag="moderation",
            summary="Leave the server (user_id @me), or kick a member", response={"type": "object"},
            description="With @me: leave the space and all its channels; the owner cannot (400 M_BAD_STATE: "
                        "delete the server instead). With a user ID: as POST /servers/{id}/kick/{user_id}.")
    api.add("GET", "/servers/{server_id}/audit-log", audit, tag="moderation",
            summary="The server's audit log, newest first", response={"type": "array", "items": entry_ref},
            description="Needs VIEW_AUDIT_LOG. Read from the state events and redactions of the server's "
                        "rooms. Query: action (one of the actions), user_id (the actor), before / after (an "
                        f"entry ID, or a time in ms since the epoch; exclusive), limit (default {DEFAULT_LIMIT}, "
                        f"max {MAX_LIMIT}).")

"""Room aliases in the directory, and the rooms' published aliases."""

from __future__ import annotations

from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.http.request import field, parse_json_object
from homeserver.http.router import CLIENT_PREFIX, Router


def _check_alias(alias: str, server_name: str) -> None:
    if not alias.startswith("#") or ":" not in alias or len(alias.encode()) > 255:
        raise invalid_param("Invalid room alias")
    if alias.split(":", 1)[1] != server_name:
        raise invalid_param("Room aliases of other servers cannot be managed here")


async def servers_in_room(hs, room_id: str) -> list[str]:
    """Servers with a joined member in the room, this one first (it holds the alias)."""
    server_name = hs.config.server_name
    members = await hs.rooms.get_members(room_id)
    others = sorted({user_id.split(":", 1)[1] for user_id, (membership, _) in members.items()
                     if membership == "join" and ":" in user_id} - {server_name})
    return [server_name, *others]


def register_routes(router: Router, hs) -> None:
    server_name = hs.config.server_name

    async def get_alias(request, alias):
        found = await hs.rooms.get_alias(alias)
        if found is None and hs.membership.alias_query is not None and await hs.membership.alias_query(alias):
            found = await hs.rooms.get_alias(alias)
        if found is None:
            # An alias of another server is asked of it (federation query/directory).
            if alias.startswith("#") and ":" in alias and alias.split(":", 1)[1] != server_name \
                    and getattr(hs.membership, "remote", None) is not None:
                room_id, servers = await hs.membership.resolve_room_and_servers(alias)
                return 200, {"room_id": room_id, "servers": list(dict.fromkeys(servers))}
            raise not_found(f"Room alias {alias} not found")
        return 200, {"room_id": found[0], "servers": await servers_in_room(hs, found[0])}

    async def put_alias(request, alias):
        requester = await hs.auth.authenticate(request)
        _check_alias(alias, server_name)
        from appservice.loading import check_alias_not_claimed
        check_alias_not_claimed(hs.appservices, alias, requester.appservice_id)
        body = parse_json_object(request)
        room_id = field(body, "room_id", str)
        if await hs.room_heads.get(room_id) is None:
            raise not_found("Unknown room")
        if await hs.membership.current_membership(room_id, requester.user_id) != "join":
            raise forbidden("You must be in the room to give it an alias")
        if not await hs.rooms.create_alias(alias, room_id, requester.user_id, hs.clock.time_ms()):
            raise MatrixError(409, "M_UNKNOWN", f"Room alias {alias} already exists")
        return 200, {}

    async def delete_alias(request, alias):
        requester = await hs.auth.authenticate(request)
        found = await hs.rooms.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        room_id, creator = found
        if creator != requester.user_id and not await hs.power.can_send_state(
                requester.user_id, room_id, "m.room.canonical_alias"):
            raise forbidden("You may not remove this alias")
        await hs.rooms.delete_alias(alias)
        return 200, {}

    async def room_aliases(request, room_id):
        requester = await hs.auth.authenticate(request)
        if await hs.membership.current_membership(room_id, requester.user_id) != "join":
            raise forbidden("You are not in this room")
        return 200, {"aliases": await hs.rooms.get_aliases_for_room(room_id)}

    router.add("GET", f"{CLIENT_PREFIX}/directory/room/{{alias}}", get_alias)
    router.add("PUT", f"{CLIENT_PREFIX}/directory/room/{{alias}}", put_alias)
    router.add("DELETE", f"{CLIENT_PREFIX}/directory/room/{{alias}}", delete_alias)
    router.add("GET", f"{CLIENT_PREFIX}/rooms/{{room_id}}/aliases", room_aliases)

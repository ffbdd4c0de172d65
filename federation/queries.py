"""Federation queries (profile, directory, devices and keys, public rooms, hierarchy, media).

Served to other servers (every route X-Matrix signed):

- ``GET /query/profile?user_id=&field=``: a profile of one of our users.
- ``GET /query/directory?room_alias=``: one of our aliases, with the servers in the room.
- ``GET|POST /publicRooms``: our room directory (403 unless ``federation.allow_public_rooms``).
- ``GET /hierarchy/{roomId}?suggested_only=``: a space and its direct children.
- devices and keys: ``federation.e2e``; media: ``federation.media``.

Asked of other servers: profiles of their users (``ProfileHandler.remote``); their aliases
(``RemoteMembership.resolve_alias``, used by the client directory and joins by alias),
their room directories (``PublicRoomsHandler``), keys and device lists
(``federation.e2e``) and media (``homeserver.media.remote``).
"""

from __future__ import annotations

from typing import Any

from federation import e2e, media
from homeserver.client.directory import servers_in_room
from homeserver.handlers.public_rooms import remote_error
from homeserver.http.errors import forbidden, invalid_param, not_found
from homeserver.http.request import field, query_bool, query_int, query_str

PREFIX = "/_matrix/federation/v1"
PROFILE_FIELDS = ("displayname", "avatar_url")


class RemoteProfiles:
    """Profiles of users of other servers: asked of their server each time."""

    def __init__(self, hs):
        self._client = hs.federation_client

    async def __call__(self, user_id: str) -> dict:
        server = user_id.split(":", 1)[1] if ":" in user_id else ""
        if not user_id.startswith("@") or not server:
            raise invalid_param("Not a user ID")
        try:
            answer = await self._client.get_json(server, PREFIX + "/query/profile", query={"user_id": user_id},
                                                 timeout=30)
        except Exception as error:
            if getattr(error, "status", None) == 404:
                raise not_found("Profile not found") from None
            raise remote_error(server, error) from None
        return {name: answer[name] for name in PROFILE_FIELDS if isinstance(answer.get(name), str)}


def register(router, hs, authenticated) -> None:
    async def query_profile(request, origin):
        user_id = query_str(request, "user_id", required=True)
        wanted = query_str(request, "field")
        if wanted is not None and wanted not in PROFILE_FIELDS:
            raise invalid_param("'field' must be displayname or avatar_url")
        if not hs.profiles_handler.is_local(user_id):
            raise not_found("Not a user of this server")
        profile = await hs.profiles_handler.get_local_profile(user_id)
        if wanted is not None:
            profile = {k: v for k, v in profile.items() if k == wanted}
        return 200, profile

    async def query_directory(request, origin):
        alias = query_str(request, "room_alias", required=True)
        found = await hs.rooms.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        return 200, {"room_id": found[0], "servers": await servers_in_room(hs, found[0])}

    def check_allowed() -> None:
        if not hs.config.federation.allow_public_rooms:
            raise forbidden("This server does not share its room directory with other servers")

    async def get_public_rooms(request, origin):
        check_allowed()
        third_party = None
        include_all = query_bool(request, "include_all_networks", False)
        if not include_all:
            third_party = query_str(request, "third_party_instance_id")
        return 200, await hs.public_rooms.list_rooms(limit=query_int(request, "limit", None, minimum=0),
                                                     since=query_str(request, "since"),
                                                     third_party_instance_id=third_party)

    async def post_public_rooms(request, origin, body):
        check_allowed()
        filter_body = field(body, "filter", dict, None, nullable=True) or {}
        third_party = None
        if not field(body, "include_all_networks", bool, False):
            third_party = field(body, "third_party_instance_id", str, None, nullable=True)
        limit: Any = field(body, "limit", int, None, nullable=True)
        return 200, await hs.public_rooms.list_rooms(
            limit=limit, since=field(body, "since", str, None, nullable=True),
            search_term=field(filter_body, "generic_search_term", str, None, nullable=True),
            room_types=filter_body.get("room_types"), third_party_instance_id=third_party)

    async def get_hierarchy(request, origin, room_id):
        return 200, await hs.room_hierarchy.federation_hierarchy(
            origin, room_id, suggested_only=query_bool(request, "suggested_only", False))

    router.add("GET", PREFIX + "/query/profile", authenticated(query_profile))
    router.add("GET", PREFIX + "/query/directory", authenticated(query_directory))
    router.add("GET", PREFIX + "/publicRooms", authenticated(get_public_rooms))
    router.add("POST", PREFIX + "/publicRooms", authenticated(post_public_rooms, with_body=True))
    router.add("GET", PREFIX + "/hierarchy/{room_id}", authenticated(get_hierarchy, room_scoped=True))


def attach(hs) -> None:
    """Register the query routes (``hs.federation_route_modules``) and outbound lookups."""
    hs.profiles_handler.remote = RemoteProfiles(hs)
    hs.federation_route_modules.append(register)
    e2e.attach(hs)
    media.attach(hs)

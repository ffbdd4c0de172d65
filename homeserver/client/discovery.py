"""Discovery over the client-server API: the published room directory, the space
hierarchy, the user directory and server-side search.

The components are built here, on first registration, and kept on ``hs``:
``hs.directory_store``, ``hs.search_store``, ``hs.discovery_follower`` (fills the
search index and user directory from the event stream; a notifier event listener),
``hs.public_rooms``, ``hs.room_hierarchy``, ``hs.user_directory`` and ``hs.search``.
"""

from __future__ import annotations

from homeserver.handlers.hierarchy import HierarchyHandler
from homeserver.handlers.public_rooms import PublicRoomsHandler
from homeserver.handlers.search import DiscoveryFollower, SearchHandler
from homeserver.handlers.user_directory import DEFAULT_LIMIT as USER_DIRECTORY_LIMIT
from homeserver.handlers.user_directory import UserDirectoryHandler
from homeserver.http.errors import invalid_param
from homeserver.http.request import field, parse_json_object, query_bool, query_int, query_str
from homeserver.http.router import CLIENT_PREFIX, CLIENT_V1_PREFIX, Router
from storage.stores.directory import DirectoryStore
from storage.stores.search import SearchStore


def _wire(hs) -> None:
    if getattr(hs, "discovery_follower", None) is not None:
        return
    hs.directory_store = DirectoryStore(hs.db)
    hs.search_store = SearchStore(hs.db)
    hs.discovery_follower = DiscoveryFollower(hs, hs.search_store)
    hs.notifier.add_event_listener(hs.discovery_follower.on_event)
    hs.public_rooms = PublicRoomsHandler(hs, hs.directory_store)
    hs.room_hierarchy = HierarchyHandler(hs, hs.directory_store)
    hs.user_directory = UserDirectoryHandler(hs.directory_store, hs.discovery_follower)
    hs.search = SearchHandler(hs, hs.search_store, hs.discovery_follower)


def register_routes(router: Router, hs) -> None:
    _wire(hs)
    async def get_public_rooms(request):
        server = query_str(request, "server")
        if server is not None and server != hs.config.server_name:
            # Another server's directory is asked of it over federation: only for users
            # of this server (anyone else could make it send requests for them).
            await hs.auth.authenticate(request)
        return 200, await hs.public_rooms.list_rooms(limit=query_int(request, "limit", None, minimum=0),
                                                     since=query_str(request, "since"), server=server)

    async def post_public_rooms(request):
        await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        filter_body = field(body, "filter", dict, None, nullable=True) or {}
        search_term = field(filter_body, "generic_search_term", str, None, nullable=True)
        third_party = None
        include_all_networks = field(body, "include_all_networks", bool, False)
        if not include_all_networks:
            third_party = field(body, "third_party_instance_id", str, None, nullable=True)
        return 200, await hs.public_rooms.list_rooms(
            limit=field(body, "limit", int, None, nullable=True), since=field(body, "since", str, None, nullable=True),
            search_term=search_term, room_types=filter_body.get("room_types"),
            third_party_instance_id=third_party, server=query_str(request, "server"),
            include_all_networks=include_all_networks)

    async def get_room_visibility(request, room_id):
        return 200, {"visibility": await hs.public_rooms.get_visibility(room_id)}

    async def put_room_visibility(request, room_id):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request, allow_empty=True)
        visibility = field(body, "visibility", str, "public")
        await hs.public_rooms.set_visibility(requester.user_id, room_id, visibility)
        return 200, {}

    async def hierarchy(request, room_id):
        requester = await hs.auth.authenticate(request)
        return 200, await hs.room_hierarchy.get_hierarchy(
            requester.user_id, room_id, suggested_only=query_bool(request, "suggested_only", False),
            limit=query_int(request, "limit", None), max_depth=query_int(request, "max_depth", None),
            from_token=query_str(request, "from"))

    async def user_directory_search(request):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request)
        term = field(body, "search_term", str)
        limit = field(body, "limit", int, USER_DIRECTORY_LIMIT)
        if limit < 0:
            raise invalid_param("'limit' must not be negative")
        return 200, await hs.user_directory.search(requester.user_id, term, limit)

    async def search(request):
        requester = await hs.auth.authenticate(request)
        body = parse_json_object(request)
        return 200, await hs.search.search(requester.user_id, body, query_str(request, "next_batch"))

    router.add("GET", f"{CLIENT_PREFIX}/publicRooms", get_public_rooms)
    router.add("POST", f"{CLIENT_PREFIX}/publicRooms", post_public_rooms)
    router.add("GET", f"{CLIENT_PREFIX}/directory/list/room/{{room_id}}", get_room_visibility)
    router.add("PUT", f"{CLIENT_PREFIX}/directory/list/room/{{room_id}}", put_room_visibility)
    router.add("GET", f"{CLIENT_V1_PREFIX}/rooms/{{room_id}}/hierarchy", hierarchy)
    router.add("POST", f"{CLIENT_PREFIX}/user_directory/search", user_directory_search)
    router.add("POST", f"{CLIENT_PREFIX}/search", search)

"""``/relationships`` (friends, friend requests, blocks) and ``/users/search``
(DESIGN.md §2; the rules are in ``homeserver.drocsid.relationships``)."""

from __future__ import annotations

from federation import friend_requests
from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.drocsid import relationships as rel
from homeserver.http.errors import invalid_param
from homeserver.http.request import query_str

SEARCH_LIMIT = 20
MAX_QUERY = 32

RELATIONSHIP_SCHEMA = {
    "type": "object",
    "required": ["user_id", "type", "user"],
    "properties": {
        "user_id": {"type": "string"},
        "type": {"type": "string", "enum": list(rel.TYPES)},
        "user": {"type": "object", "properties": {"id": {"type": "string"},
                                                  "display_name": {"type": ["string", "null"]}}},
    },
}

SEARCH_RESULT_SCHEMA = {
    "type": "object",
    "required": ["id", "username", "display_name", "avatar_url"],
    "properties": {
        "id": {"type": "string"}, "username": {"type": "string"},
        "display_name": {"type": ["string", "null"]}, "avatar_url": {"type": ["string", "null"]},
    },
}


async def search_users(hs, user_id: str, term: str | None) -> list[dict]:
    """Local users by localpart or display name, blocks in either direction left out."""
    term = (term or "").strip()
    if not 1 <= len(term) <= MAX_QUERY:
        raise invalid_param(f"'q' must be 1 to {MAX_QUERY} characters")
    excluded = {user_id} | set(await rel.ignored_users(hs, user_id))
    excluded |= await hs.relationship_store.users_ignoring(user_id)
    rows = await hs.relationship_store.search_local_users(hs.config.server_name, term, SEARCH_LIMIT, excluded)
    return [{"id": found, "username": rel.localpart(found),
             "display_name": name if name is not None else rel.localpart(found), "avatar_url": avatar}
            for found, name, avatar in rows]


def register(api: ApiRoutes, hs) -> None:
    if getattr(hs, "federation_transactions", None) is not None:
        friend_requests.attach(hs)  # friend requests to and from other instances
    relationship_ref = api.schema("Relationship", RELATIONSHIP_SCHEMA)
    changed = {"type": "object", "properties": {"type": {"type": ["string", "null"],
                                                         "description": "The relationship now; null: none"}}}

    async def list_all(call: ApiCall):
        return 200, await rel.list_relationships(hs, call.requester.user_id)

    def target(call: ApiCall) -> tuple[str, str]:
        return call.requester.user_id, call.params["user_id"]

    async def request(call: ApiCall):
        return 200, {"type": await rel.send_request(hs, *target(call))}

    async def accept(call: ApiCall):
        return 200, {"type": await rel.accept(hs, *target(call))}

    async def decline(call: ApiCall):
        await rel.decline(hs, *target(call))
        return 200, {"type": None}

    async def remove(call: ApiCall):
        await rel.remove(hs, *target(call))
        return 200, {"type": None}

    async def block(call: ApiCall):
        await rel.block(hs, *target(call))
        return 200, {"type": rel.BLOCKED}

    async def unblock(call: ApiCall):
        await rel.unblock(hs, *target(call))
        return 200, {"type": None}

    async def search(call: ApiCall):
        return 200, await search_users(hs, call.requester.user_id, query_str(call.request, "q"))

    one = "/relationships/{user_id}"
    api.add("GET", "/relationships", list_all, tag="relationships", summary="Friends, friend requests and blocks",
            response={"type": "array", "items": relationship_ref})
    api.add("PUT", one, request, tag="relationships", summary="Send a friend request (accepts theirs)",
            response=changed, description="400 for yourself, 404 for an unknown user, 403 when either of you "
                                          "blocks the other. Asking again changes nothing.")
    api.add("DELETE", one, remove, tag="relationships", summary="Unfriend, or cancel or decline a request",
            response=changed, description="404 when there is no friendship or request.")
    api.add("POST", one + "/accept", accept, tag="relationships", summary="Accept a friend request",
            response=changed, description="404 when the user has not asked.")
    api.add("POST", one + "/decline", decline, tag="relationships", summary="Decline a friend request",
            response=changed, description="404 when the user has not asked.")
    api.add("PUT", one + "/block", block, tag="relationships", summary="Block a user (m.ignored_user_list)",
            response=changed, description="Ends any friendship or request between you.")
    api.add("DELETE", one + "/block", unblock, tag="relationships", summary="Unblock a user", response=changed,
            description="404 when the user is not blocked.")
    api.add("GET", "/users/search", search, tag="users", summary="Find local users by name",
            response={"type": "array", "items": api.schema("UserSearchResult", SEARCH_RESULT_SCHEMA)},
            description=f"q: 1 to {MAX_QUERY} characters, matched against the username and display name; "
                        f"at most {SEARCH_LIMIT} results; users you block or who block you are left out.")

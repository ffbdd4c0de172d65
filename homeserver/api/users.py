"""``/users``: the user object of ``/api/v1`` and ``GET /users/@me``."""

from __future__ import annotations

from datetime import datetime, timezone

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.http.errors import unknown_token

# The original's user object, with a Matrix user ID as the ID; fields we do not keep
# yet (bio, status, theme ...) are left out rather than invented.
USER_SCHEMA = {
    "type": "object",
    "required": ["id", "username", "display_name", "avatar_url", "bot", "is_admin", "created_at"],
    "properties": {
        "id": {"type": "string", "description": "Matrix user ID", "examples": ["@alice:example.org"]},
        "username": {"type": "string", "description": "The localpart of the ID"},
        "display_name": {"type": ["string", "null"]},
        "avatar_url": {"type": ["string", "null"], "description": "An mxc:// URI"},
        "bot": {"type": "boolean"},
        "is_admin": {"type": "boolean", "description": "Instance administrator"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}


def iso_timestamp(ts_ms: int) -> str:
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def user_object(hs, user_id: str) -> dict:
    """The user object of a local account, read from the account and its profile."""
    record = await hs.users.get_user(user_id)
    if record is None:
        # Only reachable if the account vanished under a valid token.
        raise unknown_token()
    # The profile handler, so the name matches what Matrix clients see (the localpart
    # until one is set).
    profile = await hs.profiles_handler.get_local_profile(user_id)
    return {
        "id": user_id,
        "username": user_id[1:].split(":", 1)[0],
        "display_name": profile.get("displayname"),
        "avatar_url": profile.get("avatar_url"),
        "bot": record.appservice_id is not None,
        "is_admin": record.admin,
        "created_at": iso_timestamp(record.created_ts),
    }


def register(api: ApiRoutes, hs) -> None:
    user_ref = api.schema("User", USER_SCHEMA)

    async def get_me(call: ApiCall):
        return 200, await user_object(hs, call.requester.user_id)

    api.add("GET", "/users/@me", get_me, tag="users", summary="The current user",
            response=user_ref)

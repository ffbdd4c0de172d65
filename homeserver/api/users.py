"""``/users``: the user object of ``/api/v1`` and ``GET /users/@me``."""

from __future__ import annotations

from datetime import datetime, timezone

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.uploads import MAX_IMAGE_BYTES, image_type, request_bytes
from homeserver.drocsid.presence import STATUSES, from_matrix_presence, to_matrix_presence
from homeserver.http.errors import invalid_param, unknown_token

# The original's user object, with a Matrix user ID as the ID; fields we do not keep
# yet (bio, theme ...) are left out rather than invented.
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
        "status": {"type": "string", "enum": ["online", "idle", "dnd", "offline"],
                   "description": "As others see it (invisible shows as offline); in GET /users/@me only"},
        "custom_status": {"type": ["string", "null"]},
    },
}

PATCH_ME_BODY = {
    "type": "object",
    "properties": {
        "display_name": {"type": ["string", "null"], "minLength": 1, "maxLength": 32,
                         "description": "null: back to the username"},
        "avatar_url": {"type": ["string", "null"], "maxLength": 1000, "description": "An mxc:// URI; null clears"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "custom_status": {"type": ["string", "null"], "maxLength": 128, "description": "\"\" or null clears"},
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


async def own_status(hs, user_id: str) -> tuple[str, str | None]:
    presence = await hs.presence.get(user_id)
    return from_matrix_presence(presence.get("presence", "offline"), presence.get("status_msg"))


def register(api: ApiRoutes, hs) -> None:
    user_ref = api.schema("User", USER_SCHEMA)

    async def me(user_id: str) -> dict:
        status, custom = await own_status(hs, user_id)
        return {**await user_object(hs, user_id), "status": status, "custom_status": custom}

    async def get_me(call: ApiCall):
        return 200, await me(call.requester.user_id)

    async def patch_me(call: ApiCall):
        user_id, body = call.requester.user_id, call.body
        avatar = body.get("avatar_url")
        if avatar is not None and not avatar.startswith("mxc://"):
            raise invalid_param("'avatar_url' must be an mxc:// URI")
        if "display_name" in body:
            await hs.profiles_handler.set_field(user_id, "displayname", body["display_name"])
        if "avatar_url" in body:
            await hs.profiles_handler.set_field(user_id, "avatar_url", avatar)
        if "status" in body or "custom_status" in body:
            status, custom = await own_status(hs, user_id)
            status = body.get("status", "invisible" if status == "offline" else status)
            if "custom_status" in body:
                custom = body["custom_status"] or None
            await hs.presence.set_state(user_id, *to_matrix_presence(status, custom))
        return 200, await me(user_id)

    async def upload_avatar(call: ApiCall):
        user_id = call.requester.user_id
        data = request_bytes(call)
        content_type = image_type(data, MAX_IMAGE_BYTES)
        uri = await hs.media_repository.upload(user_id, data, content_type, "avatar")
        await hs.profiles_handler.set_field(user_id, "avatar_url", uri)
        return 200, await me(user_id)

    api.add("GET", "/users/@me", get_me, tag="users", summary="The current user",
            response=user_ref)
    api.add("POST", "/users/@me/avatar", upload_avatar, tag="users", summary="Upload one's avatar",
            response=user_ref, rate_limited=True,
            description="The body is the image itself (PNG, JPEG, GIF or WebP, at most 5 MiB, judged from its "
                        "bytes); stored in the media repository and set as the Matrix avatar_url.")
    api.add("PATCH", "/users/@me", patch_me, tag="users", summary="Edit one's profile and status",
            request=PATCH_ME_BODY, response=user_ref,
            description="display_name and avatar_url are the Matrix profile (every room sees the change); "
                        "status (online, idle, dnd, invisible) and custom_status are Matrix presence, as the "
                        "gateway's PRESENCE_UPDATE sets them.")

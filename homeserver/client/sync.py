"""GET /sync and the filters clients upload for it."""

from __future__ import annotations

import json

from homeserver.handlers.filtering import parse_sync_filter
from homeserver.http.errors import MatrixError, forbidden, not_found
from homeserver.http.request import parse_json_object, query_bool, query_int, query_str
from homeserver.http.router import CLIENT_PREFIX, Router
from homeserver.notifier import StreamToken


def register_routes(router: Router, hs) -> None:
    async def load_filter(user_id: str, raw: str | None):
        if raw is None:
            return parse_sync_filter(None)
        if raw.startswith("{"):
            try:
                definition = json.loads(raw)
            except ValueError:
                raise MatrixError(400, "M_NOT_JSON", "filter is not valid JSON") from None
            return parse_sync_filter(definition)
        try:
            filter_id = int(raw)
        except ValueError:
            raise MatrixError(400, "M_INVALID_PARAM", "filter must be a filter ID or a JSON object") from None
        definition = await hs.filters.get(user_id, filter_id)
        if definition is None:
            raise not_found("No such filter")
        return parse_sync_filter(definition)

    async def sync(request):
        requester = await hs.auth.authenticate(request)
        since_text = query_str(request, "since")
        try:
            since = StreamToken.parse(since_text) if since_text else None
        except ValueError:
            raise MatrixError(400, "M_INVALID_PARAM", "Unknown 'since' token") from None
        sync_filter = await load_filter(requester.user_id, query_str(request, "filter"))
        timeout = query_int(request, "timeout", 0, minimum=0)
        full_state = query_bool(request, "full_state", False)
        set_presence = query_str(request, "set_presence", "online")
        if set_presence not in ("online", "offline", "unavailable"):
            raise MatrixError(400, "M_INVALID_PARAM", "set_presence must be online, offline or unavailable")
        hs.presence_timers.synced(requester.user_id, present=set_presence == "online")
        if set_presence != "offline":
            # A client syncing is a client present; it keeps the status message it set.
            await hs.presence.set_state(requester.user_id, set_presence, keep_status=True)
        body = await hs.sync.sync(requester.user_id, requester.device_id, since, sync_filter, timeout, full_state)
        return 200, body

    async def create_filter(request, user_id):
        requester = await hs.auth.authenticate(request)
        if requester.user_id != user_id:
            raise forbidden("Cannot create filters for other users")
        definition = parse_json_object(request)
        parse_sync_filter(definition)  # refuse what would fail later
        return 200, {"filter_id": str(await hs.filters.add(user_id, definition))}

    async def get_filter(request, user_id, filter_id):
        requester = await hs.auth.authenticate(request)
        if requester.user_id != user_id:
            raise forbidden("Cannot read filters of other users")
        try:
            number = int(filter_id)
        except ValueError:
            raise not_found("No such filter") from None
        definition = await hs.filters.get(user_id, number)
        if definition is None:
            raise not_found("No such filter")
        return 200, definition

    router.add("GET", f"{CLIENT_PREFIX}/sync", sync)
    router.add("POST", f"{CLIENT_PREFIX}/user/{{user_id}}/filter", create_filter)
    router.add("GET", f"{CLIENT_PREFIX}/user/{{user_id}}/filter/{{filter_id}}", get_filter)

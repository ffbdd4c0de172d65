"""GET/PUT /presence/{userId}/status."""

from __future__ import annotations

from homeserver.http.errors import forbidden
from homeserver.http.request import field, parse_json_object
from homeserver.http.router import CLIENT_PREFIX, Router


def register_routes(router: Router, hs) -> None:
    async def get_status(request, user_id):
        await hs.auth.authenticate(request)
        return 200, await hs.presence.get(user_id)

    async def put_status(request, user_id):
        requester = await hs.auth.authenticate(request)
        if requester.user_id != user_id:
            raise forbidden("Cannot set other users' presence")
        body = parse_json_object(request)
        await hs.presence.set_state(user_id, field(body, "presence", str),
                                    field(body, "status_msg", str, None, nullable=True))
        return 200, {}

    router.add("GET", f"{CLIENT_PREFIX}/presence/{{user_id}}/status", get_status)
    router.add("PUT", f"{CLIENT_PREFIX}/presence/{{user_id}}/status", put_status)

"""GET /capabilities: room versions and which account changes are allowed."""

from __future__ import annotations

from homeserver.events.room_versions import KNOWN_ROOM_VERSIONS
from homeserver.http.router import CLIENT_PREFIX, Router


def register_routes(router: Router, hs) -> None:
    async def capabilities(request):
        await hs.auth.authenticate(request)
        return 200, {"capabilities": {
            "m.room_versions": {"default": hs.config.rooms.default_version,
                                "available": {v: "stable" for v in KNOWN_ROOM_VERSIONS}},
            "m.change_password": {"enabled": True},
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": False},
        }}

    router.add("GET", f"{CLIENT_PREFIX}/capabilities", capabilities)

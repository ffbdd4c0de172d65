"""LiveKit's RoomService, spoken the way livekit-api's own client does: Twirp, JSON
bodies of its protobuf messages, ``Authorization: Bearer`` an admin token for the room.
(livekit-api's client is asyncio/aiohttp; the homeserver runs on Twisted, so the
requests go through treq with livekit-api's messages and tokens.)"""

from __future__ import annotations

import json

import treq
from google.protobuf import json_format
from livekit import api as lk

from homeserver.http.errors import MatrixError
from homeserver.voice.tokens import admin_token

_PREFIX = "/twirp/livekit.RoomService/"
TIMEOUT_SECS = 10


def http_base(url: str) -> str:
    """LiveKit's ws(s):// URL as the http(s):// base of its API."""
    if url.startswith("ws://"):
        return "http://" + url[5:].rstrip("/")
    if url.startswith("wss://"):
        return "https://" + url[6:].rstrip("/")
    return url.rstrip("/")


class RoomService:
    def __init__(self, url: str, api_key: str, api_secret: str):
        self.base = http_base(url)
        self.api_key, self.api_secret = api_key, api_secret

    async def _call(self, method: str, message, room: str, destination_room: str | None = None) -> dict:
        token = admin_token(self.api_key, self.api_secret, room, destination_room)
        body = json_format.MessageToJson(message, preserving_proto_field_name=True).encode()
        try:
            response = await treq.post(self.base + _PREFIX + method, data=body, timeout=TIMEOUT_SECS, persistent=False,
                                       headers={"Authorization": f"Bearer {token}",
                                                "Content-Type": "application/json"})
            text = await response.content()
        except Exception as error:  # timeouts, refusals, resets (Twisted's are not all OSErrors)
            raise MatrixError(502, "M_UNKNOWN", f"LiveKit could not be reached ({type(error).__name__})")
        if response.code == 404:
            return {"not_found": True}  # the participant is not in LiveKit's room (now)
        if response.code != 200:
            raise MatrixError(502, "M_UNKNOWN", f"LiveKit answered {response.code} to {method}")
        try:
            return json.loads(text or b"{}")
        except ValueError:
            raise MatrixError(502, "M_UNKNOWN", f"LiveKit sent a malformed answer to {method}")

    async def set_permissions(self, room: str, identity: str, *, can_publish: bool, can_subscribe: bool,
                              sources: list[str]) -> dict:
        """Server mute (no publishing) and deafen (no subscribing)."""
        permission = lk.ParticipantPermission(can_publish=can_publish, can_subscribe=can_subscribe,
                                              can_publish_data=True)
        if sources and can_publish:
            permission.can_publish_sources.extend(_source(s) for s in sources)
        return await self._call("UpdateParticipant",
                                lk.UpdateParticipantRequest(room=room, identity=identity, permission=permission), room)

    async def remove(self, room: str, identity: str) -> dict:
        return await self._call("RemoveParticipant", lk.RoomParticipantIdentity(room=room, identity=identity), room)

    async def move(self, room: str, identity: str, destination_room: str) -> dict:
        return await self._call("MoveParticipant", lk.MoveParticipantRequest(
            room=room, identity=identity, destination_room=destination_room), room, destination_room)


def _source(name: str) -> int:
    return {"camera": lk.CAMERA, "microphone": lk.MICROPHONE, "screen_share": lk.SCREEN_SHARE,
            "screen_share_audio": lk.SCREEN_SHARE_AUDIO}[name]

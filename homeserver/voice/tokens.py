"""LiveKit access tokens, minted with livekit-api: a client's token for one channel's
LiveKit room (named after the channel's room ID, identity = the Matrix user ID), and the
homeserver's own short-lived admin token for RoomService calls."""

from __future__ import annotations

from datetime import timedelta

from livekit import api as lk

CLIENT_TOKEN_TTL = timedelta(hours=6)
ADMIN_TOKEN_TTL = timedelta(minutes=5)


def client_token(api_key: str, api_secret: str, *, room: str, identity: str, name: str, grants: dict) -> str:
    video = lk.VideoGrants(room_join=True, room=room, can_publish=grants["can_publish"],
                           can_publish_sources=grants["can_publish_sources"],
                           can_subscribe=grants["can_subscribe"], can_publish_data=grants["can_publish_data"])
    return (lk.AccessToken(api_key, api_secret).with_identity(identity).with_name(name)
            .with_grants(video).with_ttl(CLIENT_TOKEN_TTL).to_jwt())


def admin_token(api_key: str, api_secret: str, room: str, destination_room: str | None = None) -> str:
    video = lk.VideoGrants(room_admin=True, room=room, destination_room=destination_room)
    return lk.AccessToken(api_key, api_secret).with_grants(video).with_ttl(ADMIN_TOKEN_TTL).to_jwt()

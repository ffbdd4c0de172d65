"""MatrixRTC compatibility, so Element Call users can share a Drocsid voice channel's
LiveKit room:

- ``POST /livekit/jwt/sfu/get`` (what lk-jwt-service answers for Element Call): an OpenID
  token of the caller's homeserver (checked locally, or through that server's federation
  ``/openid/userinfo``) is traded for a LiveKit token for the room, if the user is joined to
  it (and, in a Drocsid voice channel, holds CONNECT; SPEAK and STREAM decide publishing);
- ``/.well-known/matrix/client`` lists it as the rtc focus (``org.matrix.msc4143.rtc_foci``);
- call-membership state (``org.matrix.msc3401.call.member``, read in ``homeserver.voice.service``) of Element Call users counts as
  connected in ``VoiceService.states``.
"""

from __future__ import annotations

from homeserver.drocsid.server_state import server_of_channel
from homeserver.drocsid.voice_rules import livekit_grants
from homeserver.drocsid import permissions as perms
from homeserver.http.errors import MatrixError, forbidden, invalid_param
from homeserver.voice.tokens import client_token

JWT_SERVICE_PATH = "/livekit/jwt"


def rtc_foci(hs) -> list[dict]:
    if not hs.voice.configured:
        return []
    return [{"type": "livekit", "livekit_service_url": hs.config.server.public_baseurl.rstrip("/") + JWT_SERVICE_PATH}]


async def openid_user(hs, openid: dict) -> str:
    """The user an OpenID token stands for, asking their homeserver when it is not us."""
    token, server = openid.get("access_token"), openid.get("matrix_server_name")
    if not isinstance(token, str) or not isinstance(server, str) or not token or not server:
        raise invalid_param("openid_token needs access_token and matrix_server_name")
    if server == hs.config.server_name:
        user_id = hs.openid_tokens.user_of(token)
    else:
        client = getattr(hs, "federation_client", None)
        if client is None:
            raise forbidden("Users of other servers need federation")
        try:
            answer = await client.get_json(server, "/_matrix/federation/v1/openid/userinfo",
                                           query={"access_token": token}, timeout=10)
        except Exception:
            answer = {}
        user_id = answer.get("sub") if isinstance(answer, dict) else None
        if not isinstance(user_id, str) or not user_id.endswith(":" + server):
            user_id = None  # a server vouches only for its own users
    if user_id is None:
        raise MatrixError(401, "M_UNKNOWN_TOKEN", "The OpenID token is not valid")
    return user_id


async def sfu_get(hs, body: dict) -> dict:
    if not hs.voice.configured:
        raise MatrixError(503, "M_UNKNOWN", "Voice is not set up on this server")
    room_id, device_id = body.get("room"), body.get("device_id")
    if not isinstance(room_id, str) or not room_id.startswith("!"):
        raise invalid_param("'room' must be a room ID")
    if not isinstance(body.get("openid_token"), dict):
        raise invalid_param("'openid_token' is required")
    user_id = await openid_user(hs, body["openid_token"])
    if await hs.membership.current_membership(room_id, user_id) != "join":
        raise forbidden("Not joined to that room")
    bits, dm = perms.ALL, True
    found = await server_of_channel(hs, room_id)
    if found is not None:
        server, channel = found
        bits, dm = server.channel_permissions(user_id, channel), False
        if not perms.has_permissions(bits, int(perms.P.VIEW_CHANNEL | perms.P.CONNECT)):
            raise forbidden("Missing permission CONNECT")
    cfg = hs.config.livekit
    identity = f"{user_id}:{device_id}" if isinstance(device_id, str) and device_id else user_id
    token = client_token(cfg.api_key, cfg.api_secret, room=room_id, identity=identity, name=user_id,
                         grants=livekit_grants(bits, dm=dm))
    return {"url": cfg.public_url, "jwt": token}


def register_routes(router, hs) -> None:
    """Client face: OpenID tokens and the MatrixRTC token endpoint."""
    from homeserver.http.request import parse_json_object
    from homeserver.http.router import CLIENT_PREFIX

    async def request_openid_token(request, user_id):
        requester = await hs.auth.authenticate(request)
        if requester.user_id != user_id:
            raise forbidden("You may only ask for your own OpenID token")
        token, ttl = hs.openid_tokens.issue(user_id)
        return 200, {"access_token": token, "token_type": "Bearer", "matrix_server_name": hs.config.server_name,
                     "expires_in": ttl}

    async def get_sfu(request):
        return 200, await sfu_get(hs, parse_json_object(request))

    router.add("POST", CLIENT_PREFIX + "/user/{user_id}/openid/request_token", request_openid_token)
    router.add("POST", JWT_SERVICE_PATH + "/sfu/get", get_sfu)


def register_federation(router, hs, authenticated) -> None:
    """Federation face: another server's MatrixRTC endpoint checks our users' OpenID tokens
    (not X-Matrix signed: the token is the credential)."""
    from homeserver.http.request import query_str

    async def userinfo(request):
        user_id = hs.openid_tokens.user_of(query_str(request, "access_token", required=True))
        if user_id is None:
            raise MatrixError(401, "M_UNKNOWN_TOKEN", "Unknown or expired OpenID token")
        return 200, {"sub": user_id}

    router.add("GET", "/_matrix/federation/v1/openid/userinfo", userinfo)

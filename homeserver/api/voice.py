"""Voice channels through LiveKit: join (a LiveKit token for the channel's room), leave,
one's own mute/deafen/streaming, who is connected, and server mute, deafen, move and
disconnect (docs/voice.md). The state lives in the channel's room
(``homeserver.drocsid.voice_rules``); ``homeserver.voice.service`` does the work."""

from __future__ import annotations

from homeserver.api.routes import ApiCall, ApiRoutes
from homeserver.api.servers import member_server

VOICE_STATE_SCHEMA = {
    "type": "object",
    "required": ["server_id", "channel_id", "user_id", "connected", "self_mute", "self_deaf", "mute", "deaf",
                 "streaming"],
    "properties": {
        "server_id": {"type": ["string", "null"], "description": "null in a DM"},
        "channel_id": {"type": ["string", "null"], "description": "null once disconnected"},
        "user_id": {"type": "string"},
        "connected": {"type": "boolean"},
        "self_mute": {"type": "boolean"}, "self_deaf": {"type": "boolean"},
        "mute": {"type": "boolean", "description": "Server mute (MUTE_MEMBERS)"},
        "deaf": {"type": "boolean", "description": "Server deafen (DEAFEN_MEMBERS)"},
        "streaming": {"type": "boolean", "description": "Sharing the screen (STREAM)"},
    },
}

JOIN_BODY = {"type": "object", "properties": {"self_mute": {"type": "boolean"}, "self_deaf": {"type": "boolean"}}}
SELF_BODY = {"type": "object", "properties": {"self_mute": {"type": "boolean"}, "self_deaf": {"type": "boolean"},
                                              "streaming": {"type": "boolean"}}}
MODERATE_BODY = {"type": "object", "properties": {
    "mute": {"type": "boolean"}, "deaf": {"type": "boolean"},
    "channel_id": {"type": "string", "description": "Move the member to this voice channel"}}}


def register(api: ApiRoutes, hs) -> None:
    state_ref = api.schema("VoiceState", VOICE_STATE_SCHEMA)
    join_ref = {"type": "object", "required": ["token", "url", "room", "voice_state"], "properties": {
        "token": {"type": "string", "description": "A LiveKit access token for this channel's room"},
        "url": {"type": "string", "description": "livekit.public_url"},
        "room": {"type": "string", "description": "The LiveKit room: the channel's room ID"},
        "voice_state": state_ref}}

    async def join(call: ApiCall):
        answer = await hs.voice.join(call.requester.user_id, call.requester.device_id, call.params["channel_id"],
                                     self_mute=bool(call.body.get("self_mute")),
                                     self_deaf=bool(call.body.get("self_deaf")))
        return 200, answer

    async def leave(call: ApiCall):
        await hs.voice.leave(call.requester.user_id, call.params["channel_id"])
        return 200, {}

    async def update_self(call: ApiCall):
        changes = {k: call.body[k] for k in ("self_mute", "self_deaf", "streaming") if k in call.body}
        return 200, await hs.voice.update_self(call.requester.user_id, call.params["channel_id"], changes)

    async def states(call: ApiCall):
        return 200, await hs.voice.states_json(call.requester.user_id, call.params["channel_id"])

    async def moderate(call: ApiCall):
        await member_server(hs, call.params["server_id"], call.requester.user_id)
        body = call.body
        return 200, await hs.voice.moderate(call.requester.user_id, call.params["server_id"], call.params["user_id"],
                                            mute=body.get("mute"), deaf=body.get("deaf"),
                                            move_to=body.get("channel_id"))

    async def disconnect(call: ApiCall):
        await member_server(hs, call.params["server_id"], call.requester.user_id)
        return 200, await hs.voice.moderate(call.requester.user_id, call.params["server_id"], call.params["user_id"],
                                            disconnect=True)

    voice = "/channels/{channel_id}/voice"
    api.add("POST", voice + "/join", join, tag="voice", summary="Join a voice channel (or call in a DM)",
            request=JOIN_BODY, response=join_ref,
            description="Needs VIEW_CHANNEL and CONNECT in a server voice channel (400 for a text channel); in a "
                        "DM, membership. Leaves any other voice channel first. The token's grants: publish the "
                        "microphone with SPEAK, camera and screen with STREAM, subscribe always. 503 when LiveKit is "
                        "not configured.")
    api.add("POST", voice + "/leave", leave, tag="voice", summary="Leave a voice channel", response={"type": "object"})
    api.add("PATCH", voice + "/state", update_self, tag="voice", summary="Own mute, deafen and streaming",
            request=SELF_BODY, response=state_ref,
            description="400 M_BAD_STATE when not connected; streaming needs STREAM.")
    api.add("GET", voice + "/states", states, tag="voice", summary="Who is connected",
            response={"type": "array", "items": state_ref})
    member_voice = "/servers/{server_id}/members/{user_id}/voice"
    api.add("PATCH", member_voice, moderate, tag="voice", summary="Server mute, deafen or move a member",
            request=MODERATE_BODY, response=state_ref,
            description="mute needs MUTE_MEMBERS, deaf DEAFEN_MEMBERS, channel_id (a move) MOVE_MEMBERS, in the "
                        "member's voice channel. Applied in LiveKit (RoomService) first, then to the state; 502 when "
                        "LiveKit fails (nothing changes).")
    api.add("DELETE", member_voice, disconnect, tag="voice", summary="Disconnect a member from voice",
            response=state_ref, description="Needs MOVE_MEMBERS.")

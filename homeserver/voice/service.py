"""Joining, leaving and moderating voice channels; the truth is room state
(``io.drocsid.voice_state`` in the channel's room), LiveKit carries the media.

A user is in one voice channel at a time (joining another leaves the first) and leaves
when their last gateway connection drops. State is written as the user when their
Matrix power allows it, else signed by the server's owner with the actor recorded
(``servers._send_as``); ``voice_rules`` holds every writer to the Drocsid permissions.
"""

from __future__ import annotations

from twisted.logger import Logger

from homeserver.api.channels import channel_for
from homeserver.drocsid import permissions as perms
from homeserver.drocsid.dms import joined_dm
from homeserver.drocsid.permissions import P
from homeserver.drocsid.server_state import (Channel, Server, load_room_state, load_server, server_of_channel,
                                             user_servers)
from homeserver.drocsid.servers import _send_as
from homeserver.drocsid.voice_rules import (VOICE_STATE_EVENT, is_connected, livekit_grants,
                                            voice_state_content)
from homeserver.http.errors import MatrixError, forbidden, invalid_param, not_found
from homeserver.voice.room_service import RoomService
from homeserver.voice.tokens import client_token

log = Logger()

CALL_MEMBER_EVENT = perms.CALL_MEMBER_EVENT


def call_member_user(state_key: str, content) -> str | None:
    """Who a live MatrixRTC membership is: keys are ``_@user:server_DEVICE`` (MSC4143),
    ``@user:server_DEVICE`` or, in the older form, the user ID with a ``memberships`` list."""
    if not isinstance(content, dict) or not content:
        return None
    if "memberships" in content and not content["memberships"]:
        return None  # the older form, left
    key = state_key[1:] if state_key.startswith("_@") else state_key
    if not key.startswith("@") or ":" not in key:
        return None
    if "memberships" in content:
        return key
    user, _sep, _device = key.rpartition("_")
    return user if user.startswith("@") and ":" in user else key


def voice_state_json(server_id: str | None, channel_id: str, user_id: str, content: dict) -> dict:
    connected = is_connected(content)
    return {"server_id": server_id, "channel_id": channel_id if connected else None, "user_id": user_id,
            "connected": connected, **{k: bool(content.get(k)) for k in
                                       ("self_mute", "self_deaf", "mute", "deaf", "streaming")}}


class VoiceService:
    def __init__(self, hs):
        self.hs = hs
        cfg = hs.config.livekit
        self.configured = bool(cfg.api_key and cfg.api_secret)
        self.room_service = RoomService(cfg.url, cfg.api_key, cfg.api_secret)
        # Users this process connected to voice: a dropped gateway looks here before
        # scanning the user's servers, so the common case (not in voice) costs nothing.
        self.in_voice: set[str] = set()

    def _require_configured(self) -> None:
        if not self.configured:
            raise MatrixError(503, "M_UNKNOWN", "Voice is not set up on this server (livekit.api_key, api_secret)")

    # --- reading ------------------------------------------------------------------------------

    async def states(self, room_id: str) -> dict[str, dict]:
        """user ID -> voice state content, for everyone connected in the room: Drocsid's
        own voice state, and MatrixRTC call memberships (Element Call in the same room)."""
        state = await load_room_state(self.hs, room_id, {VOICE_STATE_EVENT, CALL_MEMBER_EVENT}, members=False)
        if state is None:
            return {}
        out = {}
        for key, content in state.of_type(CALL_MEMBER_EVENT).items():
            user_id = call_member_user(key, content)
            if user_id:
                out[user_id] = {"connected": True, "matrixrtc": True}
        for key, content in state.of_type(VOICE_STATE_EVENT).items():
            user_id = perms.user_of_state_key(key)
            if user_id and is_connected(content):
                out[user_id] = content
        return out

    async def states_json(self, user_id: str, channel_id: str) -> list[dict]:
        """Who is connected, for a user who may see the channel (or is in the DM)."""
        server, _channel, _bits = await self._voice_channel(user_id, channel_id)
        found = await self.states(channel_id)
        return [voice_state_json(server.room_id if server else None, channel_id, user, content)
                for user, content in sorted(found.items())]

    async def _voice_channel(self, user_id: str, channel_id: str) -> tuple[Server | None, Channel | None, int]:
        """(server, channel, bits) for a server voice channel, (None, None, all) for a DM."""
        if not isinstance(channel_id, str) or not channel_id.startswith("!"):
            raise not_found("Unknown channel")
        if await server_of_channel(self.hs, channel_id) is None:
            await joined_dm(self.hs, channel_id, user_id)  # 404 unless a DM the user is in
            return None, None, perms.ALL
        server, channel = await channel_for(self.hs, channel_id, user_id)
        if channel.kind != "voice":
            raise invalid_param("Not a voice channel")
        return server, channel, server.channel_permissions(user_id, channel)

    async def _write(self, actor: str, server: Server | None, room_id: str, user_id: str, content: dict) -> None:
        key = perms.member_state_key(user_id)
        if server is None:
            await self.hs.event_sender.send(actor, room_id, VOICE_STATE_EVENT, content, state_key=key)
        else:
            await _send_as(self.hs, actor, server.owner_id, room_id, VOICE_STATE_EVENT, content, state_key=key)

    # --- the user's own connection ------------------------------------------------------------

    async def join(self, user_id: str, device_id: str | None, channel_id: str, *, self_mute: bool = False,
                   self_deaf: bool = False) -> dict:
        self._require_configured()
        server, channel, bits = await self._voice_channel(user_id, channel_id)
        if server is not None and not perms.has_permissions(bits, int(P.CONNECT)):
            raise forbidden("Missing permission CONNECT")
        await self.leave_all(user_id, keep=channel_id)
        prior = (await self.states(channel_id)).get(user_id, {})
        # A rejoin keeps what moderators set.
        content = voice_state_content(self_mute=self_mute, self_deaf=self_deaf, mute=bool(prior.get("mute")),
                                      deaf=bool(prior.get("deaf")), session=device_id,
                                      joined_ts=self.hs.clock.time_ms())
        await self._write(user_id, server, channel_id, user_id, content)
        self.in_voice.add(user_id)
        profile = await self.hs.profiles_handler.member_content(user_id)
        cfg = self.hs.config.livekit
        token = client_token(cfg.api_key, cfg.api_secret, room=channel_id, identity=user_id,
                             name=profile.get("displayname") or user_id, grants=livekit_grants(bits, dm=server is None))
        log.info("voice join {user} {room}", user=user_id, room=channel_id)
        return {"token": token, "url": cfg.public_url, "room": channel_id,
                "voice_state": voice_state_json(server.room_id if server else None, channel_id, user_id, content)}

    async def update_self(self, user_id: str, channel_id: str, changes: dict) -> dict:
        server, channel, bits = await self._voice_channel(user_id, channel_id)
        prior = (await self.states(channel_id)).get(user_id)
        if prior is None:
            raise MatrixError(400, "M_BAD_STATE", "Not connected to this voice channel")
        if changes.get("streaming") and server is not None and not perms.has_permissions(bits, int(P.STREAM)):
            raise forbidden("Missing permission STREAM")
        content = {**prior, **{k: bool(v) for k, v in changes.items()}}
        await self._write(user_id, server, channel_id, user_id, content)
        return voice_state_json(server.room_id if server else None, channel_id, user_id, content)

    async def leave(self, user_id: str, channel_id: str) -> None:
        server, _channel, _bits = await self._voice_channel(user_id, channel_id)
        if user_id in await self.states(channel_id):
            await self._write(user_id, server, channel_id, user_id, {})

    async def disconnected(self, user_id: str) -> None:
        """The user's last gateway connection dropped: leave voice."""
        if user_id in self.in_voice:
            self.in_voice.discard(user_id)
            await self.leave_all(user_id)

    async def leave_all(self, user_id: str, keep: str | None = None) -> None:
        """Leave every voice channel the user is in (but ``keep``): one at a time."""
        for server in await user_servers(self.hs, user_id, with_channels=True):
            for channel in server.channels:
                if channel.kind != "voice" or channel.room_id == keep:
                    continue
                if user_id in await self.states(channel.room_id):
                    await self._write(user_id, server, channel.room_id, user_id, {})
                    await self._kick_from_livekit(channel.room_id, user_id)

    async def _kick_from_livekit(self, room_id: str, user_id: str) -> None:
        if not self.configured:
            return
        try:
            await self.room_service.remove(room_id, user_id)
        except MatrixError as error:
            log.warn("voice: LiveKit did not remove {user}: {why}", user=user_id, why=error.message)

    # --- moderation ---------------------------------------------------------------------------

    async def moderate(self, actor: str, server_id: str, target: str, *, mute: bool | None = None,
                       deaf: bool | None = None, move_to: str | None = None, disconnect: bool = False) -> dict:
        """Server mute / deafen (MUTE_MEMBERS / DEAFEN_MEMBERS), move or disconnect
        (MOVE_MEMBERS) someone in one of the server's voice channels: LiveKit first, then
        the state every client and instance reads."""
        self._require_configured()
        server = await load_server(self.hs, server_id)
        if server is None or not server.is_member(actor):
            raise not_found("Unknown server")
        where, prior = None, None
        for channel in server.channels:
            prior = (await self.states(channel.room_id)).get(target) if channel.kind == "voice" else None
            if prior is not None:
                where = channel
                break
        if where is None:
            raise MatrixError(400, "M_BAD_STATE", "That member is not in a voice channel of this server")
        bits = server.channel_permissions(actor, where)
        needed = (int(P.MUTE_MEMBERS) if mute is not None else 0) | (int(P.DEAFEN_MEMBERS) if deaf is not None else 0) \
            | (int(P.MOVE_MEMBERS) if move_to is not None or disconnect else 0)
        if not perms.has_permissions(bits, needed):
            raise forbidden(f"Missing permission {perms.P(needed & ~bits).name or needed}")
        if disconnect:
            await self.room_service.remove(where.room_id, target)
            await self._write(actor, server, where.room_id, target, {})
            return voice_state_json(server.room_id, where.room_id, target, {})
        if move_to is not None:
            destination = server.channel(move_to)
            if destination is None or destination.kind != "voice":
                raise invalid_param("channel_id must be a voice channel of this server")
            if not server.can_view(target, destination) or not perms.has_permissions(
                    server.channel_permissions(target, destination), int(P.CONNECT)):
                raise forbidden("The member may not connect to that channel")
            await self.room_service.move(where.room_id, target, destination.room_id)
            await self._write(actor, server, where.room_id, target, {})
            moved = {**prior, "joined_ts": self.hs.clock.time_ms()}
            await self._write(actor, server, destination.room_id, target, moved)
            return voice_state_json(server.room_id, destination.room_id, target, moved)
        content = dict(prior)
        if mute is not None:
            content["mute"] = bool(mute)
        if deaf is not None:
            content["deaf"] = bool(deaf)
        target_bits = server.channel_permissions(target, where)
        grants = livekit_grants(target_bits)
        await self.room_service.set_permissions(
            where.room_id, target, can_publish=grants["can_publish"] and not content.get("mute"),
            can_subscribe=not content.get("deaf"), sources=grants["can_publish_sources"])
        await self._write(actor, server, where.room_id, target, content)
        return voice_state_json(server.room_id, where.room_id, target, content)


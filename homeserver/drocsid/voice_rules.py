"""Voice state as room state, and who may change it. Pure: no I/O.

Who is in a voice channel is state of the channel's room: ``io.drocsid.voice_state``
keyed ``member:<user ID>`` (DESIGN.md §2), so every instance and every Matrix client sees
it. Content ``{}`` means "not connected". A user sets their own connection, self mute,
self deafen and streaming (connecting needs CONNECT, streaming STREAM); the server mute
and deafen are set by others holding MUTE_MEMBERS / DEAFEN_MEMBERS, and disconnecting
someone else needs MOVE_MEMBERS, as in Discord.
"""

from __future__ import annotations

from typing import Any, Mapping

from homeserver.drocsid import permissions as perms
from homeserver.drocsid.permissions import P

VOICE_STATE_EVENT = "io.drocsid.voice_state"
SELF_FIELDS = ("self_mute", "self_deaf", "streaming")
SERVER_FIELDS = ("mute", "deaf")
_FIELD_BITS = {"mute": P.MUTE_MEMBERS, "deaf": P.DEAFEN_MEMBERS}


def is_connected(content: Any) -> bool:
    return isinstance(content, Mapping) and content.get("connected") is True


def _flag(content: Any, name: str) -> bool:
    return isinstance(content, Mapping) and content.get(name) is True


def voice_state_content(*, self_mute: bool = False, self_deaf: bool = False, mute: bool = False,
                        deaf: bool = False, streaming: bool = False, session: str | None = None,
                        joined_ts: int | None = None) -> dict:
    content = {"connected": True, "self_mute": self_mute, "self_deaf": self_deaf, "mute": mute, "deaf": deaf,
               "streaming": streaming}
    if session:
        content["session"] = session
    if joined_ts is not None:
        content["joined_ts"] = joined_ts
    return content


def check_voice_state(sender: str, state_key: Any, content: Any, prior: Any, bits: int) -> str | None:
    """None when ``sender`` (holding channel ``bits``) may set this voice state, else why not."""
    target = perms.user_of_state_key(state_key)
    if target is None:
        return "voice state must be keyed member:<user ID>"
    if not isinstance(content, Mapping):
        return "voice state content must be an object"
    connected, was_connected = is_connected(content), is_connected(prior)
    if sender == target:
        if connected and not was_connected and not perms.has_permissions(bits, int(P.CONNECT)):
            return "missing permission CONNECT"
        if _flag(content, "streaming") and not _flag(prior, "streaming") and \
                not perms.has_permissions(bits, int(P.STREAM)):
            return "missing permission STREAM"
        # Reconnecting keeps the server mute and deafen others gave.
        for name in SERVER_FIELDS:
            if connected and _flag(content, name) != _flag(prior, name):
                return f"only moderators change {name}"
        return None
    # Someone else's state: disconnecting them, or their server mute / deafen.
    if not connected:
        return None if (not was_connected or perms.has_permissions(bits, int(P.MOVE_MEMBERS))) \
            else "missing permission MOVE_MEMBERS"
    if not was_connected:
        return "only the user connects themselves"
    for name in SELF_FIELDS + ("session",):
        if (content.get(name) if isinstance(content, Mapping) else None) != \
                (prior.get(name) if isinstance(prior, Mapping) else None):
            return f"only the user changes {name}"
    for name, bit in _FIELD_BITS.items():
        if _flag(content, name) != _flag(prior, name) and not perms.has_permissions(bits, int(bit)):
            return f"missing permission {bit.name}"
    return None


def livekit_grants(bits: int, *, dm: bool = False) -> dict:
    """What a LiveKit token for this channel may do: publish audio with SPEAK, share the
    screen (and camera) with STREAM; everyone may listen. In a DM everyone may do all."""
    speak = dm or perms.has_permissions(bits, int(P.SPEAK))
    stream = dm or perms.has_permissions(bits, int(P.STREAM))
    sources = (["microphone"] if speak else []) + (["camera", "screen_share", "screen_share_audio"] if stream else [])
    return {"can_publish": bool(sources), "can_publish_sources": sources, "can_subscribe": True,
            "can_publish_data": True}


def check_call_member(sender: str, state_key: Any, content: Any, bits: int) -> str | None:
    """Element Call's membership in a voice channel: one's own (the key names the sender,
    ``_@user:server_DEVICE`` or ``@user:server_DEVICE``), and joining needs CONNECT."""
    key = state_key[1:] if isinstance(state_key, str) and state_key.startswith("_@") else state_key
    if not isinstance(key, str) or not (key == sender or key.startswith(sender + "_")):
        return "a call membership names its sender"
    if isinstance(content, Mapping) and content and not perms.has_permissions(bits, int(P.CONNECT)):
        return "missing permission CONNECT"
    return None

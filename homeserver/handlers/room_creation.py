"""createRoom: the create event, the creator's join, power levels, the preset's rules,
initial state, name, topic and invites, in the order the specification gives."""

from __future__ import annotations

import secrets
import string
from typing import Any

from homeserver.events.room_versions import DEFAULT_ROOM_VERSION, RoomVersion
from homeserver.handlers.event_sender import EventSender
from homeserver.http.errors import MatrixError, invalid_param
from storage.stores.rooms import RoomStore

PRESETS = {
    "private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_access": "can_join"},
    "trusted_private_chat": {"join_rule": "invite", "history_visibility": "shared", "guest_access": "can_join"},
    "public_chat": {"join_rule": "public", "history_visibility": "shared", "guest_access": "forbidden"},
}

# State the creator sets first; initial_state may not override these (createRoom sets them).
_RESERVED_INITIAL_STATE = {("m.room.create", ""), ("m.room.power_levels", "")}


def default_power_levels(version: RoomVersion, creator: str, trusted_invitees: list[str]) -> dict[str, Any]:
    users: dict[str, int] = {}
    if not version.infinite_creator_power:
        users[creator] = 100
        for invitee in trusted_invitees:
            users[invitee] = 100
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": 100,
            "m.room.server_acl": 100, "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50, "kick": 50, "redact": 50, "invite": 0,
        "historical": 100,
        "notifications": {"room": 50},
    }


def _new_room_id(server_name: str) -> str:
    alphabet = string.ascii_letters
    return "!" + "".join(secrets.choice(alphabet) for _ in range(18)) + ":" + server_name


class RoomCreator:
    def __init__(self, server_name: str, sender: EventSender, rooms: RoomStore, clock, profile_content):
        self._server_name = server_name
        self._profile_content = profile_content
        self._sender = sender
        self._rooms = rooms
        self._clock = clock

    async def create_room(self, creator: str, *, version: RoomVersion | None = None, preset: str | None = None,
                          visibility: str = "private", name: str | None = None, topic: str | None = None,
                          invite: list[str] | None = None, initial_state: list[dict] | None = None,
                          creation_content: dict | None = None, power_level_content_override: dict | None = None,
                          alias_localpart: str | None = None, is_direct: bool = False) -> str:
        version = version or DEFAULT_ROOM_VERSION
        invite = list(dict.fromkeys(invite or []))
        if preset is None:
            preset = "public_chat" if visibility == "public" else "private_chat"
        if preset not in PRESETS:
            raise invalid_param(f"Unknown preset {preset}")
        rules = PRESETS[preset]
        trusted = invite if preset == "trusted_private_chat" else []

        alias = None
        if alias_localpart is not None:
            alias = f"#{alias_localpart}:{self._server_name}"
            if ":" in alias_localpart or not alias_localpart or any(c.isspace() for c in alias_localpart):
                raise invalid_param("Invalid room_alias_name")
            if await self._rooms.get_alias(alias) is not None:
                raise MatrixError(400, "M_ROOM_IN_USE", "Room alias already taken")

        create_content = dict(creation_content or {})
        create_content["room_version"] = version.identifier
        if not version.creator_from_sender:
            create_content["creator"] = creator
        if version.infinite_creator_power and trusted:
            extra = create_content.get("additional_creators") or []
            create_content["additional_creators"] = list(dict.fromkeys([*extra, *trusted]))
        create = await self._sender.create_room(
            version, creator, create_content,
            room_id=None if version.room_id_from_create else _new_room_id(self._server_name))
        room_id = create.room_id

        async def state(event_type: str, content: dict, state_key: str = "") -> None:
            await self._sender.send(creator, room_id, event_type, content, state_key=state_key)

        await state("m.room.member", {"membership": "join", **await self._profile_content(creator)}, creator)
        power_levels = default_power_levels(version, creator, trusted)
        if power_level_content_override:
            power_levels.update(power_level_content_override)
        await state("m.room.power_levels", power_levels)
        if alias is not None:
            await state("m.room.canonical_alias", {"alias": alias})
        given = {(e.get("type"), e.get("state_key", "")) for e in (initial_state or [])}
        if ("m.room.join_rules", "") not in given:
            await state("m.room.join_rules", {"join_rule": rules["join_rule"]})
        if ("m.room.history_visibility", "") not in given:
            await state("m.room.history_visibility", {"history_visibility": rules["history_visibility"]})
        if ("m.room.guest_access", "") not in given:
            await state("m.room.guest_access", {"guest_access": rules["guest_access"]})
        for entry in initial_state or []:
            key = (entry["type"], entry.get("state_key", ""))
            if key in _RESERVED_INITIAL_STATE:
                continue
            await state(entry["type"], entry.get("content", {}), entry.get("state_key", ""))
        if name is not None:
            await state("m.room.name", {"name": name})
        if topic is not None:
            await state("m.room.topic", {"topic": topic})
        if alias is not None:
            await self._rooms.create_alias(alias, room_id, creator, self._clock.time_ms())
        if visibility == "public":
            await self._rooms.set_room_public(room_id, True)
        for invitee in invite:
            content = {"membership": "invite"}
            if is_direct:
                content["is_direct"] = True
            await self._sender.send(creator, room_id, "m.room.member", content, state_key=invitee)
        return room_id

"""The room versions this server speaks, and every way they differ.

Code asks the ``RoomVersion`` of a room what to do (``version.redaction_rules``,
``version.room_id_from_create`` ...) instead of comparing version strings.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoomVersion:
    identifier: str
    # v10+: power-level values must be real integers, not numeric strings.
    integer_power_levels: bool
    # v10+: the knock_restricted join rule exists.
    knock_restricted: bool
    # v11+: the creator is the create event's sender; v10 needs content.creator.
    creator_from_sender: bool
    # Which redaction algorithm: "v9" (v10 uses it) or "v11".
    redaction_rules: str
    # v11+: m.room.redaction carries `redacts` in content, not at the top level.
    redacts_in_content: bool
    # v12: the room ID is "!" + the create event's reference hash; the create event has
    # no room_id and is never listed in auth_events.
    room_id_from_create: bool
    # v12: creators (create sender + additional_creators) have infinite power.
    infinite_creator_power: bool
    # State resolution: "v2" (v10, v11) or "v2.1" (v12: empty start, conflicted subgraph).
    state_res: str

    @property
    def create_in_auth_events(self) -> bool:
        return not self.room_id_from_create


V10 = RoomVersion("10", integer_power_levels=True, knock_restricted=True, creator_from_sender=False,
                  redaction_rules="v9", redacts_in_content=False, room_id_from_create=False,
                  infinite_creator_power=False, state_res="v2")
V11 = RoomVersion("11", integer_power_levels=True, knock_restricted=True, creator_from_sender=True,
                  redaction_rules="v11", redacts_in_content=True, room_id_from_create=False,
                  infinite_creator_power=False, state_res="v2")
V12 = RoomVersion("12", integer_power_levels=True, knock_restricted=True, creator_from_sender=True,
                  redaction_rules="v11", redacts_in_content=True, room_id_from_create=True,
                  infinite_creator_power=True, state_res="v2.1")

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {v.identifier: v for v in (V10, V11, V12)}
DEFAULT_ROOM_VERSION = V11


class UnsupportedRoomVersion(Exception):
    def __init__(self, identifier: str):
        super().__init__(f"Unsupported room version {identifier!r}")
        self.identifier = identifier


def room_version(identifier: str) -> RoomVersion:
    try:
        return KNOWN_ROOM_VERSIONS[identifier]
    except (KeyError, TypeError):
        raise UnsupportedRoomVersion(str(identifier)) from None

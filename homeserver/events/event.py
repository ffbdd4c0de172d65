"""``Event``: a PDU with its ID and the fields the rest of the code reads, at hand.

The wire dict is kept as it came (``pdu``); attributes are read from it once. Flags that
are ours and not the event's (rejected, soft-failed, outlier, stream position) live on
the object, never in the dict.
"""

from __future__ import annotations

from typing import Any

from homeserver.events.room_versions import RoomVersion


class Event:
    __slots__ = ("pdu", "event_id", "room_version", "room_id", "type", "state_key", "sender", "content",
                 "depth", "origin_server_ts", "prev_event_ids", "auth_event_ids", "rejected_reason",
                 "soft_failed", "outlier", "stream_ordering", "unsigned")

    def __init__(self, pdu: dict[str, Any], room_version: RoomVersion, event_id: str, room_id: str | None = None):
        self.pdu = pdu
        self.event_id = event_id
        self.room_version = room_version
        # A v12 create event has no room_id of its own: it is derived from the event ID.
        self.room_id = pdu.get("room_id") or room_id or ("!" + event_id[1:] if pdu.get("type") == "m.room.create"
                                                           and room_version.room_id_from_create else None)
        self.type = pdu["type"]
        self.state_key = pdu.get("state_key")
        self.sender = pdu["sender"]
        content = pdu.get("content")
        self.content = content if isinstance(content, dict) else {}
        self.depth = pdu.get("depth", 0)
        self.origin_server_ts = pdu.get("origin_server_ts", 0)
        self.prev_event_ids = list(pdu.get("prev_events", ()))
        self.auth_event_ids = list(pdu.get("auth_events", ()))
        self.rejected_reason: str | None = None
        self.soft_failed = False
        self.outlier = False
        self.stream_ordering: int | None = None
        self.unsigned: dict[str, Any] = {}

    def is_state(self) -> bool:
        return self.state_key is not None

    @property
    def state_tuple(self) -> tuple[str, str]:
        return (self.type, self.state_key)

    @property
    def membership(self) -> str | None:
        value = self.content.get("membership")
        return value if isinstance(value, str) else None

    @property
    def redacts(self) -> str | None:
        """The event a redaction redacts, wherever this room version keeps it."""
        if self.type != "m.room.redaction":
            return None
        if self.room_version.redacts_in_content:
            target = self.content.get("redacts")
        else:
            target = self.pdu.get("redacts")
        return target if isinstance(target, str) else None

    @property
    def rejected(self) -> bool:
        return self.rejected_reason is not None

    def origin_server(self) -> str:
        return self.sender.split(":", 1)[1]

    def __repr__(self) -> str:
        state = f" state_key={self.state_key!r}" if self.state_key is not None else ""
        return f"<Event {self.event_id} {self.type}{state} from {self.sender}>"

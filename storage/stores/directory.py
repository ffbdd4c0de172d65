"""Room discovery data: summaries of rooms from their current state (for the published
room directory and the space hierarchy), space children, and the user directory.

Summaries are read from ``current_state`` joined to the events, with redacted state
events pruned as clients would see them. The user directory tables are filled by the
discovery follower (``apply_directory_event_txn``, called from the search follower).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from homeserver.events.redaction import prune_event_dict
from homeserver.events.room_versions import UnsupportedRoomVersion, room_version
from storage.database import DatabasePool, Transaction

SUMMARY_STATE_TYPES = ("m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias",
                       "m.room.avatar", "m.room.join_rules", "m.room.history_visibility",
                       "m.room.guest_access", "m.room.encryption")


def _content(raw: str, version_id: str, redacted: bool) -> dict[str, Any]:
    pdu = json.loads(raw)
    if redacted:
        try:
            pdu = prune_event_dict(room_version(version_id), pdu)
        except UnsupportedRoomVersion:
            return {}
    content = pdu.get("content")
    return content if isinstance(content, dict) else {}


def _plain_topic(content: dict[str, Any]) -> str | None:
    topic = content.get("topic")
    if isinstance(topic, str):
        return topic
    blocks = content.get("m.topic")
    if isinstance(blocks, dict):
        blocks = blocks.get("m.text")
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, dict) and block.get("mimetype", "text/plain") == "text/plain" \
                    and isinstance(block.get("body"), str):
                return block["body"]
    return None


@dataclass
class RoomSummary:
    room_id: str
    room_version: str
    num_joined_members: int = 0
    # state type -> content of the (state_key "") event in the current state
    state: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _str(self, event_type: str, key: str) -> str | None:
        value = self.state.get(event_type, {}).get(key)
        return value if isinstance(value, str) and value else None

    @property
    def name(self) -> str | None:
        return self._str("m.room.name", "name")

    @property
    def topic(self) -> str | None:
        return _plain_topic(self.state.get("m.room.topic", {})) or None

    @property
    def canonical_alias(self) -> str | None:
        return self._str("m.room.canonical_alias", "alias")

    @property
    def avatar_url(self) -> str | None:
        return self._str("m.room.avatar", "url")

    @property
    def join_rule(self) -> str | None:
        return self._str("m.room.join_rules", "join_rule")

    @property
    def history_visibility(self) -> str:
        value = self._str("m.room.history_visibility", "history_visibility")
        return value if value in ("invited", "joined", "shared", "world_readable") else "shared"

    @property
    def world_readable(self) -> bool:
        return self.history_visibility == "world_readable"

    @property
    def guest_can_join(self) -> bool:
        return self._str("m.room.guest_access", "guest_access") == "can_join"

    @property
    def room_type(self) -> str | None:
        return self._str("m.room.create", "type")

    @property
    def encryption(self) -> str | None:
        return self._str("m.room.encryption", "algorithm")

    @property
    def allowed_room_ids(self) -> list[str]:
        """For restricted join rules: the rooms whose members may join."""
        allow = self.state.get("m.room.join_rules", {}).get("allow")
        if not isinstance(allow, list):
            return []
        return [entry["room_id"] for entry in allow
                if isinstance(entry, dict) and entry.get("type") == "m.room_membership"
                and isinstance(entry.get("room_id"), str)]

    def chunk(self) -> dict[str, Any]:
        """The PublishedRoomsChunk / room summary fields a client sees."""
        body: dict[str, Any] = {"room_id": self.room_id, "num_joined_members": self.num_joined_members,
                                "world_readable": self.world_readable, "guest_can_join": self.guest_can_join}
        for key in ("name", "topic", "canonical_alias", "avatar_url", "join_rule", "room_type"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body


@dataclass(frozen=True)
class ChildLink:
    """An m.space.child event in the current state of a space."""
    room_id: str  # the child (the state key)
    sender: str
    origin_server_ts: int
    content: dict[str, Any]

    @property
    def valid(self) -> bool:
        via = self.content.get("via")
        return isinstance(via, list) and bool(via) and all(isinstance(v, str) for v in via)

    @property
    def suggested(self) -> bool:
        return self.content.get("suggested") is True

    @property
    def order(self) -> str | None:
        order = self.content.get("order")
        if isinstance(order, str) and len(order) <= 50 and all("\x20" <= c <= "\x7e" for c in order):
            return order
        return None

    def sort_key(self) -> tuple:
        """The specification's order: valid ``order`` first (by code point), then the
        event's timestamp, then the room ID."""
        order = self.order
        return (0, order, self.origin_server_ts, self.room_id) if order is not None else \
            (1, "", self.origin_server_ts, self.room_id)

    def stripped(self) -> dict[str, Any]:
        return {"type": "m.space.child", "state_key": self.room_id, "content": self.content,
                "sender": self.sender, "origin_server_ts": self.origin_server_ts}


def _placeholders(values) -> str:
    return ",".join("?" * len(values))


def room_summaries_txn(txn: Transaction, room_ids: list[str]) -> dict[str, RoomSummary]:
    summaries: dict[str, RoomSummary] = {}
    for start in range(0, len(room_ids), 500):
        chunk = room_ids[start:start + 500]
        marks = _placeholders(chunk)
        for room_id, version in txn.select_all(
                f"SELECT room_id, room_version FROM rooms WHERE room_id IN ({marks})", chunk):
            summaries[room_id] = RoomSummary(room_id, version)
        rows = txn.select_all(
            "SELECT cs.room_id, cs.type, e.json,"
            " EXISTS (SELECT 1 FROM event_redactions x WHERE x.redacts = cs.event_id)"
            " FROM current_state cs JOIN events e ON e.event_id = cs.event_id"
            f" WHERE cs.room_id IN ({marks}) AND cs.state_key = ''"
            f" AND cs.type IN ({_placeholders(SUMMARY_STATE_TYPES)})", [*chunk, *SUMMARY_STATE_TYPES])
        for room_id, event_type, raw, redacted in rows:
            summary = summaries.get(room_id)
            if summary is not None:
                summary.state[event_type] = _content(raw, summary.room_version, bool(redacted))
        for room_id, count in txn.select_all(
                "SELECT room_id, COUNT(*) FROM current_state WHERE type = 'm.room.member' AND membership = 'join'"
                f" AND room_id IN ({marks}) GROUP BY room_id", chunk):
            if room_id in summaries:
                summaries[room_id].num_joined_members = count
    return summaries


def space_children_txn(txn: Transaction, room_id: str) -> list[ChildLink]:
    """The space's valid children (a ``via`` list), in the specification's order."""
    row = txn.select_one("SELECT room_version FROM rooms WHERE room_id = ?", (room_id,))
    if row is None:
        return []
    links = []
    for state_key, sender, ts, raw, redacted in txn.select_all(
            "SELECT cs.state_key, e.sender, e.origin_server_ts, e.json,"
            " EXISTS (SELECT 1 FROM event_redactions x WHERE x.redacts = cs.event_id)"
            " FROM current_state cs JOIN events e ON e.event_id = cs.event_id"
            " WHERE cs.room_id = ? AND cs.type = 'm.space.child'", (room_id,)):
        link = ChildLink(state_key, sender, ts, _content(raw, row[0], bool(redacted)))
        if link.valid and state_key.startswith("!"):
            links.append(link)
    return sorted(links, key=ChildLink.sort_key)


# -- the user directory --------------------------------------------------------------------

def _is_public_for_directory_txn(txn: Transaction, room_id: str) -> bool:
    rows = txn.select_all(
        "SELECT cs.type, e.json FROM current_state cs JOIN events e ON e.event_id = cs.event_id"
        " WHERE cs.room_id = ? AND cs.state_key = '' AND cs.type IN ('m.room.join_rules', 'm.room.history_visibility')"
        " AND NOT EXISTS (SELECT 1 FROM event_redactions x WHERE x.redacts = cs.event_id)", (room_id,))
    for event_type, raw in rows:
        content = json.loads(raw).get("content") or {}
        if event_type == "m.room.join_rules" and content.get("join_rule") == "public":
            return True
        if event_type == "m.room.history_visibility" and content.get("history_visibility") == "world_readable":
            return True
    return False


def _upsert_user_txn(txn: Transaction, user_id: str, display_name: Any, avatar_url: Any) -> None:
    display_name = display_name.replace("\x00", "") if isinstance(display_name, str) and display_name else None
    avatar_url = avatar_url if isinstance(avatar_url, str) and avatar_url else None
    txn.execute(
        "INSERT INTO user_directory (user_id, display_name, avatar_url, user_id_lower, display_name_lower)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET display_name = excluded.display_name,"
        " avatar_url = excluded.avatar_url, user_id_lower = excluded.user_id_lower,"
        " display_name_lower = excluded.display_name_lower",
        (user_id, display_name, avatar_url, user_id.casefold(), display_name.casefold() if display_name else None))


def apply_directory_event_txn(txn: Transaction, server_name: str, room_id: str, event_type: str,
                              state_key: str | None, content: dict[str, Any]) -> None:
    """Keep the user directory in step with one (followed) event."""
    if event_type == "m.room.member" and state_key and content.get("membership") == "join":
        if state_key.endswith(":" + server_name):
            # Local users: the profile is the truth (joins copy it, per-room names aside).
            # With no profile row at all the profile API answers the localpart; so do we.
            row = txn.select_one("SELECT displayname, avatar_url FROM profiles WHERE user_id = ?", (state_key,))
            if row is None:
                row = (state_key[1:].split(":", 1)[0], None)
            _upsert_user_txn(txn, state_key, row[0], row[1])
        else:
            _upsert_user_txn(txn, state_key, content.get("displayname"), content.get("avatar_url"))
    elif event_type in ("m.room.join_rules", "m.room.history_visibility") and state_key == "":
        if _is_public_for_directory_txn(txn, room_id):
            txn.execute("INSERT INTO user_directory_public_rooms (room_id) VALUES (?) ON CONFLICT DO NOTHING",
                        (room_id,))
        else:
            txn.execute("DELETE FROM user_directory_public_rooms WHERE room_id = ?", (room_id,))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class DirectoryUser:
    user_id: str
    display_name: str | None
    avatar_url: str | None


def search_users_txn(txn: Transaction, searcher: str, words: list[str], term: str, limit: int) -> list[DirectoryUser]:
    """Users sharing a joined room with ``searcher`` or joined to a public room, whose
    user ID or display name contains every word; exact matches first, then prefixes of
    the name or localpart, then prefixes of a later word of the name, then the rest."""
    like = "LIKE ? ESCAPE '\\'"
    conditions, args = [], []
    for word in words:
        pattern = f"%{_like_escape(word)}%"
        conditions.append(f"(d.user_id_lower {like} OR d.display_name_lower {like})")
        args += [pattern, pattern]
    escaped = _like_escape(term)
    rank = (f"CASE WHEN d.display_name_lower = ? OR d.user_id_lower = ? OR d.user_id_lower {like} THEN 0"
            f" WHEN d.display_name_lower {like} OR d.user_id_lower {like} THEN 1"
            f" WHEN d.display_name_lower {like} THEN 2 ELSE 3 END")
    rank_args = [term, term, f"@{escaped}:%", f"{escaped}%", f"@{escaped}%", f"% {escaped}%"]
    sql = (
        f"SELECT d.user_id, d.display_name, d.avatar_url, {rank} AS rank FROM user_directory d"
        " WHERE (d.user_id IN (SELECT m.state_key FROM current_state m WHERE m.type = 'm.room.member'"
        " AND m.membership = 'join' AND m.room_id IN (SELECT o.room_id FROM current_state o"
        " WHERE o.type = 'm.room.member' AND o.state_key = ? AND o.membership = 'join'))"
        " OR d.user_id IN (SELECT m.state_key FROM current_state m JOIN user_directory_public_rooms p"
        " ON p.room_id = m.room_id WHERE m.type = 'm.room.member' AND m.membership = 'join'))"
        " AND NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = d.user_id AND u.deactivated)"
        + "".join(f" AND {c}" for c in conditions)
        + " ORDER BY rank, COALESCE(d.display_name_lower, d.user_id_lower), d.user_id LIMIT ?")
    rows = txn.select_all(sql, [*rank_args, searcher, *args, limit])
    return [DirectoryUser(r[0], r[1], r[2]) for r in rows]


class DirectoryStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def published_room_ids(self) -> list[str]:
        rows = await self.db.run_interaction("published_rooms", lambda txn: txn.select_all(
            "SELECT room_id FROM rooms WHERE is_public ORDER BY room_id"))
        return [r[0] for r in rows]

    async def room_summaries(self, room_ids: list[str]) -> dict[str, RoomSummary]:
        if not room_ids:
            return {}
        return await self.db.run_interaction("room_summaries", room_summaries_txn, list(room_ids))

    async def space_children(self, room_id: str) -> list[ChildLink]:
        return await self.db.run_interaction("space_children", space_children_txn, room_id)

    async def aliases_of_rooms(self, room_ids: list[str]) -> dict[str, list[str]]:
        if not room_ids:
            return {}

        def txn_func(txn: Transaction) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for start in range(0, len(room_ids), 500):
                chunk = room_ids[start:start + 500]
                for alias, room_id in txn.select_all(
                        f"SELECT alias, room_id FROM room_aliases WHERE room_id IN ({_placeholders(chunk)})"
                        " ORDER BY alias", chunk):
                    found.setdefault(room_id, []).append(alias)
            return found
        return await self.db.run_interaction("aliases_of_rooms", txn_func)

    async def search_users(self, searcher: str, words: list[str], term: str, limit: int) -> list[DirectoryUser]:
        return await self.db.run_interaction("search_user_directory", search_users_txn, searcher, words, term,
                                             limit)

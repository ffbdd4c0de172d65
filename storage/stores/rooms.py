"""Rooms: their versions, current state, forward extremities, memberships, aliases,
transaction IDs of sends and forgotten rooms."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction
from storage.stores.state import StateKey


@dataclass(frozen=True)
class RoomHead:
    """What a new event in the room is built on."""
    room_version: str
    extremities: list[str]
    current_state: dict[StateKey, str]
    max_depth: int


def insert_room_txn(txn: Transaction, room_id: str, version: str, creator: str, is_public: bool, now: int) -> bool:
    txn.execute("INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (room_id) DO NOTHING", (room_id, version, creator, is_public, now))
    return txn.rowcount == 1


def _room_head_txn(txn: Transaction, room_id: str) -> RoomHead | None:
    row = txn.select_one("SELECT room_version FROM rooms WHERE room_id = ?", (room_id,))
    if row is None:
        return None
    extremities = [r[0] for r in txn.select_all(
        "SELECT event_id FROM event_forward_extremities WHERE room_id = ? ORDER BY event_id", (room_id,))]
    state = {(r[0], r[1]): r[2] for r in txn.select_all(
        "SELECT type, state_key, event_id FROM current_state WHERE room_id = ?", (room_id,))}
    depth = txn.select_one("SELECT COALESCE(MAX(depth), 0) FROM events WHERE room_id = ?", (room_id,))[0]
    return RoomHead(row[0], extremities, state, depth)


class RoomStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def get_room_head(self, room_id: str) -> RoomHead | None:
        return await self.db.run_interaction("get_room_head", _room_head_txn, room_id)

    async def store_room(self, room_id: str, version: str, creator: str, is_public: bool, now: int) -> bool:
        return await self.db.run_interaction("store_room", insert_room_txn, room_id, version, creator, is_public, now)

    async def set_room_public(self, room_id: str, is_public: bool) -> None:
        await self.db.run_interaction("set_room_public", lambda txn: txn.execute(
            "UPDATE rooms SET is_public = ? WHERE room_id = ?", (is_public, room_id)))

    async def is_room_public(self, room_id: str) -> bool:
        row = await self.db.run_interaction("is_room_public", lambda txn: txn.select_one(
            "SELECT is_public FROM rooms WHERE room_id = ?", (room_id,)))
        return bool(row and row[0])

    async def get_rooms_for_user(self, user_id: str, membership: str = "join") -> list[str]:
        rows = await self.db.run_interaction("rooms_for_user", lambda txn: txn.select_all(
            "SELECT room_id FROM current_state WHERE state_key = ? AND membership = ? AND type = 'm.room.member'"
            " ORDER BY room_id", (user_id, membership)))
        return [r[0] for r in rows]

    async def get_memberships_of_user(self, user_id: str) -> dict[str, tuple[str, str]]:
        """room_id -> (membership, member event ID) for every room the user has a member event in."""
        rows = await self.db.run_interaction("memberships_of_user", lambda txn: txn.select_all(
            "SELECT room_id, membership, event_id FROM current_state WHERE state_key = ? AND type = 'm.room.member'",
            (user_id,)))
        return {r[0]: (r[1], r[2]) for r in rows}

    async def users_sharing_rooms(self, user_id: str) -> set[str]:
        """Everyone joined to a room the user is joined to (the user included), in one query."""
        rows = await self.db.run_interaction("users_sharing_rooms", lambda txn: txn.select_all(
            "SELECT DISTINCT other.state_key FROM current_state mine JOIN current_state other"
            " ON other.room_id = mine.room_id WHERE mine.type = 'm.room.member' AND mine.state_key = ?"
            " AND mine.membership = 'join' AND other.type = 'm.room.member' AND other.membership = 'join'",
            (user_id,)))
        return {r[0] for r in rows} | {user_id}

    async def forgotten_rooms(self, user_id: str) -> set[str]:
        rows = await self.db.run_interaction("forgotten_rooms", lambda txn: txn.select_all(
            "SELECT room_id FROM room_forgotten WHERE user_id = ?", (user_id,)))
        return {r[0] for r in rows}

    async def get_members(self, room_id: str) -> dict[str, tuple[str, str]]:
        """user_id -> (membership, event_id) from the current state."""
        rows = await self.db.run_interaction("room_members", lambda txn: txn.select_all(
            "SELECT state_key, membership, event_id FROM current_state WHERE room_id = ? AND type = 'm.room.member'",
            (room_id,)))
        return {r[0]: (r[1], r[2]) for r in rows}

    # -- aliases ------------------------------------------------------------------------

    async def create_alias(self, alias: str, room_id: str, creator: str, now: int) -> bool:
        def txn_func(txn: Transaction) -> bool:
            txn.execute("INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (alias) DO NOTHING", (alias, room_id, creator, now))
            return txn.rowcount == 1
        return await self.db.run_interaction("create_alias", txn_func)

    async def get_alias(self, alias: str) -> tuple[str, str] | None:
        """(room_id, creator) of an alias."""
        row = await self.db.run_interaction("get_alias", lambda txn: txn.select_one(
            "SELECT room_id, creator FROM room_aliases WHERE alias = ?", (alias,)))
        return (row[0], row[1]) if row else None

    async def delete_alias(self, alias: str) -> None:
        await self.db.run_interaction("delete_alias", lambda txn: txn.execute(
            "DELETE FROM room_aliases WHERE alias = ?", (alias,)))

    async def get_aliases_for_room(self, room_id: str) -> list[str]:
        rows = await self.db.run_interaction("room_aliases", lambda txn: txn.select_all(
            "SELECT alias FROM room_aliases WHERE room_id = ? ORDER BY alias", (room_id,)))
        return [r[0] for r in rows]

    async def txn_keys_for_events(self, user_id: str, device_id: str, event_ids: list[str]) -> dict[str, str]:
        """event_id -> txn_key for the events this device sent with a transaction ID."""
        if not event_ids:
            return {}
        placeholders = ",".join("?" * len(event_ids))
        rows = await self.db.run_interaction("txn_keys_for_events", lambda txn: txn.select_all(
            f"SELECT event_id, txn_key FROM event_txn_ids WHERE user_id = ? AND device_id = ?"
            f" AND event_id IN ({placeholders})", [user_id, device_id, *event_ids]))
        return {r[0]: r[1] for r in rows}

    async def recent_txn_ids(self, since_ms: int) -> list[tuple[str, str, str, str]]:
        return await self.db.run_interaction("recent_txn_ids", lambda txn: txn.select_all(
            "SELECT user_id, device_id, txn_key, event_id FROM event_txn_ids WHERE created_ts >= ?", (since_ms,)))

    # -- forgetting ------------------------------------------------------------------------

    async def forget(self, user_id: str, room_id: str) -> None:
        await self.db.run_interaction("forget_room", lambda txn: txn.execute(
            "INSERT INTO room_forgotten (user_id, room_id) VALUES (?, ?) ON CONFLICT DO NOTHING", (user_id, room_id)))

    async def unforget(self, user_id: str, room_id: str) -> None:
        await self.db.run_interaction("unforget_room", lambda txn: txn.execute(
            "DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?", (user_id, room_id)))

    async def is_forgotten(self, user_id: str, room_id: str) -> bool:
        row = await self.db.run_interaction("is_forgotten", lambda txn: txn.select_one(
            "SELECT 1 FROM room_forgotten WHERE user_id = ? AND room_id = ?", (user_id, room_id)))
        return row is not None


def record_txn_id_txn(txn: Transaction, user_id: str, device_id: str, txn_key: str, event_id: str, now: int) -> None:
    txn.execute("INSERT INTO event_txn_ids (user_id, device_id, txn_key, event_id, created_ts) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING", (user_id, device_id, txn_key, event_id, now))

"""Profiles (display name and avatar) and the filters clients upload."""

from __future__ import annotations

import json

from storage.database import DatabasePool, Transaction


class ProfileStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def get(self, user_id: str) -> tuple[str | None, str | None] | None:
        row = await self.db.run_interaction("get_profile", lambda txn: txn.select_one(
            "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?", (user_id,)))
        return (row[0], row[1]) if row else None

    async def set_field(self, user_id: str, field_name: str, value: str | None) -> None:
        if field_name not in ("displayname", "avatar_url"):
            raise ValueError(field_name)

        def txn_func(txn: Transaction) -> None:
            txn.execute("INSERT INTO profiles (user_id) VALUES (?) ON CONFLICT (user_id) DO NOTHING", (user_id,))
            txn.execute(f"UPDATE profiles SET {field_name} = ? WHERE user_id = ?", (value, user_id))
        await self.db.run_interaction("set_profile", txn_func)


class FilterStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def add(self, user_id: str, definition: dict) -> int:
        raw = json.dumps(definition)

        def txn_func(txn: Transaction) -> int:
            filter_id = txn.select_one("SELECT COALESCE(MAX(filter_id), -1) + 1 FROM user_filters WHERE user_id = ?",
                                       (user_id,))[0]
            txn.execute("INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)",
                        (user_id, filter_id, raw))
            return filter_id
        return await self.db.run_interaction("add_filter", txn_func)

    async def get(self, user_id: str, filter_id: int) -> dict | None:
        row = await self.db.run_interaction("get_filter", lambda txn: txn.select_one(
            "SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?", (user_id, filter_id)))
        return json.loads(row[0]) if row else None

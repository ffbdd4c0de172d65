"""Account data, global and per room (m.direct, m.ignored_user_list, tags, ...)."""

from __future__ import annotations

import json

from storage.database import DatabasePool, Transaction
from storage.stores.streams import max_stream_id_txn, next_stream_id_txn


class AccountDataStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def put(self, user_id: str, room_id: str, data_type: str, content: dict) -> int:
        raw = json.dumps(content)

        def txn_func(txn: Transaction) -> int:
            stream_id = next_stream_id_txn(txn, "account_data")
            txn.execute("INSERT INTO account_data (user_id, room_id, type, content, stream_id) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT (user_id, room_id, type) DO UPDATE SET content = excluded.content,"
                        " stream_id = excluded.stream_id", (user_id, room_id, data_type, raw, stream_id))
            return stream_id
        return await self.db.run_interaction("put_account_data", txn_func)

    async def get(self, user_id: str, room_id: str, data_type: str) -> dict | None:
        row = await self.db.run_interaction("get_account_data", lambda txn: txn.select_one(
            "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND type = ?",
            (user_id, room_id, data_type)))
        return json.loads(row[0]) if row else None

    async def changed_since(self, user_id: str, since: int) -> list[tuple[str, str, dict]]:
        """(room_id, type, content) of the user's account data newer than ``since``."""
        rows = await self.db.run_interaction("account_data_since", lambda txn: txn.select_all(
            "SELECT room_id, type, content FROM account_data WHERE user_id = ? AND stream_id > ?"
            " ORDER BY stream_id", (user_id, since)))
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    async def max_stream_id(self) -> int:
        return await self.db.run_interaction("account_data_max", max_stream_id_txn, "account_data")

"""Presence rows: state, status message, last activity, and the stream position."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction
from storage.stores.streams import max_stream_id_txn, next_stream_id_txn


@dataclass(frozen=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    stream_id: int


class PresenceStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def put(self, user_id: str, state: str, status_msg: str | None, last_active_ts: int) -> int:
        def txn_func(txn: Transaction) -> int:
            stream_id = next_stream_id_txn(txn, "presence")
            txn.execute("INSERT INTO presence (user_id, state, status_msg, last_active_ts, stream_id)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE SET state = excluded.state,"
                        " status_msg = excluded.status_msg, last_active_ts = excluded.last_active_ts,"
                        " stream_id = excluded.stream_id", (user_id, state, status_msg, last_active_ts, stream_id))
            return stream_id
        return await self.db.run_interaction("put_presence", txn_func)

    async def get(self, user_ids: list[str], since: int = 0) -> list[PresenceRow]:
        if not user_ids:
            return []

        def txn_func(txn: Transaction) -> list[PresenceRow]:
            found = []
            for offset in range(0, len(user_ids), 500):
                chunk = user_ids[offset:offset + 500]
                placeholders = ",".join("?" * len(chunk))
                found += [PresenceRow(*r) for r in txn.select_all(
                    "SELECT user_id, state, status_msg, last_active_ts, stream_id FROM presence"
                    f" WHERE user_id IN ({placeholders}) AND stream_id > ?", [*chunk, since])]
            return found
        return await self.db.run_interaction("get_presence", txn_func)

    async def max_stream_id(self) -> int:
        return await self.db.run_interaction("presence_max", max_stream_id_txn, "presence")

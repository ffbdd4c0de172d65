"""Read receipts: the latest receipt per (room, type, user, thread)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction
from storage.stores.streams import max_stream_id_txn, next_stream_id_txn


@dataclass(frozen=True)
class Receipt:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str
    event_id: str
    ts: int


class ReceiptStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def put(self, receipt: Receipt) -> int:
        def txn_func(txn: Transaction) -> int:
            stream_id = next_stream_id_txn(txn, "receipts")
            txn.execute(
                "INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, ts, stream_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room_id, receipt_type, user_id, thread_id)"
                " DO UPDATE SET event_id = excluded.event_id, ts = excluded.ts, stream_id = excluded.stream_id",
                (receipt.room_id, receipt.receipt_type, receipt.user_id, receipt.thread_id, receipt.event_id,
                 receipt.ts, stream_id))
            return stream_id
        return await self.db.run_interaction("put_receipt", txn_func)

    async def for_rooms(self, room_ids: list[str], since: int = 0) -> list[Receipt]:
        """Receipts in these rooms newer than ``since`` (all of them for 0)."""
        if not room_ids:
            return []

        def txn_func(txn: Transaction) -> list[Receipt]:
            found = []
            for offset in range(0, len(room_ids), 500):
                chunk = room_ids[offset:offset + 500]
                placeholders = ",".join("?" * len(chunk))
                found += [Receipt(*row) for row in txn.select_all(
                    "SELECT room_id, receipt_type, user_id, thread_id, event_id, ts FROM receipts"
                    f" WHERE room_id IN ({placeholders}) AND stream_id > ? ORDER BY stream_id", [*chunk, since])]
            return found
        return await self.db.run_interaction("receipts_for_rooms", txn_func)

    async def max_stream_id(self) -> int:
        return await self.db.run_interaction("receipts_max", max_stream_id_txn, "receipts")

"""Application-service queues: each service's position in the event stream and the
transactions queued for it (persisted before any push, deleted once delivered)."""

from __future__ import annotations

import json

from storage.database import DatabasePool, Transaction


class AppServiceStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def get_position(self, service_id: str) -> int | None:
        row = await self.db.run_interaction("appservice_position", lambda txn: txn.select_one(
            "SELECT stream_position FROM appservice_streams WHERE service_id = ?", (service_id,)))
        return row[0] if row else None

    async def init_position(self, service_id: str, position: int) -> int:
        """The stored position, or ``position`` stored as the start of a new service."""
        def txn_func(txn: Transaction) -> int:
            txn.execute("INSERT INTO appservice_streams (service_id, stream_position, last_txn_id) VALUES (?, ?, 0)"
                        " ON CONFLICT (service_id) DO NOTHING", (service_id, position))
            return txn.select_one("SELECT stream_position FROM appservice_streams WHERE service_id = ?",
                                  (service_id,))[0]
        return await self.db.run_interaction("appservice_init_position", txn_func)

    async def advance_position(self, service_id: str, position: int) -> None:
        await self.db.run_interaction("appservice_advance", lambda txn: txn.execute(
            "UPDATE appservice_streams SET stream_position = ? WHERE service_id = ? AND stream_position < ?",
            (position, service_id, position)))

    async def queue_transaction(self, service_id: str, position: int, body: dict, now: int) -> int:
        """Store a transaction with the service's next ID and move its position to
        ``position``, together; the new transaction's ID."""
        text = json.dumps(body)

        def txn_func(txn: Transaction) -> int:
            row = txn.select_one("SELECT last_txn_id FROM appservice_streams WHERE service_id = ?", (service_id,))
            txn_id = (row[0] if row else 0) + 1
            txn.execute("INSERT INTO appservice_txns (service_id, txn_id, body, created_ts) VALUES (?, ?, ?, ?)",
                        (service_id, txn_id, text, now))
            txn.execute("UPDATE appservice_streams SET last_txn_id = ?,"
                        " stream_position = CASE WHEN stream_position < ? THEN ? ELSE stream_position END"
                        " WHERE service_id = ?", (txn_id, position, position, service_id))
            return txn_id
        return await self.db.run_interaction("appservice_queue_txn", txn_func)

    async def oldest_transaction(self, service_id: str) -> tuple[int, dict] | None:
        row = await self.db.run_interaction("appservice_oldest_txn", lambda txn: txn.select_one(
            "SELECT txn_id, body FROM appservice_txns WHERE service_id = ? ORDER BY txn_id LIMIT 1", (service_id,)))
        return (row[0], json.loads(row[1])) if row else None

    async def count_transactions(self, service_id: str) -> int:
        row = await self.db.run_interaction("appservice_count_txns", lambda txn: txn.select_one(
            "SELECT COUNT(*) FROM appservice_txns WHERE service_id = ?", (service_id,)))
        return row[0]

    async def complete_transaction(self, service_id: str, txn_id: int) -> None:
        await self.db.run_interaction("appservice_complete_txn", lambda txn: txn.execute(
            "DELETE FROM appservice_txns WHERE service_id = ? AND txn_id = ?", (service_id, txn_id)))

    async def events_after(self, position: int, limit: int) -> list[tuple[int, str]]:
        """(stream ordering, event ID) of the room events after ``position``, in order."""
        return [(r[0], r[1]) for r in await self.db.run_interaction("appservice_events_after", lambda txn: txn.select_all(
            "SELECT stream_ordering, event_id FROM events WHERE stream_ordering > ? AND NOT outlier"
            " AND NOT soft_failed AND rejected_reason IS NULL ORDER BY stream_ordering LIMIT ?", (position, limit)))]

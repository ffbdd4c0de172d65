"""Send-to-device messages: an inbox per recipient device, read by its /sync.

Each message gets its own ID of the ``to_device`` stream (a counter, see
``storage.stores.e2e_keys``). A device's messages stay until it syncs with a token at or
past them, which acknowledges them; then they are deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from storage.database import DatabasePool, Transaction
from storage.stores.e2e_keys import encode, next_stream_ids_txn

# A retried /sendToDevice comes within minutes; a day of transaction IDs covers that.
TXN_LIFETIME_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class ToDeviceMessage:
    stream_id: int
    sender: str
    type: str
    content: dict

    def to_json(self) -> dict:
        return {"sender": self.sender, "type": self.type, "content": self.content}


class ToDeviceStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def send(self, sender: str, sender_device: str, txn_id: str, event_type: str,
                   messages: list[tuple[str, str, dict]], now: int) -> dict[str, int] | None:
        """Queue ``(recipient user, device ID or '*', content)`` messages for local devices.

        '*' means every device the user has; messages to unknown devices are dropped.
        Returns recipient user -> the highest stream ID queued for them, or None when this
        device already sent ``txn_id`` (nothing is queued again)."""
        def txn_func(txn: Transaction) -> dict[str, int] | None:
            txn.execute("DELETE FROM device_inbox_txns WHERE user_id = ? AND device_id = ? AND ts < ?",
                        (sender, sender_device, now - TXN_LIFETIME_MS))
            txn.execute("INSERT INTO device_inbox_txns (user_id, device_id, txn_id, ts) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (user_id, device_id, txn_id) DO NOTHING", (sender, sender_device, txn_id, now))
            if txn.rowcount != 1:
                return None
            devices_of: dict[str, list[str]] = {}
            rows: list[tuple[str, str, str]] = []
            for user_id, device_id, content in messages:
                if user_id not in devices_of:
                    devices_of[user_id] = [r[0] for r in txn.select_all(
                        "SELECT device_id FROM devices WHERE user_id = ? ORDER BY device_id", (user_id,))]
                targets = devices_of[user_id] if device_id == "*" else \
                    [device_id] if device_id in devices_of[user_id] else []
                raw = encode(content)
                rows += [(user_id, target, raw) for target in targets]
            if not rows:
                return {}
            last = next_stream_ids_txn(txn, "to_device", len(rows))
            first = last - len(rows) + 1
            positions: dict[str, int] = {}
            txn.execute_many(
                "INSERT INTO device_inbox (user_id, device_id, stream_id, sender, type, content)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(user_id, device_id, first + i, sender, event_type, raw)
                 for i, (user_id, device_id, raw) in enumerate(rows)])
            for i, (user_id, _, _) in enumerate(rows):
                positions[user_id] = first + i
            return positions
        return await self.db.run_interaction("send_to_device", txn_func)

    async def take(self, user_id: str, device_id: str, acknowledged: int, after: int,
                   upto: int) -> list[ToDeviceMessage]:
        """Delete the device's messages up to ``acknowledged``, then return those in
        (after, upto], oldest first."""
        def txn_func(txn: Transaction) -> list[ToDeviceMessage]:
            if acknowledged > 0:
                txn.execute("DELETE FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id <= ?",
                            (user_id, device_id, acknowledged))
            if upto <= after:
                return []
            rows = txn.select_all(
                "SELECT stream_id, sender, type, content FROM device_inbox WHERE user_id = ? AND device_id = ?"
                " AND stream_id > ? AND stream_id <= ? ORDER BY stream_id", (user_id, device_id, after, upto))
            return [ToDeviceMessage(r[0], r[1], r[2], json.loads(r[3])) for r in rows]
        return await self.db.run_interaction("take_to_device", txn_func)

    async def pending_count(self, user_id: str, device_id: str) -> int:
        row = await self.db.run_interaction("to_device_pending", lambda txn: txn.select_one(
            "SELECT COUNT(*) FROM device_inbox WHERE user_id = ? AND device_id = ?", (user_id, device_id)))
        return int(row[0])

    async def stream_position(self) -> int:
        row = await self.db.run_interaction("to_device_position", lambda txn: txn.select_one(
            "SELECT position FROM e2e_stream_positions WHERE stream = 'to_device'"))
        return int(row[0])

"""Devices: one row per logged-in session of a user."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction
from storage.stores.e2e_keys import delete_device_keys_txn
from storage.stores.tokens import delete_device_tokens_txn


@dataclass(frozen=True)
class DeviceRecord:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None

    def to_json(self) -> dict:
        return {"device_id": self.device_id, "display_name": self.display_name,
                "last_seen_ts": self.last_seen_ts, "last_seen_ip": self.last_seen_ip}


_COLUMNS = "user_id, device_id, display_name, last_seen_ts, last_seen_ip"


def upsert_device_txn(txn: Transaction, user_id: str, device_id: str, display_name: str | None,
                      now_ms: int, ip: str | None) -> None:
    """Create the device, or keep it (and its keys) when a client logs in again with it."""
    txn.execute(
        "INSERT INTO devices (user_id, device_id, display_name, created_ts, last_seen_ts, last_seen_ip)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET"
        " last_seen_ts = excluded.last_seen_ts, last_seen_ip = excluded.last_seen_ip",
        (user_id, device_id, display_name, now_ms, now_ms, ip))


def delete_devices_txn(txn: Transaction, user_id: str, device_ids: list[str]) -> None:
    """Delete devices with their tokens (the tokens first: they reference the device) and
    their end-to-end keys and pending messages; announce the device-list change."""
    for device_id in device_ids:
        delete_device_tokens_txn(txn, user_id, device_id)
        txn.execute("DELETE FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
    stream_id = delete_device_keys_txn(txn, user_id, device_ids)
    hook = txn.pool.hooks.get("devices_deleted") if txn.pool is not None else None
    if stream_id is not None and hook is not None:
        txn.call_after_commit(lambda: hook(user_id, stream_id))


def device_ids_txn(txn: Transaction, user_id: str) -> list[str]:
    return [r[0] for r in txn.select_all("SELECT device_id FROM devices WHERE user_id = ?", (user_id,))]


class DeviceStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def get_devices(self, user_id: str) -> list[DeviceRecord]:
        def txn_func(txn: Transaction) -> list[DeviceRecord]:
            rows = txn.select_all(f"SELECT {_COLUMNS} FROM devices WHERE user_id = ? ORDER BY device_id",
                                  (user_id,))
            return [DeviceRecord(*row) for row in rows]
        return await self.db.run_interaction("get_devices", txn_func)

    async def get_device(self, user_id: str, device_id: str) -> DeviceRecord | None:
        def txn_func(txn: Transaction) -> DeviceRecord | None:
            row = txn.select_one(f"SELECT {_COLUMNS} FROM devices WHERE user_id = ? AND device_id = ?",
                                 (user_id, device_id))
            return DeviceRecord(*row) if row else None
        return await self.db.run_interaction("get_device", txn_func)

    async def set_display_name(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        def txn_func(txn: Transaction) -> bool:
            txn.execute("UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                        (display_name, user_id, device_id))
            return txn.rowcount == 1
        return await self.db.run_interaction("set_device_display_name", txn_func)

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        await self.db.run_interaction("delete_devices", delete_devices_txn, user_id, device_ids)

    async def record_last_seen(self, user_id: str, device_id: str, now_ms: int, ip: str | None) -> None:
        def txn_func(txn: Transaction) -> None:
            txn.execute("UPDATE devices SET last_seen_ts = ?, last_seen_ip = ? WHERE user_id = ? AND device_id = ?",
                        (now_ms, ip, user_id, device_id))
        await self.db.run_interaction("record_last_seen", txn_func)

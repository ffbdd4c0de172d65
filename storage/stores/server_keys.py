"""Other servers' verify keys, as the keyring checked them, with the signed responses
they came in (which a notary serves again)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from homeserver.events.canonical import canonical_json
from storage.database import DatabasePool, Transaction

_COLUMNS = "server_name, key_id, verify_key, valid_until_ts, expired_ts, fetched_ts"


@dataclass(frozen=True)
class ServerKey:
    server_name: str
    key_id: str
    verify_key: str  # unpadded base64
    valid_until_ts: int | None  # current keys (already capped by the keyring)
    expired_ts: int | None  # old keys
    fetched_ts: int

    def valid_at(self, ts: int) -> bool:
        """Whether something signed at ``ts`` may be checked with this key."""
        if self.expired_ts is not None:
            return ts < self.expired_ts
        return self.valid_until_ts is not None and ts <= self.valid_until_ts


def _store_keys_txn(txn: Transaction, keys: list[ServerKey], key_json: str) -> None:
    # A stale response (from a notary's cache, say) must not shorten what we know, nor
    # bring an expired key back to life: an update wins only if it expires the key or
    # extends a current one.
    txn.execute_many(
        f"INSERT INTO server_keys ({_COLUMNS}, key_json) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (server_name, key_id) DO UPDATE SET verify_key = excluded.verify_key,"
        " valid_until_ts = excluded.valid_until_ts, expired_ts = excluded.expired_ts,"
        " fetched_ts = excluded.fetched_ts, key_json = excluded.key_json"
        " WHERE excluded.expired_ts IS NOT NULL OR (server_keys.expired_ts IS NULL"
        " AND excluded.valid_until_ts >= server_keys.valid_until_ts)",
        [(k.server_name, k.key_id, k.verify_key, k.valid_until_ts, k.expired_ts, k.fetched_ts, key_json)
         for k in keys])


class ServerKeyStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def store_keys(self, keys: Iterable[ServerKey], key_json: dict[str, Any]) -> None:
        """Store the keys of one verified key response, ``key_json`` being that response."""
        keys = list(keys)
        if not keys:
            return
        encoded = canonical_json(key_json).decode("utf-8")
        await self.db.run_interaction("store_server_keys", _store_keys_txn, keys, encoded)

    async def get_keys(self, server_name: str, key_ids: Iterable[str]) -> dict[str, ServerKey]:
        """The stored keys of ``server_name`` among ``key_ids``, by key ID."""
        key_ids = list(dict.fromkeys(key_ids))
        if not key_ids:
            return {}

        def txn_func(txn: Transaction) -> dict[str, ServerKey]:
            placeholders = ",".join("?" * len(key_ids))
            rows = txn.select_all(f"SELECT {_COLUMNS} FROM server_keys"
                                  f" WHERE server_name = ? AND key_id IN ({placeholders})", [server_name, *key_ids])
            return {row[1]: ServerKey(*row) for row in rows}
        return await self.db.run_interaction("get_server_keys", txn_func)

    async def get_all_keys(self, server_name: str) -> list[ServerKey]:
        def txn_func(txn: Transaction) -> list[ServerKey]:
            rows = txn.select_all(f"SELECT {_COLUMNS} FROM server_keys WHERE server_name = ? ORDER BY key_id",
                                  (server_name,))
            return [ServerKey(*row) for row in rows]
        return await self.db.run_interaction("get_all_server_keys", txn_func)

    async def get_key_responses(self, server_name: str) -> list[dict[str, Any]]:
        """Each distinct signed key response stored for ``server_name``, oldest fetch first."""
        def txn_func(txn: Transaction) -> list[str]:
            rows = txn.select_all("SELECT key_json FROM server_keys WHERE server_name = ?"
                                  " ORDER BY fetched_ts, key_id", (server_name,))
            return list(dict.fromkeys(row[0] for row in rows))
        return [json.loads(text) for text in await self.db.run_interaction("get_server_key_responses", txn_func)]

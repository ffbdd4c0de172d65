"""Webhooks: one row per webhook, keyed by its ID, holding the hash of its token.

A webhook is created together with its virtual user (one transaction), so a webhook
never exists without the account it posts as.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction
from storage.stores import users as user_sql

_COLUMNS = "id, server_id, channel_id, creator_id, user_id, name, avatar_url, token_hash, created_at"


@dataclass(frozen=True)
class WebhookRecord:
    id: str
    server_id: str
    channel_id: str
    creator_id: str
    user_id: str
    name: str
    avatar_url: str | None
    token_hash: str
    created_at: int


def _record(row) -> WebhookRecord | None:
    return WebhookRecord(*row) if row else None


class WebhookStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def create(self, record: WebhookRecord, appservice_id: str | None = None) -> bool:
        """Insert the webhook and its virtual user (owned by ``appservice_id``); False if
        either ID is already taken."""
        def txn_func(txn: Transaction) -> bool:
            if not user_sql.insert_user_txn(txn, record.user_id, None, record.created_at,
                                            appservice_id=appservice_id):
                return False
            txn.execute(f"INSERT INTO webhooks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (id) DO NOTHING",
                        (record.id, record.server_id, record.channel_id, record.creator_id, record.user_id,
                         record.name, record.avatar_url, record.token_hash, record.created_at))
            if txn.rowcount != 1:
                raise _Taken()
            return True
        try:
            return await self.db.run_interaction("create_webhook", txn_func)
        except _Taken:
            return False

    async def get(self, webhook_id: str) -> WebhookRecord | None:
        return _record(await self.db.run_interaction("get_webhook", lambda txn: txn.select_one(
            f"SELECT {_COLUMNS} FROM webhooks WHERE id = ?", (webhook_id,))))

    async def list_for_channel(self, channel_id: str) -> list[WebhookRecord]:
        rows = await self.db.run_interaction("channel_webhooks", lambda txn: txn.select_all(
            f"SELECT {_COLUMNS} FROM webhooks WHERE channel_id = ? ORDER BY created_at, id", (channel_id,)))
        return [_record(r) for r in rows]

    async def list_for_server(self, server_id: str) -> list[WebhookRecord]:
        rows = await self.db.run_interaction("server_webhooks", lambda txn: txn.select_all(
            f"SELECT {_COLUMNS} FROM webhooks WHERE server_id = ? ORDER BY created_at, id", (server_id,)))
        return [_record(r) for r in rows]

    async def update(self, webhook_id: str, name: str, avatar_url: str | None) -> None:
        await self.db.run_interaction("update_webhook", lambda txn: txn.execute(
            "UPDATE webhooks SET name = ?, avatar_url = ? WHERE id = ?", (name, avatar_url, webhook_id)))

    async def delete(self, webhook_id: str) -> bool:
        def txn_func(txn: Transaction) -> bool:
            txn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
            return txn.rowcount == 1
        return await self.db.run_interaction("delete_webhook", txn_func)


class _Taken(Exception):
    """Rolls back the user row when the webhook ID is taken."""

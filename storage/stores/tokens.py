"""Access and refresh tokens, looked up by their SHA-256 hash.

Token lookups happen on every request, so owners are cached in memory. Every function
here that deletes tokens tells the cache after its transaction commits
(``tokens_deleted_txn``, through the pool's "tokens_deleted" hook), so a revoked token
stops working at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.cache import LruCache
from storage.database import DatabasePool, Transaction

def tokens_deleted_txn(txn: Transaction, user_id: str) -> None:
    """Call inside any transaction that deletes a user's tokens."""
    hook = txn.pool.hooks.get("tokens_deleted") if txn.pool is not None else None
    if hook is not None:
        txn.call_after_commit(lambda: hook(user_id))


@dataclass(frozen=True)
class TokenOwner:
    user_id: str
    device_id: str
    expires_ts: int | None
    is_guest: bool
    deactivated: bool


def insert_access_token_txn(txn: Transaction, token_hash: str, user_id: str, device_id: str,
                            now_ms: int, expires_ts: int | None, refresh_token_hash: str | None) -> None:
    txn.execute(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts,"
        " refresh_token_hash) VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash, user_id, device_id, now_ms, expires_ts, refresh_token_hash))


def insert_refresh_token_txn(txn: Transaction, token_hash: str, user_id: str, device_id: str,
                             now_ms: int, expires_ts: int | None) -> None:
    txn.execute(
        "INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts, expires_ts)"
        " VALUES (?, ?, ?, ?, ?)", (token_hash, user_id, device_id, now_ms, expires_ts))


def delete_device_tokens_txn(txn: Transaction, user_id: str, device_id: str, keep_hash: str | None = None) -> None:
    """Revoke a device's tokens (but ``keep_hash``, the access token of the request)."""
    txn.execute("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ? AND token_hash != ?",
                (user_id, device_id, keep_hash or ""))
    if keep_hash is None:
        txn.execute("DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
    tokens_deleted_txn(txn, user_id)


class TokenStore:
    def __init__(self, db: DatabasePool, cache_size: int = 50000):
        self.db = db
        self._owners: LruCache[str, TokenOwner] = LruCache(cache_size)
        db.hooks["tokens_deleted"] = self.forget_user

    def forget_user(self, user_id: str) -> None:
        self._owners.remove_where(lambda owner: owner.user_id == user_id)

    async def get_token_owner(self, token_hash: str) -> TokenOwner | None:
        owner = self._owners.get(token_hash)
        if owner is None:
            owner = await self._load_token_owner(token_hash)
            if owner is not None:
                self._owners.set(token_hash, owner)
        return owner

    async def _load_token_owner(self, token_hash: str) -> TokenOwner | None:
        def txn_func(txn: Transaction) -> TokenOwner | None:
            row = txn.select_one(
                "SELECT t.user_id, t.device_id, t.expires_ts, u.is_guest, u.deactivated"
                " FROM access_tokens t JOIN users u ON u.user_id = t.user_id WHERE t.token_hash = ?",
                (token_hash,))
            if row is None:
                return None
            return TokenOwner(row[0], row[1], row[2], bool(row[3]), bool(row[4]))
        return await self.db.run_interaction("get_token_owner", txn_func)

    async def delete_access_token(self, token_hash: str) -> None:
        """Log one session out: its access token and the refresh token that made it."""
        def txn_func(txn: Transaction) -> None:
            row = txn.select_one("SELECT refresh_token_hash, user_id FROM access_tokens WHERE token_hash = ?",
                                 (token_hash,))
            if row is None:
                return
            txn.execute("DELETE FROM access_tokens WHERE token_hash = ?", (token_hash,))
            if row[0]:
                txn.execute("DELETE FROM refresh_tokens WHERE token_hash = ?", (row[0],))
            tokens_deleted_txn(txn, row[1])
        await self.db.run_interaction("delete_access_token", txn_func)

    async def rotate_refresh_token(self, old_hash: str, now_ms: int, new_access_hash: str,
                                   new_refresh_hash: str, access_expires_ts: int,
                                   refresh_expires_ts: int | None) -> tuple[str, str] | None:
        """Trade a refresh token for a new pair; None when it is unknown, used or expired.

        The old refresh token and every access token it issued are removed in the same
        transaction, so a token can be used once only, even by two racing requests.
        """
        def txn_func(txn: Transaction) -> tuple[str, str] | None:
            row = txn.select_one("SELECT user_id, device_id, expires_ts FROM refresh_tokens WHERE token_hash = ?",
                                 (old_hash,))
            if row is None:
                return None
            user_id, device_id, expires_ts = row
            txn.execute("DELETE FROM refresh_tokens WHERE token_hash = ?", (old_hash,))
            if txn.rowcount != 1 or (expires_ts is not None and expires_ts <= now_ms):
                return None
            txn.execute("DELETE FROM access_tokens WHERE refresh_token_hash = ?", (old_hash,))
            tokens_deleted_txn(txn, user_id)
            insert_refresh_token_txn(txn, new_refresh_hash, user_id, device_id, now_ms, refresh_expires_ts)
            insert_access_token_txn(txn, new_access_hash, user_id, device_id, now_ms, access_expires_ts,
                                    new_refresh_hash)
            return user_id, device_id
        return await self.db.run_interaction("rotate_refresh_token", txn_func)

"""Access and refresh tokens, looked up by their SHA-256 hash."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction


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


def delete_user_tokens_txn(txn: Transaction, user_id: str, except_device: str | None = None) -> list[str]:
    """Revoke every token of a user (but those of one device); returns the devices touched."""
    rows = txn.select_all("SELECT device_id FROM devices WHERE user_id = ?", (user_id,))
    devices = [r[0] for r in rows if r[0] != except_device]
    for device_id in devices:
        txn.execute("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
        txn.execute("DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?", (user_id, device_id))
    return devices


class TokenStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def get_token_owner(self, token_hash: str) -> TokenOwner | None:
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
            row = txn.select_one("SELECT refresh_token_hash FROM access_tokens WHERE token_hash = ?",
                                 (token_hash,))
            txn.execute("DELETE FROM access_tokens WHERE token_hash = ?", (token_hash,))
            if row and row[0]:
                txn.execute("DELETE FROM refresh_tokens WHERE token_hash = ?", (row[0],))
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
            insert_refresh_token_txn(txn, new_refresh_hash, user_id, device_id, now_ms, refresh_expires_ts)
            insert_access_token_txn(txn, new_access_hash, user_id, device_id, now_ms, access_expires_ts,
                                    new_refresh_hash)
            return user_id, device_id
        return await self.db.run_interaction("rotate_refresh_token", txn_func)

    async def delete_user_tokens(self, user_id: str, except_device: str | None = None) -> list[str]:
        return await self.db.run_interaction("delete_user_tokens", delete_user_tokens_txn, user_id,
                                             except_device)

"""Accounts: the users table."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction


@dataclass(frozen=True)
class UserRecord:
    user_id: str
    password_hash: str | None
    admin: bool
    is_guest: bool
    deactivated: bool
    appservice_id: str | None
    created_ts: int


_COLUMNS = "user_id, password_hash, admin, is_guest, deactivated, appservice_id, created_ts"


def _record(row) -> UserRecord | None:
    if row is None:
        return None
    return UserRecord(row[0], row[1], bool(row[2]), bool(row[3]), bool(row[4]), row[5], row[6])


def insert_user_txn(txn: Transaction, user_id: str, password_hash: str | None, created_ts: int,
                    admin: bool = False, appservice_id: str | None = None) -> bool:
    """Insert a user; False when the ID is taken (the caller answers M_USER_IN_USE)."""
    txn.execute(
        "INSERT INTO users (user_id, password_hash, admin, is_guest, deactivated, appservice_id,"
        " created_ts) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING",
        (user_id, password_hash, admin, False, False, appservice_id, created_ts))
    return txn.rowcount == 1


def get_user_txn(txn: Transaction, user_id: str) -> UserRecord | None:
    return _record(txn.select_one(f"SELECT {_COLUMNS} FROM users WHERE user_id = ?", (user_id,)))


class UserStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def get_user(self, user_id: str) -> UserRecord | None:
        return await self.db.run_interaction("get_user", get_user_txn, user_id)

    async def user_exists(self, user_id: str) -> bool:
        return await self.get_user(user_id) is not None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        def txn_func(txn: Transaction) -> None:
            txn.execute("UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id))
        await self.db.run_interaction("set_password_hash", txn_func)

    async def set_admin(self, user_id: str, admin: bool) -> None:
        def txn_func(txn: Transaction) -> None:
            txn.execute("UPDATE users SET admin = ? WHERE user_id = ?", (admin, user_id))
        await self.db.run_interaction("set_admin", txn_func)

    async def count_users(self) -> int:
        def txn_func(txn: Transaction) -> int:
            return txn.select_one("SELECT COUNT(*) FROM users")[0]
        return await self.db.run_interaction("count_users", txn_func)

"""Email addresses of accounts and the one-time tokens mailed to them.

Tokens are kept as SHA-256 hashes. Redeeming one is a single conditional UPDATE that
sets ``used_ts`` only while it is unset and the token has not expired, so of two
redemptions at once exactly one sees a changed row.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction

RESET = "reset"
VERIFY = "verify"


@dataclass(frozen=True)
class EmailAddress:
    user_id: str
    address: str
    verified_ts: int | None
    added_ts: int

    @property
    def verified(self) -> bool:
        return self.verified_ts is not None


@dataclass(frozen=True)
class Redeemed:
    user_id: str
    address: str


def _address(row) -> EmailAddress | None:
    if row is None:
        return None
    user_id, address, verified_ts, added_ts = row
    return EmailAddress(user_id, address, int(verified_ts) if verified_ts is not None else None, int(added_ts))


def get_address_txn(txn: Transaction, user_id: str) -> EmailAddress | None:
    return _address(txn.select_one(
        "SELECT user_id, address, verified_ts, added_ts FROM user_emails WHERE user_id = ?", (user_id,)))


def redeem_txn(txn: Transaction, token_hash: str, purpose: str, now_ms: int) -> Redeemed | None:
    """Use up the token if it is unused and unexpired; whose it was, or None."""
    txn.execute("UPDATE email_tokens SET used_ts = ? WHERE token_hash = ? AND purpose = ?"
                " AND used_ts IS NULL AND expires_ts > ?", (now_ms, token_hash, purpose, now_ms))
    if txn.rowcount != 1:
        return None
    row = txn.select_one("SELECT user_id, address FROM email_tokens WHERE token_hash = ?", (token_hash,))
    return Redeemed(row[0], row[1])


def invalidate_tokens_txn(txn: Transaction, user_id: str, purpose: str, now_ms: int) -> None:
    """Use up every outstanding token of this purpose of the user."""
    txn.execute("UPDATE email_tokens SET used_ts = ? WHERE user_id = ? AND purpose = ? AND used_ts IS NULL",
                (now_ms, user_id, purpose))


class EmailTokenStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def get_address(self, user_id: str) -> EmailAddress | None:
        return await self.db.run_interaction("get_user_email", get_address_txn, user_id)

    async def verified_owner(self, address: str) -> str | None:
        """The active account that verified this address, if any."""
        def txn_func(txn: Transaction) -> str | None:
            row = txn.select_one(
                "SELECT e.user_id FROM user_emails e JOIN users u ON u.user_id = e.user_id"
                " WHERE e.address = ? AND e.verified_ts IS NOT NULL AND NOT u.deactivated", (address,))
            return row[0] if row else None
        return await self.db.run_interaction("email_verified_owner", txn_func)

    async def set_address(self, user_id: str, address: str, now_ms: int) -> bool:
        """Give the account this address, unverified, and retire its outstanding
        verification tokens. False (nothing changed) when it already has it verified."""
        def txn_func(txn: Transaction) -> bool:
            current = get_address_txn(txn, user_id)
            if current is not None and current.address == address and current.verified:
                return False
            txn.execute("INSERT INTO user_emails (user_id, address, verified_ts, added_ts) VALUES (?, ?, NULL, ?)"
                        " ON CONFLICT (user_id) DO UPDATE SET address = excluded.address, verified_ts = NULL,"
                        " added_ts = excluded.added_ts", (user_id, address, now_ms))
            invalidate_tokens_txn(txn, user_id, VERIFY, now_ms)
            return True
        return await self.db.run_interaction("set_user_email", txn_func)

    async def create_token(self, token_hash: str, user_id: str, purpose: str, address: str, now_ms: int,
                           expires_ts: int) -> None:
        """Store a new token; older unused ones of the same purpose stop working (only the
        latest link does), and spent or expired rows of the user are cleared away."""
        def txn_func(txn: Transaction) -> None:
            txn.execute("DELETE FROM email_tokens WHERE user_id = ? AND (used_ts IS NOT NULL OR expires_ts <= ?)",
                        (user_id, now_ms))
            invalidate_tokens_txn(txn, user_id, purpose, now_ms)
            txn.execute("INSERT INTO email_tokens (token_hash, user_id, purpose, address, created_ts, expires_ts,"
                        " used_ts) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                        (token_hash, user_id, purpose, address, now_ms, expires_ts))
        await self.db.run_interaction("create_email_token", txn_func)

    async def redeem_verification(self, token_hash: str, now_ms: int) -> tuple[Redeemed | None, bool]:
        """Use up a verification token and mark its address verified, if it is still the
        account's address and no other account verified it meanwhile.
        (redeemed or None, verified)."""
        def txn_func(txn: Transaction) -> tuple[Redeemed | None, bool]:
            redeemed = redeem_txn(txn, token_hash, VERIFY, now_ms)
            if redeemed is None:
                return None, False
            txn.execute("UPDATE user_emails SET verified_ts = ? WHERE user_id = ? AND address = ?"
                        " AND verified_ts IS NULL AND NOT EXISTS (SELECT 1 FROM user_emails o"
                        " WHERE o.address = ? AND o.verified_ts IS NOT NULL)",
                        (now_ms, redeemed.user_id, redeemed.address, redeemed.address))
            if txn.rowcount == 1:
                return redeemed, True
            current = get_address_txn(txn, redeemed.user_id)
            return redeemed, (current is not None and current.address == redeemed.address and current.verified)
        return await self.db.run_interaction("redeem_email_verification", txn_func)

    async def token_rows(self, user_id: str) -> list[tuple]:
        """(token_hash, purpose, address, expires_ts, used_ts) of the user, for tests and tools."""
        def txn_func(txn: Transaction) -> list[tuple]:
            return [tuple(r) for r in txn.select_all(
                "SELECT token_hash, purpose, address, expires_ts, used_ts FROM email_tokens WHERE user_id = ?"
                " ORDER BY created_ts", (user_id,))]
        return await self.db.run_interaction("email_token_rows", txn_func)

"""Invite codes of Drocsid servers: creation, lookup, and redemption as one conditional
UPDATE, so two redemptions at once can never both take the last use."""

from __future__ import annotations

from dataclasses import dataclass

from storage.database import DatabasePool, Transaction

_COLUMNS = "code, server_id, creator_id, max_uses, uses, expires_at, created_at"


@dataclass(frozen=True)
class InviteCode:
    code: str
    server_id: str
    creator_id: str
    max_uses: int            # 0: unlimited
    uses: int
    expires_at: int | None   # ms since the epoch; None: never
    created_at: int

    def usable(self, now_ms: int) -> bool:
        return ((self.max_uses == 0 or self.uses < self.max_uses)
                and (self.expires_at is None or self.expires_at > now_ms))


def _row(row) -> InviteCode | None:
    if row is None:
        return None
    code, server_id, creator_id, max_uses, uses, expires_at, created_at = row
    return InviteCode(code, server_id, creator_id, int(max_uses), int(uses),
                      int(expires_at) if expires_at is not None else None, int(created_at))


class InviteCodeStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def create(self, invite: InviteCode) -> bool:
        """Store a new code; False when the code is already taken."""
        def txn_func(txn: Transaction) -> bool:
            txn.execute(f"INSERT INTO invite_codes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (code) DO NOTHING",
                        (invite.code, invite.server_id, invite.creator_id, invite.max_uses, invite.uses,
                         invite.expires_at, invite.created_at))
            return txn.rowcount == 1
        return await self.db.run_interaction("create_invite_code", txn_func)

    async def get(self, code: str) -> InviteCode | None:
        def txn_func(txn: Transaction) -> InviteCode | None:
            return _row(txn.select_one(f"SELECT {_COLUMNS} FROM invite_codes WHERE code = ?", (code,)))
        return await self.db.run_interaction("get_invite_code", txn_func)

    async def for_server(self, server_id: str) -> list[InviteCode]:
        def txn_func(txn: Transaction) -> list[InviteCode]:
            rows = txn.select_all(f"SELECT {_COLUMNS} FROM invite_codes WHERE server_id = ?"
                                  " ORDER BY created_at, code", (server_id,))
            return [_row(r) for r in rows]
        return await self.db.run_interaction("server_invite_codes", txn_func)

    async def delete(self, code: str) -> bool:
        def txn_func(txn: Transaction) -> bool:
            txn.execute("DELETE FROM invite_codes WHERE code = ?", (code,))
            return txn.rowcount == 1
        return await self.db.run_interaction("delete_invite_code", txn_func)

    async def take_use(self, code: str, now_ms: int) -> InviteCode | None:
        """Count one use if the code is still usable, in one statement; the code as read
        after the use (other uses committed meanwhile may show), or None when it is
        unknown, expired or used up."""
        def txn_func(txn: Transaction) -> InviteCode | None:
            txn.execute("UPDATE invite_codes SET uses = uses + 1 WHERE code = ?"
                        " AND (max_uses = 0 OR uses < max_uses) AND (expires_at IS NULL OR expires_at > ?)",
                        (code, now_ms))
            if txn.rowcount != 1:
                return None
            return _row(txn.select_one(f"SELECT {_COLUMNS} FROM invite_codes WHERE code = ?", (code,)))
        return await self.db.run_interaction("take_invite_use", txn_func)

    async def give_back_use(self, code: str) -> None:
        """Undo ``take_use`` when the join it paid for failed."""
        def txn_func(txn: Transaction) -> None:
            txn.execute("UPDATE invite_codes SET uses = uses - 1 WHERE code = ? AND uses > 0", (code,))
        await self.db.run_interaction("give_back_invite_use", txn_func)

"""User-interactive authentication sessions, kept in the database so any worker can
continue a flow that another began."""

from __future__ import annotations

import json

from storage.database import DatabasePool, Transaction


class UIAuthStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def create_session(self, session_id: str, purpose: str, user_id: str | None, now_ms: int) -> None:
        def txn_func(txn: Transaction) -> None:
            txn.execute("INSERT INTO ui_auth_sessions (session_id, purpose, user_id, completed_stages, created_ts)"
                        " VALUES (?, ?, ?, ?, ?)", (session_id, purpose, user_id, "[]", now_ms))
        await self.db.run_interaction("create_ui_auth_session", txn_func)

    async def get_session(self, session_id: str) -> dict | None:
        def txn_func(txn: Transaction) -> dict | None:
            row = txn.select_one("SELECT purpose, user_id, completed_stages, created_ts FROM ui_auth_sessions"
                                 " WHERE session_id = ?", (session_id,))
            if row is None:
                return None
            return {"purpose": row[0], "user_id": row[1], "completed": json.loads(row[2]), "created_ts": row[3]}
        return await self.db.run_interaction("get_ui_auth_session", txn_func)

    async def mark_completed(self, session_id: str, stage: str) -> list[str]:
        def txn_func(txn: Transaction) -> list[str]:
            row = txn.select_one("SELECT completed_stages FROM ui_auth_sessions WHERE session_id = ?",
                                 (session_id,))
            stages = json.loads(row[0]) if row else []
            if stage not in stages:
                stages.append(stage)
            txn.execute("UPDATE ui_auth_sessions SET completed_stages = ? WHERE session_id = ?",
                        (json.dumps(stages), session_id))
            return stages
        return await self.db.run_interaction("mark_ui_auth_completed", txn_func)

    async def delete_session(self, session_id: str) -> None:
        def txn_func(txn: Transaction) -> None:
            txn.execute("DELETE FROM ui_auth_sessions WHERE session_id = ?", (session_id,))
        await self.db.run_interaction("delete_ui_auth_session", txn_func)

    async def delete_expired(self, older_than_ms: int) -> int:
        def txn_func(txn: Transaction) -> int:
            txn.execute("DELETE FROM ui_auth_sessions WHERE created_ts < ?", (older_than_ms,))
            return txn.rowcount
        return await self.db.run_interaction("delete_expired_ui_auth", txn_func)

"""Gateway sessions and the dispatches a RESUME may replay (schema 0014).

A batch of dispatches is written in one transaction before any of it is sent, so what a
client saw is always in the database. Each dispatch is one row with its audience (the
users whose sessions got it); a session's sequence numbers are counted from its
checkpoint over the later payloads that name its user (``gateway.sessions``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable

from storage.database import DatabasePool, Transaction


@dataclass
class StoredSession:
    session_id: str
    user_id: str
    device_id: str | None
    created_ts: int
    last_seen_ts: int
    base_seq: int
    base_payload_id: int


@dataclass
class StoredPayload:
    payload_id: int
    event_name: str
    payload: str          # JSON text
    audience: frozenset[str]


class GatewaySessionStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def load_live(self, seen_after_ts: int) -> tuple[list[StoredSession], list[StoredPayload]]:
        """Sessions seen after ``seen_after_ts`` (older ones are deleted) and the payloads
        after the oldest checkpoint among them, in order."""
        def txn_func(txn: Transaction):
            txn.execute("DELETE FROM gateway_sessions WHERE last_seen_ts <= ?", (seen_after_ts,))
            _prune_payloads_txn(txn)
            sessions = [StoredSession(*r) for r in txn.select_all(
                "SELECT session_id, user_id, device_id, created_ts, last_seen_ts, base_seq, base_payload_id"
                " FROM gateway_sessions ORDER BY created_ts, session_id")]
            since = min((s.base_payload_id for s in sessions), default=None)
            payloads = _payloads_txn(txn, since) if since is not None else []
            return sessions, payloads
        return await self.db.run_interaction("gateway_load_sessions", txn_func)

    async def max_ids(self) -> tuple[int, int]:
        """Where payload and audience IDs stand (a checkpoint may be past the newest
        payload kept)."""
        def txn_func(txn: Transaction) -> tuple[int, int]:
            def one(sql: str) -> int:
                row = txn.select_one(sql)
                return (row[0] or 0) if row else 0
            return (max(one("SELECT MAX(payload_id) FROM gateway_payloads"),
                        one("SELECT MAX(base_payload_id) FROM gateway_sessions")),
                    one("SELECT MAX(audience_id) FROM gateway_audiences"))
        return await self.db.run_interaction("gateway_max_ids", txn_func)

    async def create(self, session_id: str, user_id: str, device_id: str | None, now: int, base_seq: int,
                     base_payload_id: int) -> None:
        await self.db.run_interaction("gateway_create_session", lambda txn: txn.execute(
            "INSERT INTO gateway_sessions (session_id, user_id, device_id, created_ts, last_seen_ts, base_seq,"
            " base_payload_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, user_id, device_id, now, now, base_seq, base_payload_id)))

    async def write_payloads(self, payloads: list[tuple[int, str, str, int]],
                             audiences: list[tuple[int, list[str]]]) -> None:
        """Payloads (id, event name, JSON, audience ID) and the new audiences (id, user
        IDs) they use, in one transaction."""
        new = [(aid, json.dumps(users, separators=(",", ":"))) for aid, users in audiences]

        def txn_func(txn: Transaction) -> None:
            txn.execute_many("INSERT INTO gateway_audiences (audience_id, users) VALUES (?, ?)", new)
            txn.execute_many("INSERT INTO gateway_payloads (payload_id, event_name, payload, audience_id)"
                             " VALUES (?, ?, ?, ?)", payloads)
        await self.db.run_interaction("gateway_write_payloads", txn_func)

    async def payloads_after(self, payload_id: int) -> list[StoredPayload]:
        return await self.db.run_interaction("gateway_payloads_after", _payloads_txn, payload_id)

    async def save_checkpoints(self, checkpoints: list[tuple[str, int, int]], seen: Iterable[str], now: int) -> None:
        """Checkpoints (session, base_seq, base_payload_id) and last-seen times."""
        seen = [(now, s) for s in seen]

        def txn_func(txn: Transaction) -> None:
            txn.execute_many("UPDATE gateway_sessions SET base_seq = ?, base_payload_id = ? WHERE session_id = ?",
                             [(seq, pid, sid) for sid, seq, pid in checkpoints])
            txn.execute_many("UPDATE gateway_sessions SET last_seen_ts = ? WHERE session_id = ?", seen)
        await self.db.run_interaction("gateway_checkpoints", txn_func)

    async def delete(self, session_ids: list[str]) -> None:
        if session_ids:
            await self.db.run_interaction("gateway_delete_sessions", lambda txn: txn.execute_many(
                "DELETE FROM gateway_sessions WHERE session_id = ?", [(s,) for s in session_ids]))

    async def prune_payloads(self, upto: int) -> None:
        """Drop payloads no session can replay (none newer than ``upto``, the oldest
        checkpoint in memory, which may not be stored yet)."""
        await self.db.run_interaction("gateway_prune_payloads", _prune_payloads_txn, upto)


def _payloads_txn(txn: Transaction, after: int) -> list[StoredPayload]:
    audiences: dict[int, frozenset[str]] = {}
    found = []
    for payload_id, name, payload, audience_id, users in txn.select_all(
            "SELECT p.payload_id, p.event_name, p.payload, p.audience_id, a.users FROM gateway_payloads p"
            " JOIN gateway_audiences a ON a.audience_id = p.audience_id WHERE p.payload_id > ?"
            " ORDER BY p.payload_id", (after,)):
        if audience_id not in audiences:
            audiences[audience_id] = frozenset(json.loads(users))
        found.append(StoredPayload(payload_id, name, payload, audiences[audience_id]))
    return found


def _prune_payloads_txn(txn: Transaction, upto: int | None = None) -> None:
    # A payload at or before every session's checkpoint can no longer be replayed.
    row = txn.select_one("SELECT MIN(base_payload_id) FROM gateway_sessions")
    bounds = [b for b in (row[0] if row else None, upto) if b is not None]
    if bounds:
        txn.execute("DELETE FROM gateway_payloads WHERE payload_id <= ?", (min(bounds),))
    else:
        txn.execute("DELETE FROM gateway_payloads")
    txn.execute("DELETE FROM gateway_audiences WHERE NOT EXISTS"
                " (SELECT 1 FROM gateway_payloads p WHERE p.audience_id = gateway_audiences.audience_id)")

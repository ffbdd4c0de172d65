"""State groups: the state at every event, shared between events and stored as deltas.

A state event creates a group = its parent group + one changed key; a message event
reuses the group before it. Every ``MAX_DELTA_DEPTH`` steps a full snapshot is written
instead, so reading a group never walks more than that many rows of parents.
"""

from __future__ import annotations

from typing import Mapping

from storage.cache import LruCache
from storage.database import DatabasePool, Transaction

StateKey = tuple[str, str]
StateMap = Mapping[StateKey, str]

MAX_DELTA_DEPTH = 100


def _next_group_id(txn: Transaction) -> int:
    return txn.select_one("SELECT COALESCE(MAX(id), 0) + 1 FROM state_groups")[0]


def insert_state_group_txn(txn: Transaction, room_id: str, prev_group: int | None, prev_depth: int,
                           delta: StateMap, full_state: StateMap) -> tuple[int, int]:
    """Store a new group: as a delta on ``prev_group`` when the chain is short, else in full.
    Returns the group's ID and its delta depth."""
    group_id = _next_group_id(txn)
    if prev_group is not None and prev_depth < MAX_DELTA_DEPTH:
        entries, parent, depth = delta, prev_group, prev_depth + 1
    else:
        entries, parent, depth = full_state, None, 0
    txn.execute("INSERT INTO state_groups (id, room_id, prev_group, delta_depth) VALUES (?, ?, ?, ?)",
                (group_id, room_id, parent, depth))
    txn.execute_many("INSERT INTO state_group_entries (state_group, type, state_key, event_id) VALUES (?, ?, ?, ?)",
                     [(group_id, k[0], k[1], v) for k, v in entries.items()])
    return group_id, depth


def group_depth_txn(txn: Transaction, group_id: int) -> int:
    row = txn.select_one("SELECT delta_depth FROM state_groups WHERE id = ?", (group_id,))
    return row[0] if row else 0


def load_group_txn(txn: Transaction, group_id: int) -> dict[StateKey, str]:
    """The full state of a group: walk up to its full snapshot, then apply deltas down."""
    chain: list[int] = []
    current: int | None = group_id
    while current is not None:
        chain.append(current)
        row = txn.select_one("SELECT prev_group FROM state_groups WHERE id = ?", (current,))
        current = row[0] if row else None
    state: dict[StateKey, str] = {}
    placeholders = ",".join("?" * len(chain))
    rows = txn.select_all(f"SELECT state_group, type, state_key, event_id FROM state_group_entries"
                          f" WHERE state_group IN ({placeholders})", chain)
    by_group: dict[int, list] = {}
    for group, event_type, state_key, event_id in rows:
        by_group.setdefault(group, []).append(((event_type, state_key), event_id))
    for group in reversed(chain):
        for key, event_id in by_group.get(group, ()):
            state[key] = event_id
    return state


class StateStore:
    def __init__(self, db: DatabasePool, cache_size: int = 2000):
        self.db = db
        self._groups: LruCache[int, dict[StateKey, str]] = LruCache(cache_size)

    def remember_group(self, group_id: int, state: dict[StateKey, str]) -> None:
        self._groups.set(group_id, state)

    async def get_state_for_group(self, group_id: int) -> dict[StateKey, str]:
        """The state map of a group (callers must not modify it)."""
        state = self._groups.get(group_id)
        if state is not None:
            return state
        state = await self.db.run_interaction("load_state_group", load_group_txn, group_id)
        self._groups.set(group_id, state)
        return state

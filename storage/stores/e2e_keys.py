"""End-to-end encryption keys: device keys, one-time and fallback keys, cross-signing keys
and their signatures, and the device-list change stream.

The server never uses these keys; it keeps what clients upload and hands it to other
clients. Objects are stored as the uploaded JSON; signatures uploaded later through
/keys/signatures/upload are kept apart and merged in when read.

Stream IDs of the ``to_device`` and ``device_lists`` streams come from counters in
``e2e_stream_positions``, incremented inside the writing transaction. To-device rows are
deleted once read, so ``MAX(stream_id)`` of a table could go backwards; a counter cannot.
On PostgreSQL the UPDATE's row lock makes a second writer wait for the first to commit,
so IDs are committed in the order they are handed out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from storage.database import DatabasePool, Transaction

STREAMS = ("to_device", "device_lists")
CROSS_SIGNING_TYPES = ("master", "self_signing", "user_signing")
_CHUNK = 500


# -- stream counters --------------------------------------------------------------------

def next_stream_ids_txn(txn: Transaction, stream: str, count: int = 1) -> int:
    """Reserve ``count`` IDs of ``stream``; returns the last (the first is last - count + 1)."""
    if stream not in STREAMS:
        raise ValueError(f"not an e2e stream: {stream}")
    if count < 1:
        raise ValueError("count must be positive")
    txn.execute("UPDATE e2e_stream_positions SET position = position + ? WHERE stream = ?", (count, stream))
    return txn.select_one("SELECT position FROM e2e_stream_positions WHERE stream = ?", (stream,))[0]


def stream_positions_txn(txn: Transaction) -> dict[str, int]:
    return {row[0]: row[1] for row in txn.select_all("SELECT stream, position FROM e2e_stream_positions")}


def add_device_list_change_txn(txn: Transaction, user_id: str, device_ids: Iterable[str | None] = (None,),
                               notify_only: str | None = None) -> int:
    """One change of ``user_id``'s device list (or keys): one stream ID for all its rows."""
    device_ids = list(device_ids) or [None]
    stream_id = next_stream_ids_txn(txn, "device_lists")
    txn.execute_many("INSERT INTO device_lists_stream (stream_id, user_id, device_id, notify_only) VALUES (?, ?, ?, ?)",
                     [(stream_id, user_id, device_id, notify_only) for device_id in device_ids])
    return stream_id


# -- device deletion --------------------------------------------------------------------

def delete_device_keys_txn(txn: Transaction, user_id: str, device_ids: list[str]) -> int | None:
    """Forget everything end-to-end about these devices: keys, one-time and fallback keys,
    signatures of their keys, pending to-device messages and send transaction IDs.

    Returns the device_lists stream ID of the change (None if no device is named). Meant
    to run in the same transaction that deletes the devices.
    """
    device_ids = list(dict.fromkeys(device_ids))
    if not device_ids:
        return None
    for device_id in device_ids:
        args = (user_id, device_id)
        txn.execute("DELETE FROM e2e_device_keys WHERE user_id = ? AND device_id = ?", args)
        txn.execute("DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?", args)
        txn.execute("DELETE FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?", args)
        txn.execute("DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = ? AND target_key_id = ?", args)
        txn.execute("DELETE FROM device_inbox WHERE user_id = ? AND device_id = ?", args)
        txn.execute("DELETE FROM device_inbox_txns WHERE user_id = ? AND device_id = ?", args)
    return add_device_list_change_txn(txn, user_id, device_ids)


# -- helpers ----------------------------------------------------------------------------

def encode(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _placeholders(values: list) -> str:
    return ",".join("?" * len(values))


class KeyConflict(Exception):
    """A one-time key ID that is already stored with other content."""

    def __init__(self, key_id: str, old: Any, new: Any):
        super().__init__(f"One-time key {key_id} already exists. Old key: {encode(old)}; new key: {encode(new)}")
        self.key_id = key_id


@dataclass(frozen=True)
class SignatureRow:
    signer_user_id: str
    signer_key_id: str
    target_user_id: str
    target_key_id: str
    signature: str


def _merge_signatures(obj: dict, rows: Iterable[tuple[str, str, str]]) -> dict:
    """Add (signer_user_id, signer_key_id, signature) rows to obj['signatures']."""
    for signer_user_id, signer_key_id, signature in rows:
        signatures = obj.setdefault("signatures", {})
        if not isinstance(signatures, dict):
            signatures = obj["signatures"] = {}
        by_user = signatures.setdefault(signer_user_id, {})
        if isinstance(by_user, dict):
            by_user[signer_key_id] = signature
    return obj


def _signatures_for_txn(txn: Transaction, target_user_id: str, target_key_ids: list[str],
                        visible_signers: tuple[str, ...]) -> dict[str, list[tuple[str, str, str]]]:
    """target_key_id -> [(signer user, signer key ID, signature)] made by ``visible_signers``."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    if not target_key_ids:
        return found
    signers = list(dict.fromkeys(visible_signers))
    for offset in range(0, len(target_key_ids), _CHUNK):
        chunk = target_key_ids[offset:offset + _CHUNK]
        rows = txn.select_all(
            "SELECT target_key_id, signer_user_id, signer_key_id, signature FROM e2e_cross_signing_signatures"
            f" WHERE target_user_id = ? AND target_key_id IN ({_placeholders(chunk)})"
            f" AND signer_user_id IN ({_placeholders(signers)})", [target_user_id, *chunk, *signers])
        for target_key_id, signer_user_id, signer_key_id, signature in rows:
            found.setdefault(target_key_id, []).append((signer_user_id, signer_key_id, signature))
    return found


_SHARES_A_ROOM = (
    "EXISTS (SELECT 1 FROM current_state a JOIN current_state b ON a.room_id = b.room_id"
    " WHERE a.type = 'm.room.member' AND a.state_key = {user} AND a.membership = 'join'"
    " AND b.type = 'm.room.member' AND b.state_key = ? AND b.membership = 'join')")


def users_sharing_rooms_txn(txn: Transaction, user_id: str) -> set[str]:
    """Users joined to a room the user is joined to (the user included when joined anywhere)."""
    rows = txn.select_all(
        "SELECT DISTINCT b.state_key FROM current_state a JOIN current_state b ON a.room_id = b.room_id"
        " WHERE a.type = 'm.room.member' AND a.state_key = ? AND a.membership = 'join'"
        " AND b.type = 'm.room.member' AND b.membership = 'join'", (user_id,))
    return {r[0] for r in rows}


class E2EKeysStore:
    def __init__(self, db: DatabasePool):
        self.db = db

    async def stream_positions(self) -> dict[str, int]:
        return await self.db.run_interaction("e2e_stream_positions", stream_positions_txn)

    # -- upload -------------------------------------------------------------------------

    async def upload_keys(self, user_id: str, device_id: str, device_keys: dict | None,
                          one_time_keys: list[tuple[str, str, Any]], fallback_keys: list[tuple[str, str, Any]],
                          now: int) -> tuple[int | None, dict[str, int]]:
        """Store what /keys/upload carries, in one transaction. Returns the device_lists
        stream ID when the device keys changed, and the one-time key counts.
        Raises KeyConflict (nothing stored) for a one-time key ID reused with other content."""
        def txn_func(txn: Transaction) -> tuple[int | None, dict[str, int]]:
            stream_id = None
            if device_keys is not None:
                row = txn.select_one("SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
                                     (user_id, device_id))
                if row is None or json.loads(row[0]) != device_keys:
                    txn.execute("INSERT INTO e2e_device_keys (user_id, device_id, key_json, ts) VALUES (?, ?, ?, ?)"
                                " ON CONFLICT (user_id, device_id) DO UPDATE SET key_json = excluded.key_json,"
                                " ts = excluded.ts", (user_id, device_id, encode(device_keys), now))
                    stream_id = add_device_list_change_txn(txn, user_id, [device_id])
            for algorithm, key_id, value in one_time_keys:
                row = txn.select_one("SELECT key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
                                     " AND algorithm = ? AND key_id = ?", (user_id, device_id, algorithm, key_id))
                if row is not None:
                    if json.loads(row[0]) != value:
                        raise KeyConflict(f"{algorithm}:{key_id}", json.loads(row[0]), value)
                    continue
                txn.execute("INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json, ts)"
                            " VALUES (?, ?, ?, ?, ?, ?)", (user_id, device_id, algorithm, key_id, encode(value), now))
            for algorithm, key_id, value in fallback_keys:
                row = txn.select_one("SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ?"
                                     " AND device_id = ? AND algorithm = ?", (user_id, device_id, algorithm))
                if row is not None and row[0] == key_id and json.loads(row[1]) == value:
                    continue  # the same key again: it stays used if it was
                txn.execute("INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)"
                            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET"
                            " key_id = excluded.key_id, key_json = excluded.key_json, used = excluded.used",
                            (user_id, device_id, algorithm, key_id, encode(value), False))
            return stream_id, self._counts_txn(txn, user_id, device_id)
        return await self.db.run_interaction("upload_keys", txn_func)

    @staticmethod
    def _counts_txn(txn: Transaction, user_id: str, device_id: str) -> dict[str, int]:
        rows = txn.select_all("SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
                              " GROUP BY algorithm", (user_id, device_id))
        return {r[0]: int(r[1]) for r in rows}

    async def key_counts(self, user_id: str, device_id: str) -> tuple[dict[str, int], list[str]]:
        """(one-time key count per algorithm, algorithms of unused fallback keys) of a device."""
        def txn_func(txn: Transaction) -> tuple[dict[str, int], list[str]]:
            unused = txn.select_all("SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?"
                                    " AND used = ? ORDER BY algorithm", (user_id, device_id, False))
            return self._counts_txn(txn, user_id, device_id), [r[0] for r in unused]
        return await self.db.run_interaction("e2e_key_counts", txn_func)

    # -- query --------------------------------------------------------------------------

    async def query_keys(self, requester_id: str, queries: dict[str, list[str]]) -> dict[str, dict]:
        """For each user: {"devices": {device_id: keys with display name and merged
        signatures}, "master"/"self_signing"/"user_signing": key with visible signatures}.
        An empty device list means every device. Only existing devices are returned."""
        def txn_func(txn: Transaction) -> dict[str, dict]:
            result: dict[str, dict] = {}
            for user_id, wanted in queries.items():
                visible = (user_id, requester_id)
                rows = txn.select_all(
                    "SELECT k.device_id, k.key_json, d.display_name FROM e2e_device_keys k JOIN devices d"
                    " ON d.user_id = k.user_id AND d.device_id = k.device_id WHERE k.user_id = ?"
                    " ORDER BY k.device_id", (user_id,))
                if wanted:
                    wanted_set = set(wanted)
                    rows = [r for r in rows if r[0] in wanted_set]
                signatures = _signatures_for_txn(txn, user_id, [r[0] for r in rows], visible)
                devices = {}
                for device_id, key_json, display_name in rows:
                    keys = _merge_signatures(json.loads(key_json), signatures.get(device_id, []))
                    unsigned = keys.get("unsigned") if isinstance(keys.get("unsigned"), dict) else {}
                    keys["unsigned"] = dict(unsigned)
                    if display_name is not None:
                        keys["unsigned"]["device_display_name"] = display_name
                    devices[device_id] = keys
                entry: dict[str, Any] = {"devices": devices}
                entry.update(self._cross_signing_txn(txn, user_id, visible))
                result[user_id] = entry
            return result
        return await self.db.run_interaction("query_keys", txn_func)

    @staticmethod
    def _cross_signing_txn(txn: Transaction, user_id: str, visible: tuple[str, ...]) -> dict[str, dict]:
        rows = txn.select_all("SELECT key_type, public_key, key_json FROM e2e_cross_signing_keys WHERE user_id = ?",
                              (user_id,))
        signatures = _signatures_for_txn(txn, user_id, [r[1] for r in rows], visible)
        return {key_type: _merge_signatures(json.loads(key_json), signatures.get(public_key, []))
                for key_type, public_key, key_json in rows}

    async def get_cross_signing_keys(self, user_id: str) -> dict[str, tuple[str, dict]]:
        """key_type -> (public key, the key as uploaded, without later signatures)."""
        rows = await self.db.run_interaction("get_cross_signing_keys", lambda txn: txn.select_all(
            "SELECT key_type, public_key, key_json FROM e2e_cross_signing_keys WHERE user_id = ?", (user_id,)))
        return {r[0]: (r[1], json.loads(r[2])) for r in rows}

    async def get_device_keys(self, user_id: str, device_ids: list[str] | None = None) -> dict[str, dict]:
        """device_id -> keys as uploaded, for the user's existing devices."""
        rows = await self.db.run_interaction("get_device_keys", lambda txn: txn.select_all(
            "SELECT k.device_id, k.key_json FROM e2e_device_keys k JOIN devices d ON d.user_id = k.user_id"
            " AND d.device_id = k.device_id WHERE k.user_id = ?", (user_id,)))
        found = {r[0]: json.loads(r[1]) for r in rows}
        if device_ids is not None:
            found = {d: k for d, k in found.items() if d in device_ids}
        return found

    async def device_exists(self, user_id: str, device_id: str) -> bool:
        row = await self.db.run_interaction("e2e_device_exists", lambda txn: txn.select_one(
            "SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id)))
        return row is not None

    # -- claim --------------------------------------------------------------------------

    async def claim_keys(self, claims: list[tuple[str, str, str]]) -> dict[str, dict[str, dict[str, Any]]]:
        """For each (user, device, algorithm): the oldest one-time key, removed; with none
        left, the fallback key (marked used). user -> device -> {"alg:key_id": key}."""
        def txn_func(txn: Transaction) -> dict[str, dict[str, dict[str, Any]]]:
            result: dict[str, dict[str, dict[str, Any]]] = {}
            for user_id, device_id, algorithm in claims:
                if txn.select_one("SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?",
                                  (user_id, device_id)) is None:
                    continue
                claimed = self._claim_one_txn(txn, user_id, device_id, algorithm)
                if claimed is not None:
                    result.setdefault(user_id, {}).setdefault(device_id, {})[claimed[0]] = claimed[1]
            return result
        return await self.db.run_interaction("claim_keys", txn_func)

    @staticmethod
    def _claim_one_txn(txn: Transaction, user_id: str, device_id: str, algorithm: str) -> tuple[str, Any] | None:
        args = (user_id, device_id, algorithm)
        while True:
            row = txn.select_one("SELECT key_id, key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
                                 " AND algorithm = ? ORDER BY ts, key_id LIMIT 1", args)
            if row is None:
                break
            txn.execute("DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?"
                        " AND key_id = ?", (*args, row[0]))
            if txn.rowcount == 1:
                return f"{algorithm}:{row[0]}", json.loads(row[1])
            # Another transaction claimed it first (PostgreSQL): take the next one.
        row = txn.select_one("SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?"
                             " AND algorithm = ?", args)
        if row is None:
            return None
        txn.execute("UPDATE e2e_fallback_keys SET used = ? WHERE user_id = ? AND device_id = ? AND algorithm = ?",
                    (True, *args))
        return f"{algorithm}:{row[0]}", json.loads(row[1])

    # -- cross-signing ------------------------------------------------------------------

    async def set_cross_signing_keys(self, user_id: str, keys: dict[str, tuple[str, dict]], now: int,
                                     only_if_no_master: bool = False) -> int | None:
        """Store key_type -> (public key, key); returns the device_lists stream ID. With
        ``only_if_no_master``, stores nothing and returns None when the user has a master
        key (one uploaded meanwhile by a concurrent request)."""
        def txn_func(txn: Transaction) -> int | None:
            if only_if_no_master and txn.select_one(
                    "SELECT 1 FROM e2e_cross_signing_keys WHERE user_id = ? AND key_type = 'master'",
                    (user_id,)) is not None:
                return None
            for key_type, (public_key, key) in keys.items():
                txn.execute("INSERT INTO e2e_cross_signing_keys (user_id, key_type, public_key, key_json, ts)"
                            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, key_type) DO UPDATE SET"
                            " public_key = excluded.public_key, key_json = excluded.key_json, ts = excluded.ts",
                            (user_id, key_type, public_key, encode(key), now))
            return add_device_list_change_txn(txn, user_id)
        return await self.db.run_interaction("set_cross_signing_keys", txn_func)

    async def store_signatures(self, rows: list[SignatureRow],
                               changes: list[tuple[str, str | None]]) -> dict[tuple[str, str | None], int]:
        """Store signatures and one device_lists change per (user, notify_only); returns
        their stream IDs."""
        def txn_func(txn: Transaction) -> dict[tuple[str, str | None], int]:
            for row in rows:
                txn.execute("INSERT INTO e2e_cross_signing_signatures (signer_user_id, signer_key_id,"
                            " target_user_id, target_key_id, signature) VALUES (?, ?, ?, ?, ?)"
                            " ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)"
                            " DO UPDATE SET signature = excluded.signature",
                            (row.signer_user_id, row.signer_key_id, row.target_user_id, row.target_key_id,
                             row.signature))
            return {change: add_device_list_change_txn(txn, change[0], notify_only=change[1])
                    for change in dict.fromkeys(changes)}
        return await self.db.run_interaction("store_signatures", txn_func)

    # -- devices ------------------------------------------------------------------------

    async def delete_device_keys(self, user_id: str, device_ids: list[str]) -> int | None:
        return await self.db.run_interaction("delete_device_keys", delete_device_keys_txn, user_id, device_ids)

    # -- device list changes ------------------------------------------------------------

    async def device_list_updates(self, user_id: str, since_lists: int, upto_lists: int, since_events: int,
                                  upto_events: int) -> tuple[set[str], set[str]]:
        """(changed, left) between two positions, for ``user_id``.

        changed: users sharing a room with the user (or the user) whose device list or
        keys changed, and users the user newly shares a room with (a membership change
        between the event positions). left: users whose membership changed and who share
        no room with the user any more (best effort)."""
        def txn_func(txn: Transaction) -> tuple[set[str], set[str]]:
            changed: set[str] = set()
            left: set[str] = set()
            if upto_lists > since_lists:
                rows = txn.select_all(
                    "SELECT DISTINCT d.user_id FROM device_lists_stream d WHERE d.stream_id > ? AND d.stream_id <= ?"
                    " AND (d.notify_only = ? OR (d.notify_only IS NULL AND (d.user_id = ? OR "
                    + _SHARES_A_ROOM.format(user="d.user_id") + ")))",
                    (since_lists, upto_lists, user_id, user_id, user_id))
                changed.update(r[0] for r in rows)
            if upto_events > since_events:
                moves = txn.select_all(
                    "SELECT DISTINCT e.room_id, e.state_key FROM events e WHERE e.type = 'm.room.member'"
                    " AND e.stream_ordering > ? AND e.stream_ordering <= ? AND e.rejected_reason IS NULL"
                    " AND e.room_id IN (SELECT room_id FROM current_state WHERE type = 'm.room.member'"
                    " AND state_key = ?)", (since_events, upto_events, user_id))
                if moves:
                    candidates: set[str] = set()
                    for room_id, target in moves:
                        if target == user_id:
                            # The user's own membership changed: everyone in that room.
                            candidates.update(r[0] for r in txn.select_all(
                                "SELECT state_key FROM current_state WHERE room_id = ? AND type = 'm.room.member'",
                                (room_id,)))
                        elif target:
                            candidates.add(target)
                    sharing = users_sharing_rooms_txn(txn, user_id)
                    changed.update(c for c in candidates if c in sharing and c != user_id)
                    left.update(c for c in candidates if c not in sharing and c != user_id)
            changed -= left
            return changed, left
        return await self.db.run_interaction("device_list_updates", txn_func)

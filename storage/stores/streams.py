"""Stream IDs for the streams other than events (account data, receipts ...).

Each is ``MAX(stream_id) + 1`` of its table inside the writing transaction; on PostgreSQL
a per-stream advisory lock first, so IDs are committed in the order they are handed out
and a reader that has seen N has seen everything below N.
"""

from __future__ import annotations

import zlib

from storage.database import Transaction

_TABLES = {"account_data", "receipts", "presence"}


def next_stream_id_txn(txn: Transaction, table: str) -> int:
    if table not in _TABLES:
        raise ValueError(f"not a stream table: {table}")
    if txn.dialect == "postgres":
        txn.execute("SELECT pg_advisory_xact_lock(?)", (zlib.crc32(table.encode()),))
    return txn.select_one(f"SELECT COALESCE(MAX(stream_id), 0) + 1 FROM {table}")[0]


def max_stream_id_txn(txn: Transaction, table: str) -> int:
    if table not in _TABLES:
        raise ValueError(f"not a stream table: {table}")
    return txn.select_one(f"SELECT COALESCE(MAX(stream_id), 0) FROM {table}")[0]

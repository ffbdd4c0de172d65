"""Schema migrations: numbered SQL files in the ``schema`` package, applied in order.

``schema_version`` records each applied file; running again applies nothing. Each file
runs in its own transaction together with its version row, so a crash leaves the
database at a whole version. On PostgreSQL an advisory lock keeps two processes that
start together from migrating at once.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources

from storage.database import DatabasePool, Transaction

_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$")
_ADVISORY_LOCK_ID = 0x44726F63  # "Droc"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations(dialect: str) -> list[Migration]:
    found: dict[int, Migration] = {}
    for entry in resources.files("schema").iterdir():
        match = _FILE_PATTERN.match(entry.name)
        if not match:
            continue
        version, name, only_for = int(match.group(1)), match.group(2), match.group(3)
        if only_for and only_for != dialect:
            continue
        if version in found:
            raise RuntimeError(f"two migrations for {dialect} share version {version:04d}")
        found[version] = Migration(version, name, entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def _ensure_version_table(txn: Transaction) -> None:
    txn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)")


def _applied_versions(txn: Transaction) -> set[int]:
    _ensure_version_table(txn)
    return {row[0] for row in txn.select_all("SELECT version FROM schema_version")}


def _apply_one(txn: Transaction, migration: Migration) -> bool:
    if txn.dialect == "postgres":
        txn.execute("SELECT pg_advisory_xact_lock(?)", (_ADVISORY_LOCK_ID,))
    if migration.version in _applied_versions(txn):
        return False  # another process got there first
    txn.execute_script(migration.sql)
    txn.execute("INSERT INTO schema_version (version, name, applied_ts) VALUES (?, ?, ?)",
                (migration.version, migration.name, int(time.time() * 1000)))
    return True


def pending_migrations(db: DatabasePool, applied: set[int]) -> list[Migration]:
    return [m for m in available_migrations(db.dialect) if m.version not in applied]


def migrate_sync(db: DatabasePool, report=lambda line: None) -> list[Migration]:
    """Apply what is missing; returns the migrations applied (empty: up to date)."""
    applied = db.run_sync("schema_versions", _applied_versions)
    done = []
    for migration in pending_migrations(db, applied):
        if db.run_sync(f"migrate_{migration.version}", _apply_one, migration):
            done.append(migration)
            report(f"applied {migration.version:04d}_{migration.name}")
    return done


async def migrate(db: DatabasePool) -> list[Migration]:
    applied = await db.run_interaction("schema_versions", _applied_versions)
    done = []
    for migration in pending_migrations(db, applied):
        if await db.run_interaction(f"migrate_{migration.version}", _apply_one, migration):
            done.append(migration)
    return done


def current_version(db: DatabasePool) -> int:
    applied = db.run_sync("schema_versions", _applied_versions)
    return max(applied, default=0)

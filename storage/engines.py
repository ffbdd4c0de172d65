"""What differs between SQLite and PostgreSQL: connecting, placeholders, error classes.

SQL in the stores is written with ``?`` placeholders; the PostgreSQL engine turns them
into ``%s`` once per statement text (cached), so stores have one copy of each query.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


@dataclass(frozen=True)
class DatabaseTarget:
    engine: str  # "sqlite" or "postgres"
    path: str = ""  # SQLite file
    dsn: dict | None = None  # psycopg2 connect() keywords
    schema: str = ""  # PostgreSQL search_path (tests use a schema each)

    def describe(self) -> str:
        """Where the data lives, without credentials, for logs and CLI output."""
        if self.engine == "sqlite":
            return f"sqlite:{self.path}"
        dsn = self.dsn or {}
        where = f"postgres://{dsn.get('host', 'localhost')}:{dsn.get('port', 5432)}/{dsn.get('dbname', '')}"
        return where + (f" (schema {self.schema})" if self.schema else "")


def parse_database_url(url: str) -> DatabaseTarget:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # As SQLAlchemy spells it: sqlite:///relative/path.db, sqlite:////absolute/path.db
        if parsed.netloc:
            raise ValueError("database.url for SQLite is sqlite:///relative.db or sqlite:////absolute.db")
        path = unquote(parsed.path)[1:]
        if not path or path == "/":
            raise ValueError("database.url for SQLite needs a file path: sqlite:///path/drocsid.db")
        return DatabaseTarget("sqlite", path=path)
    if parsed.scheme in ("postgres", "postgresql"):
        query = parse_qs(parsed.query)
        dsn: dict[str, Any] = {"dbname": unquote(parsed.path.lstrip("/")) or "postgres"}
        if parsed.hostname:
            dsn["host"] = parsed.hostname
        if parsed.port:
            dsn["port"] = parsed.port
        if parsed.username:
            dsn["user"] = unquote(parsed.username)
        if parsed.password:
            dsn["password"] = unquote(parsed.password)
        for key in ("sslmode", "connect_timeout", "application_name"):
            if key in query:
                dsn[key] = query[key][0]
        schema = query.get("schema", [""])[0]
        if schema and not schema.replace("_", "").isalnum():
            raise ValueError("database.url schema must be letters, digits and underscores")
        return DatabaseTarget("postgres", dsn=dsn, schema=schema)
    raise ValueError("database.url must start with sqlite:/// or postgres://")


class SqliteEngine:
    name = "sqlite"
    # One connection and one thread: SQLite allows one writer, and WAL lets other
    # processes (the CLI) read and write alongside with a busy timeout.
    max_threads = 1

    def __init__(self, target: DatabaseTarget):
        self.target = target

    def connect(self):
        conn = sqlite3.connect(self.target.path, isolation_level=None, check_same_thread=False,
                               timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before we answer, so a 200 survives a power cut.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def begin(self, conn) -> None:
        # IMMEDIATE takes the write lock up front, so a transaction never fails halfway
        # on a lock upgrade when another process (the CLI) writes too.
        conn.execute("BEGIN IMMEDIATE")

    def commit(self, conn) -> None:
        conn.execute("COMMIT")

    def rollback(self, conn) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def convert(self, sql: str) -> str:
        return sql

    def is_integrity_error(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.IntegrityError)

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    def is_connection_error(self, error: BaseException) -> bool:
        return False


class PostgresEngine:
    name = "postgres"

    def __init__(self, target: DatabaseTarget, max_connections: int):
        import psycopg2
        import psycopg2.errors

        self._psycopg2 = psycopg2
        self.target = target
        self.max_threads = max_connections

    def connect(self):
        conn = self._psycopg2.connect(**(self.target.dsn or {}))
        conn.autocommit = False
        if self.target.schema:
            with conn.cursor() as cur:
                cur.execute(f'SET search_path TO "{self.target.schema}"')
            conn.commit()
        return conn

    def begin(self, conn) -> None:
        pass  # psycopg2 opens a transaction with the first statement

    def commit(self, conn) -> None:
        conn.commit()

    def rollback(self, conn) -> None:
        if not conn.closed:
            conn.rollback()

    def convert(self, sql: str) -> str:
        return _to_pyformat(sql)

    def is_integrity_error(self, error: BaseException) -> bool:
        return isinstance(error, self._psycopg2.IntegrityError)

    def is_retryable(self, error: BaseException) -> bool:
        errors = self._psycopg2.errors
        return isinstance(error, (errors.SerializationFailure, errors.DeadlockDetected))

    def is_connection_error(self, error: BaseException) -> bool:
        return isinstance(error, (self._psycopg2.OperationalError, self._psycopg2.InterfaceError))


@lru_cache(maxsize=4096)
def _to_pyformat(sql: str) -> str:
    # Statements are ours and carry no literal '?' or '%'; assert rather than guess.
    assert "%" not in sql, "use a placeholder instead of a literal % in SQL"
    return sql.replace("?", "%s")

"""Test databases: a fresh SQLite file, or a fresh PostgreSQL schema, per test.

On PostgreSQL each test process creates its own database (``drocsid_test_<pid>``) on
first use and drops it at exit; each test gets a schema in it, dropped at tear-down.
Databases left by processes that died are dropped by the next run.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re

ADMIN_URL = os.environ.get("DROCSID_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
_DB_PREFIX = "drocsid_test_"
_state: dict = {}
_counter = itertools.count(1)


def _admin_connect():
    import psycopg2

    from storage.engines import parse_database_url

    conn = psycopg2.connect(**parse_database_url(ADMIN_URL).dsn)
    conn.autocommit = True
    return conn


def _drop_stale(cur) -> None:
    cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (_DB_PREFIX + "%",))
    for (name,) in cur.fetchall():
        match = re.fullmatch(_DB_PREFIX + r"(\d+)", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _process_database() -> str:
    if "db" not in _state:
        name = f"{_DB_PREFIX}{os.getpid()}"
        conn = _admin_connect()
        with conn.cursor() as cur:
            _drop_stale(cur)
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        _state["db"] = name
        atexit.register(_drop_process_database, name)
    return _state["db"]


def _drop_process_database(name: str) -> None:
    try:
        conn = _admin_connect()
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()
    except Exception:
        pass


def _base_url(dbname: str) -> str:
    head, _, _ = ADMIN_URL.rpartition("/")
    return f"{head}/{dbname}"


class TestDatabase:
    """A database URL for one test, and its clean-up."""

    def __init__(self, engine: str, tmpdir: str):
        self.engine = engine
        if engine == "sqlite":
            self.url = f"sqlite:///{os.path.join(tmpdir, 'drocsid.db')}"
            self.schema = None
            return
        dbname = _process_database()
        self.schema = f"t{os.getpid()}_{next(_counter)}"
        import psycopg2

        from storage.engines import parse_database_url

        self._dsn = parse_database_url(_base_url(dbname)).dsn
        conn = psycopg2.connect(**self._dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE SCHEMA "{self.schema}"')
        conn.close()
        self.url = f"{_base_url(dbname)}?schema={self.schema}"

    def drop(self) -> None:
        if self.engine != "postgres":
            return
        import psycopg2

        conn = psycopg2.connect(**self._dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        conn.close()

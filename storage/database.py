"""The database pool: each transaction runs in Twisted's thread pool on its own connection.

``run_interaction(name, func, *args)`` calls ``func(txn, *args)`` inside one transaction
and returns a Deferred with its result. The transaction commits before the Deferred
fires, so whatever a handler answers after awaiting it is durable.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterable, TypeVar

from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from storage.engines import DatabaseTarget, PostgresEngine, SqliteEngine, parse_database_url

log = Logger()
T = TypeVar("T")

MAX_RETRIES = 5


class Transaction:
    """A cursor with ``?`` placeholders on both engines and a few helpers."""

    __slots__ = ("engine", "_cursor", "after_commit", "pool")

    def __init__(self, engine, cursor, pool: "DatabasePool | None" = None):
        self.engine = engine
        self._cursor = cursor
        self.pool = pool
        self.after_commit: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.name

    def execute(self, sql: str, args: Iterable[Any] = ()) -> "Transaction":
        self._cursor.execute(self.engine.convert(sql), tuple(args))
        return self

    def execute_many(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if not rows:
            return
        if self.engine.name == "postgres":
            # psycopg2's executemany is one round trip per row; execute_batch sends pages.
            from psycopg2.extras import execute_batch
            execute_batch(self._cursor, self.engine.convert(sql), rows, page_size=200)
        else:
            self._cursor.executemany(sql, rows)

    def execute_script(self, sql: str) -> None:
        """Run several statements (migrations); no placeholders."""
        if self.engine.name == "sqlite":
            for statement in split_statements(sql):
                self._cursor.execute(statement)
        else:
            self._cursor.execute(sql)

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self) -> list:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def select_one(self, sql: str, args: Iterable[Any] = ()):
        return self.execute(sql, args).fetchone()

    def select_all(self, sql: str, args: Iterable[Any] = ()) -> list:
        return self.execute(sql, args).fetchall()

    def call_after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` in the reactor thread once the transaction has committed."""
        self.after_commit.append(callback)


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements for sqlite3 (which runs one at a time).

    SQLite's executescript would commit our transaction; we split on ';' at the end of
    a line instead, which our migration files keep to.
    """
    statements, current = [], []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        if stripped.endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements


class DatabasePool:
    def __init__(self, reactor, target: DatabaseTarget, max_connections: int = 20):
        self.reactor = reactor
        self.target = target
        if target.engine == "sqlite":
            self.engine = SqliteEngine(target)
        else:
            self.engine = PostgresEngine(target, max_connections)
        self._threadpool = ThreadPool(minthreads=1, maxthreads=self.engine.max_threads,
                                      name=f"db-{self.engine.name}")
        self._local = threading.local()
        self._connections: list = []
        self._connections_lock = threading.Lock()
        self._running = False
        # Named callbacks the application hangs on the pool, for stores to call after a
        # commit (e.g. "devices_deleted"); stores stay free of handler imports.
        self.hooks: dict[str, Callable[..., None]] = {}

    @classmethod
    def from_url(cls, reactor, url: str, max_connections: int = 20) -> "DatabasePool":
        return cls(reactor, parse_database_url(url), max_connections)

    @property
    def dialect(self) -> str:
        return self.engine.name

    def start(self) -> None:
        if self._running:
            return
        self._threadpool.start()
        self._running = True

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.engine.connect()
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._connections_lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            try:
                conn.close()
            except Exception:
                pass

    def _run_in_thread(self, name: str, func: Callable[..., T], args, kwargs) -> tuple[T, list]:
        attempt = 0
        while True:
            attempt += 1
            conn = self._connection()
            txn = Transaction(self.engine, conn.cursor(), self)
            try:
                self.engine.begin(conn)
                result = func(txn, *args, **kwargs)
                self.engine.commit(conn)
                return result, txn.after_commit
            except BaseException as error:
                try:
                    self.engine.rollback(conn)
                except Exception:
                    self._drop_connection()
                if self.engine.is_connection_error(error):
                    self._drop_connection()
                    if attempt < MAX_RETRIES and not txn.after_commit:
                        log.warn("database connection lost in {name}; reconnecting", name=name)
                        time.sleep(0.05 * attempt)
                        continue
                elif self.engine.is_retryable(error) and attempt < MAX_RETRIES:
                    time.sleep(0.01 * attempt)
                    continue
                raise

    async def run_interaction(self, name: str, func: Callable[..., T], *args, **kwargs) -> T:
        if not self._running:
            raise RuntimeError("database pool is not running")
        result, callbacks = await threads.deferToThreadPool(
            self.reactor, self._threadpool, self._run_in_thread, name, func, args, kwargs)
        for callback in callbacks:
            callback()
        return result

    def run_sync(self, name: str, func: Callable[..., T], *args, **kwargs) -> T:
        """Run a transaction on the calling thread (CLI commands, before the reactor runs)."""
        result, callbacks = self._run_in_thread(name, func, args, kwargs)
        for callback in callbacks:
            callback()
        return result

    def close(self) -> defer.Deferred:
        """Stop the threads, then close every connection (after in-flight work)."""
        if not self._running:
            self._close_connections()
            return defer.succeed(None)
        self._running = False

        def stop():
            self._threadpool.stop()
            self._close_connections()

        return threads.deferToThread(stop) if self.reactor.running else defer.execute(stop)

    def _close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except Exception:
                pass
        self._local = threading.local()

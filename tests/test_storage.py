"""The database pool, migrations and account stores, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os

from twisted.internet import defer, reactor
from twisted.trial import unittest

from storage.database import DatabasePool, split_statements
from storage.engines import parse_database_url
from storage.migrations import available_migrations, migrate
from storage.stores import devices as device_sql
from storage.stores import tokens as token_sql
from storage.stores.tokens import TokenStore
from storage.stores.users import UserStore, insert_user_txn
from tests.support.databases import TestDatabase
from tests.support.server import inline


class Boom(Exception):
    pass


class StorageTests:
    engine = "sqlite"

    @inline
    async def setUp(self):
        tmpdir = os.path.abspath(self.mktemp())
        os.makedirs(tmpdir)
        self.database = TestDatabase(self.engine, tmpdir)
        self.addCleanup(self.database.drop)
        self.db = DatabasePool.from_url(reactor, self.database.url, max_connections=4)
        self.db.start()
        self.addCleanup(self.db.close)
        await migrate(self.db)

    @inline
    async def test_migrations_rerun_as_no_op(self):
        self.assertEqual(await migrate(self.db), [])
        versions = await self.db.run_interaction(
            "versions", lambda txn: [r[0] for r in txn.select_all("SELECT version FROM schema_version ORDER BY 1")])
        self.assertEqual(versions, [m.version for m in available_migrations(self.db.dialect)])
        # A second pool (another process, say) sees an up-to-date schema too.
        other = DatabasePool.from_url(reactor, self.database.url, max_connections=1)
        other.start()
        self.addCleanup(other.close)
        self.assertEqual(await migrate(other), [])

    @inline
    async def test_failed_transaction_leaves_nothing(self):
        def txn_func(txn):
            insert_user_txn(txn, "@ghost:test", None, 1)
            raise Boom()
        with self.assertRaises(Boom):
            await self.db.run_interaction("fails", txn_func)
        self.assertIsNone(await UserStore(self.db).get_user("@ghost:test"))

    @inline
    async def test_user_ids_are_unique(self):
        first = await self.db.run_interaction("insert", insert_user_txn, "@dup:test", "h", 1)
        second = await self.db.run_interaction("insert", insert_user_txn, "@dup:test", "h2", 2)
        self.assertEqual((first, second), (True, False))
        user = await UserStore(self.db).get_user("@dup:test")
        self.assertEqual((user.password_hash, user.admin, user.deactivated), ("h", False, False))

    @inline
    async def test_concurrent_transactions_all_commit(self):
        await defer.gatherResults([
            defer.ensureDeferred(self.db.run_interaction("insert", insert_user_txn, f"@u{i}:test", None, i))
            for i in range(60)])
        self.assertEqual(await UserStore(self.db).count_users(), 60)

    @inline
    async def test_refresh_token_is_single_use_under_a_race(self):
        def setup(txn):
            insert_user_txn(txn, "@r:test", None, 1)
            device_sql.upsert_device_txn(txn, "@r:test", "DEV", None, 1, None)
            token_sql.insert_refresh_token_txn(txn, "old", "@r:test", "DEV", 1, None)
        await self.db.run_interaction("setup", setup)
        store = TokenStore(self.db)
        results = await defer.gatherResults([
            defer.ensureDeferred(store.rotate_refresh_token("old", 2, f"a{i}", f"r{i}", 1000, None))
            for i in range(5)])
        self.assertEqual(len([r for r in results if r is not None]), 1)
        self.assertIsNone(await store.rotate_refresh_token("old", 3, "ax", "rx", 1000, None))

    @inline
    async def test_expired_refresh_token_is_refused(self):
        def setup(txn):
            insert_user_txn(txn, "@e:test", None, 1)
            device_sql.upsert_device_txn(txn, "@e:test", "DEV", None, 1, None)
            token_sql.insert_refresh_token_txn(txn, "stale", "@e:test", "DEV", 1, 50)
        await self.db.run_interaction("setup", setup)
        self.assertIsNone(await TokenStore(self.db).rotate_refresh_token("stale", 100, "a", "r", 1000, None))

    @inline
    async def test_deleting_a_device_revokes_its_tokens(self):
        def setup(txn):
            insert_user_txn(txn, "@d:test", None, 1)
            for device in ("ONE", "TWO"):
                device_sql.upsert_device_txn(txn, "@d:test", device, None, 1, None)
                token_sql.insert_access_token_txn(txn, f"tok-{device}", "@d:test", device, 1, None, None)
        await self.db.run_interaction("setup", setup)
        await self.db.run_interaction("delete", device_sql.delete_devices_txn, "@d:test", ["ONE"])
        store = TokenStore(self.db)
        self.assertIsNone(await store.get_token_owner("tok-ONE"))
        owner = await store.get_token_owner("tok-TWO")
        self.assertEqual((owner.user_id, owner.device_id), ("@d:test", "TWO"))


class SqliteStorageTests(StorageTests, unittest.TestCase):
    engine = "sqlite"

    @inline
    async def test_wal_and_full_sync(self):
        modes = await self.db.run_interaction("pragmas", lambda txn: (
            txn.select_one("PRAGMA journal_mode")[0], txn.select_one("PRAGMA synchronous")[0]))
        self.assertEqual(modes, ("wal", 2))


class PostgresStorageTests(StorageTests, unittest.TestCase):
    engine = "postgres"

    @inline
    async def test_reconnects_after_the_server_drops_the_connection(self):
        pool = DatabasePool.from_url(reactor, self.database.url, max_connections=1)
        pool.start()
        self.addCleanup(pool.close)
        backend = await pool.run_interaction("pid", lambda txn: txn.select_one("SELECT pg_backend_pid()")[0])
        killed = await self.db.run_interaction(
            "kill", lambda txn: txn.select_one("SELECT pg_terminate_backend(?)", (backend,))[0])
        self.assertTrue(killed)
        # The pool notices the dead connection and retries on a new one.
        self.assertEqual(await UserStore(pool).count_users(), 0)
        new_backend = await pool.run_interaction("pid", lambda txn: txn.select_one("SELECT pg_backend_pid()")[0])
        self.assertNotEqual(new_backend, backend)


class EngineUnitTests(unittest.TestCase):
    def test_parse_sqlite_urls(self):
        self.assertEqual(parse_database_url("sqlite:////var/lib/drocsid.db").path, "/var/lib/drocsid.db")
        self.assertEqual(parse_database_url("sqlite:///data/d.db").path, "data/d.db")

    def test_parse_postgres_url(self):
        target = parse_database_url("postgres://bob:s%40cret@db.example:5433/drocsid?sslmode=require&schema=s1")
        self.assertEqual(target.dsn, {"dbname": "drocsid", "host": "db.example", "port": 5433, "user": "bob",
                                      "password": "s@cret", "sslmode": "require"})
        self.assertEqual(target.schema, "s1")
        self.assertNotIn("cret", target.describe())

    def test_bad_urls(self):
        for url in ("mysql://x/y", "sqlite://", "sqlite://host/x.db", "postgres://h/db?schema=a;drop"):
            self.assertRaises(ValueError, parse_database_url, url)

    def test_split_statements(self):
        sql = "-- comment\nCREATE TABLE a (x INT);\n\nCREATE INDEX b\n  ON a (x);\n"
        self.assertEqual(split_statements(sql), ["CREATE TABLE a (x INT);", "CREATE INDEX b\n  ON a (x);"])

"""The store of other servers' keys, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os

from twisted.internet import reactor
from twisted.trial import unittest

from storage.database import DatabasePool
from storage.migrations import migrate
from storage.stores.server_keys import ServerKey, ServerKeyStore
from tests.support.databases import TestDatabase
from tests.support.server import inline


def response(server_name: str, valid_until_ts: int, tag: str) -> dict:
    return {"server_name": server_name, "valid_until_ts": valid_until_ts, "tag": tag}


class ServerKeyStoreTests:
    engine = "sqlite"

    @inline
    async def setUp(self):
        tmpdir = os.path.abspath(self.mktemp())
        os.makedirs(tmpdir)
        self.database = TestDatabase(self.engine, tmpdir)
        self.addCleanup(self.database.drop)
        self.db = DatabasePool.from_url(reactor, self.database.url, max_connections=2)
        self.db.start()
        self.addCleanup(self.db.close)
        await migrate(self.db)
        self.store = ServerKeyStore(self.db)

    @inline
    async def test_keys_of_one_response_round_trip(self):
        current = ServerKey("a.test", "ed25519:new", "TkVX", 5000, None, 1000)
        old = ServerKey("a.test", "ed25519:old", "T0xE", None, 900, 1000)
        await self.store.store_keys([current, old], response("a.test", 5000, "first"))
        await self.store.store_keys([ServerKey("b.test", "ed25519:new", "Qg", 7000, None, 1000)],
                                    response("b.test", 7000, "b"))
        self.assertEqual(await self.store.get_keys("a.test", ["ed25519:new", "ed25519:old", "ed25519:none"]),
                         {"ed25519:new": current, "ed25519:old": old})
        self.assertEqual(await self.store.get_keys("a.test", []), {})
        self.assertEqual(await self.store.get_all_keys("a.test"), [current, old])
        # Both keys came in one response: it is served once.
        self.assertEqual(await self.store.get_key_responses("a.test"), [response("a.test", 5000, "first")])
        self.assertEqual(await self.store.get_key_responses("c.test"), [])

    @inline
    async def test_newer_response_replaces_and_both_are_served(self):
        await self.store.store_keys([ServerKey("a.test", "ed25519:1", "MQ", 5000, None, 1000)],
                                    response("a.test", 5000, "first"))
        await self.store.store_keys([ServerKey("a.test", "ed25519:2", "Mg", 8000, None, 3000)],
                                    response("a.test", 8000, "second"))
        self.assertEqual([r["tag"] for r in await self.store.get_key_responses("a.test")], ["first", "second"])
        await self.store.store_keys([ServerKey("a.test", "ed25519:1", "MQ", 9000, None, 4000),
                                     ServerKey("a.test", "ed25519:2", "Mg", 9000, None, 4000)],
                                    response("a.test", 9000, "third"))
        self.assertEqual([r["tag"] for r in await self.store.get_key_responses("a.test")], ["third"])
        self.assertEqual((await self.store.get_keys("a.test", ["ed25519:1"]))["ed25519:1"].valid_until_ts, 9000)

    @inline
    async def test_a_stale_response_does_not_shorten_validity(self):
        fresh = ServerKey("a.test", "ed25519:1", "MQ", 9000, None, 4000)
        await self.store.store_keys([fresh], response("a.test", 9000, "fresh"))
        await self.store.store_keys([ServerKey("a.test", "ed25519:1", "MQ", 5000, None, 4500)],
                                    response("a.test", 5000, "stale"))
        self.assertEqual((await self.store.get_keys("a.test", ["ed25519:1"]))["ed25519:1"], fresh)
        self.assertEqual([r["tag"] for r in await self.store.get_key_responses("a.test")], ["fresh"])

    @inline
    async def test_an_expired_key_stays_expired(self):
        await self.store.store_keys([ServerKey("a.test", "ed25519:1", "MQ", 9000, None, 4000)],
                                    response("a.test", 9000, "current"))
        expired = ServerKey("a.test", "ed25519:1", "MQ", None, 6000, 5000)
        await self.store.store_keys([expired], response("a.test", 9500, "rotated"))
        self.assertEqual((await self.store.get_keys("a.test", ["ed25519:1"]))["ed25519:1"], expired)
        # An old response listing it as current again does not revive it.
        await self.store.store_keys([ServerKey("a.test", "ed25519:1", "MQ", 20000, None, 7000)],
                                    response("a.test", 20000, "replayed"))
        self.assertEqual((await self.store.get_keys("a.test", ["ed25519:1"]))["ed25519:1"], expired)


class SqliteServerKeyStoreTests(ServerKeyStoreTests, unittest.TestCase):
    engine = "sqlite"


class PostgresServerKeyStoreTests(ServerKeyStoreTests, unittest.TestCase):
    engine = "postgres"


class ValidityTests(unittest.TestCase):
    def test_current_key_is_valid_up_to_valid_until(self):
        key = ServerKey("a.test", "ed25519:1", "MQ", 5000, None, 1000)
        self.assertTrue(key.valid_at(0))
        self.assertTrue(key.valid_at(5000))
        self.assertFalse(key.valid_at(5001))

    def test_old_key_is_valid_before_it_expired(self):
        key = ServerKey("a.test", "ed25519:1", "MQ", None, 5000, 1000)
        self.assertTrue(key.valid_at(4999))
        self.assertFalse(key.valid_at(5000))

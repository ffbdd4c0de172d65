"""What survives: restarts, kill -9 in the middle of a burst, SIGTERM with requests in
flight; and what the logs say (and never say). Each runs the homeserver as a process."""

from __future__ import annotations

import os
from urllib.parse import quote

from twisted.internet import defer
from twisted.trial import unittest

from tests.support.databases import TestDatabase
from tests.support.process import HomeserverProcess, sleep
from tests.support.server import HttpClient, inline

V3 = "/_matrix/client/v3"
PASSWORD = "correct horse battery"


class DurabilityTests:
    engine = "sqlite"

    def setUp(self):
        self.tmpdir = os.path.abspath(self.mktemp())
        os.makedirs(self.tmpdir)
        self.database = TestDatabase(self.engine, self.tmpdir)
        self.addCleanup(self.database.drop)

    async def start(self, overrides: dict | None = None) -> HomeserverProcess:
        server = HomeserverProcess(self.tmpdir, self.database.url, overrides)
        self.addCleanup(server.cleanup)
        await server.start()
        return server

    def client_for(self, server: HomeserverProcess) -> HttpClient:
        client = HttpClient(server.base_url)
        self.addCleanup(client.close)
        return client

    async def kill_during_burst(self, server: HomeserverProcess, make_request, wanted: int) -> list[str]:
        """Eight clients fire requests; once ``wanted`` got a 200, kill -9. Returns what
        each acknowledged request created."""
        acknowledged: list[str] = []

        async def worker(client: HttpClient, index: int):
            for n in range(1000):
                try:
                    created = await make_request(client, index, n)
                except Exception:
                    return  # the connection died with the server
                if created is not None:
                    acknowledged.append(created)

        clients = [self.client_for(server) for _ in range(8)]
        workers = [defer.ensureDeferred(worker(c, i)) for i, c in enumerate(clients)]
        for _ in range(2000):
            if len(acknowledged) >= wanted:
                break
            await sleep(0.01)
        server.kill()
        await defer.gatherResults(workers)
        self.assertGreaterEqual(len(acknowledged), wanted)
        return acknowledged

    async def register(self, client: HttpClient, name: str):
        return await client.request("POST", f"{V3}/register", {
            "username": name, "password": PASSWORD, "auth": {"type": "m.login.dummy"}})

    @inline
    async def test_restart_keeps_users_devices_and_tokens(self):
        server = await self.start()
        client = self.client_for(server)
        status, first = await self.register(client, "alice")
        self.assertEqual(status, 200, first)
        status, second = await client.request("POST", f"{V3}/login", {
            "type": "m.login.password", "user": "alice", "password": PASSWORD,
            "initial_device_display_name": "laptop"})
        self.assertEqual(status, 200)
        await client.close()
        self.assertEqual(await server.terminate(), 0)

        await server.start()
        client = self.client_for(server)
        for session in (first, second):
            status, who = await client.request("GET", f"{V3}/account/whoami", token=session["access_token"])
            self.assertEqual((status, who.get("device_id")), (200, session["device_id"]), who)
        status, devices = await client.request("GET", f"{V3}/devices", token=first["access_token"])
        self.assertEqual(sorted((d["device_id"], d["display_name"]) for d in devices["devices"]),
                         sorted([(first["device_id"], None), (second["device_id"], "laptop")]))
        # Migrations re-ran as a no-op: nothing was applied on the second start.
        self.assertFalse([r for r in server.log_records() if "applied migration" in r.get("msg", "")])
        self.assertEqual(await server.terminate(), 0)

    @inline
    async def test_kill_9_during_a_burst_loses_no_acknowledged_account(self):
        server = await self.start()

        async def register(client: HttpClient, index: int, n: int):
            status, body = await self.register(client, f"burst{index}x{n}")
            return body["user_id"] if status == 200 else None

        acknowledged = await self.kill_during_burst(server, register, 25)

        await server.start()
        client = self.client_for(server)
        for user_id in acknowledged:
            status, body = await client.request("POST", f"{V3}/login", {
                "type": "m.login.password", "user": user_id, "password": PASSWORD})
            self.assertEqual(status, 200, f"{user_id} got a 200 before the kill but cannot log in: {body}")
        self.assertEqual(await server.terminate(), 0)

    @inline
    async def test_kill_9_during_sends_loses_no_event_and_keeps_the_dag_whole(self):
        server = await self.start()
        client = self.client_for(server)
        status, session = await self.register(client, "sender")
        token = session["access_token"]
        status, room = await client.request("POST", f"{V3}/createRoom", {"name": "burst"}, token=token)
        room_id = quote(room["room_id"], safe="")

        async def send(client: HttpClient, index: int, n: int):
            status, body = await client.request("PUT", f"{V3}/rooms/{room_id}/send/m.room.message/w{index}n{n}",
                                                {"msgtype": "m.text", "body": f"{index}/{n}"}, token=token)
            return body["event_id"] if status == 200 else None

        acknowledged = await self.kill_during_burst(server, send, 100)

        await server.start()
        client = self.client_for(server)
        for event_id in acknowledged:
            status, event = await client.request("GET", f"{V3}/rooms/{room_id}/event/{quote(event_id, safe='')}",
                                                 token=token)
            self.assertEqual(status, 200, f"{event_id} was acknowledged before the kill but is gone: {event}")
        await self.assert_dag_consistent(room["room_id"])
        # The room goes on where it stopped.
        status, after = await client.request("PUT", f"{V3}/rooms/{room_id}/send/m.room.message/after",
                                             {"msgtype": "m.text", "body": "after"}, token=token)
        self.assertEqual(status, 200, after)
        await server.terminate()
        await self.assert_dag_consistent(room["room_id"])

    async def assert_dag_consistent(self, room_id: str) -> None:
        from twisted.internet import reactor

        from storage.database import DatabasePool
        db = DatabasePool.from_url(reactor, self.database.url, 1)
        db.start()
        try:
            def check(txn):
                dangling = txn.select_all(
                    "SELECT e.event_id, e.prev_event_id FROM event_edges e LEFT JOIN events p"
                    " ON p.event_id = e.prev_event_id WHERE e.room_id = ? AND p.event_id IS NULL", (room_id,))
                childless = {r[0] for r in txn.select_all(
                    "SELECT event_id FROM events e WHERE room_id = ? AND NOT outlier AND rejected_reason IS NULL"
                    " AND NOT soft_failed AND NOT EXISTS (SELECT 1 FROM event_edges x WHERE x.prev_event_id = e.event_id)",
                    (room_id,))}
                extremities = {r[0] for r in txn.select_all(
                    "SELECT event_id FROM event_forward_extremities WHERE room_id = ?", (room_id,))}
                tip_group = txn.select_one(
                    "SELECT state_group FROM events WHERE room_id = ? ORDER BY stream_ordering DESC LIMIT 1",
                    (room_id,))[0]
                current = {(r[0], r[1]): r[2] for r in txn.select_all(
                    "SELECT type, state_key, event_id FROM current_state WHERE room_id = ?", (room_id,))}
                from storage.stores.state import load_group_txn
                return dangling, childless, extremities, current, load_group_txn(txn, tip_group)
            dangling, childless, extremities, current, tip_state = await db.run_interaction("check", check)
        finally:
            await db.close()
        self.assertEqual(dangling, [])
        self.assertEqual(extremities, childless)
        self.assertEqual(len(extremities), 1)
        self.assertEqual(current, tip_state)

    @inline
    async def test_sigterm_lets_in_flight_requests_finish(self):
        # Expensive hashing keeps a registration in flight long enough to signal during it.
        # The grace period is long so that a loaded machine (slower hashing) still lets
        # the request finish: what is tested is that shutdown waits, not how long for.
        slow = {"auth": {"password_hash_time_cost": 40, "password_hash_memory_kib": 65536},
                "server": {"shutdown_grace_secs": 120.0}, "logging": {"level": "debug"}}
        server = await self.start(slow)
        client = self.client_for(server)
        pending = defer.ensureDeferred(self.register(client, "patient"))
        for _ in range(1000):
            if any(r.get("event") == "request_started" and "/register" in r.get("path", "")
                   for r in server.log_records()):
                break
            await sleep(0.01)
        self.assertFalse(pending.called, "the request finished before the signal; make hashing slower")
        exit_code = await server.terminate()
        status, body = await pending
        self.assertEqual(status, 200, body)
        self.assertEqual(exit_code, 0)
        self.assertTrue(any(r.get("event") == "stopped" for r in server.log_records()))

        await server.start()
        client = self.client_for(server)
        status, who = await client.request("GET", f"{V3}/account/whoami", token=body["access_token"])
        self.assertEqual((status, who.get("user_id")), (200, "@patient:test.local"))
        await server.terminate()

    @inline
    async def test_logs_are_structured_and_hold_no_secrets(self):
        server = await self.start()
        client = self.client_for(server)
        status, session = await self.register(client, "quiet")
        token = session["access_token"]
        await client.request("GET", f"{V3}/account/whoami", query={"access_token": token})
        await client.request("GET", f"{V3}/account/whoami", token=token)
        status, fresh = await client.request("POST", f"{V3}/register", {
            "username": "quieter", "password": PASSWORD, "refresh_token": True, "auth": {"type": "m.login.dummy"}})
        await client.request("POST", f"{V3}/refresh", {"refresh_token": fresh["refresh_token"]})
        await client.request("POST", f"{V3}/login", {"type": "m.login.password", "user": "quiet",
                                                     "password": "wrong password"})
        await server.terminate()

        text = server.log_text()
        for secret in (PASSWORD, "wrong password", token, fresh["refresh_token"], fresh["access_token"]):
            self.assertNotIn(secret, text)
        access = [r for r in server.log_records() if r.get("logger") == "drocsid.access"]
        whoami = [r for r in access if r["path"].startswith(f"{V3}/account/whoami")]
        self.assertEqual(len(whoami), 2)
        self.assertEqual(whoami[0]["path"], f"{V3}/account/whoami?access_token=<redacted>")
        for record in whoami:
            self.assertEqual((record["method"], record["status"], record["user"]),
                             ("GET", 200, "@quiet:test.local"))
            self.assertIsInstance(record["duration_ms"], float)
            self.assertEqual(record["client"], "127.0.0.1")
        self.assertIn(403, [r["status"] for r in access if r["path"] == f"{V3}/login"])


class DurabilitySqliteTests(DurabilityTests, unittest.TestCase):
    engine = "sqlite"


class DurabilityPostgresTests(DurabilityTests, unittest.TestCase):
    engine = "postgres"

"""What survives: restarts, kill -9 in the middle of a burst, SIGTERM with requests in
flight; and what the logs say (and never say). Each runs the homeserver as a process."""

from __future__ import annotations

import os

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
        clients = [self.client_for(server) for _ in range(8)]
        acknowledged: list[str] = []
        attempted = 0

        async def worker(client: HttpClient, index: int):
            nonlocal attempted
            for n in range(100):
                attempted += 1
                try:
                    status, body = await self.register(client, f"burst{index}x{n}")
                except Exception:
                    return  # the connection died with the server
                if status == 200:
                    acknowledged.append(body["user_id"])

        workers = [defer.ensureDeferred(worker(c, i)) for i, c in enumerate(clients)]
        for _ in range(500):
            if len(acknowledged) >= 25:
                break
            await sleep(0.01)
        server.kill()
        await defer.gatherResults(workers)
        self.assertGreaterEqual(len(acknowledged), 25)

        await server.start()
        client = self.client_for(server)
        for user_id in acknowledged:
            status, body = await client.request("POST", f"{V3}/login", {
                "type": "m.login.password", "user": user_id, "password": PASSWORD})
            self.assertEqual(status, 200, f"{user_id} got a 200 before the kill but cannot log in: {body}")
        self.assertEqual(await server.terminate(), 0)

    @inline
    async def test_sigterm_lets_in_flight_requests_finish(self):
        # Expensive hashing keeps a registration in flight long enough to signal during it.
        slow = {"auth": {"password_hash_time_cost": 40, "password_hash_memory_kib": 65536},
                "logging": {"level": "debug"}}
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

"""Deleting a device (or logging it out) takes its end-to-end keys with it, and the users
who share a room with its owner hear that the device list changed."""

from __future__ import annotations

from tests.support.server import inline
from tests.test_e2e_keys_api import E2ETestCase, q

PASSWORD = "correct horse battery"


class DeviceDeletionTests:
    @inline
    async def test_deleted_device_keys_disappear_and_watchers_are_told(self):
        alice, bob = await self.user("alice"), await self.user("bob")
        phone = await self.second_device("alice")
        await self.upload(phone, device_keys=self.device_keys(phone),
                          one_time_keys={"signed_curve25519:AAAA": self.otk(phone, "k1")})
        await self.shared_room(alice, bob)
        since = (await self.sync(bob))["next_batch"]
        query = await self.ok("POST", "/keys/query", {"device_keys": {alice["user_id"]: []}}, who=bob)
        self.assertIn(phone["device_id"], query["device_keys"][alice["user_id"]])

        path = f"/devices/{q(phone['device_id'])}"
        status, challenge = await self.request("DELETE", f"/_matrix/client/v3{path}", token=alice["access_token"])
        self.assertEqual(status, 401)
        await self.ok("DELETE", path, {"auth": {"type": "m.login.password", "session": challenge["session"],
                                                "user": alice["user_id"], "password": PASSWORD}}, who=alice)
        body = await self.sync(bob, since, timeout=5000)
        self.assertIn(alice["user_id"], body["device_lists"]["changed"])
        query = await self.ok("POST", "/keys/query", {"device_keys": {alice["user_id"]: []}}, who=bob)
        self.assertNotIn(phone["device_id"], query["device_keys"].get(alice["user_id"], {}))
        claim = await self.ok("POST", "/keys/claim", {"one_time_keys": {
            alice["user_id"]: {phone["device_id"]: "signed_curve25519"}}}, who=bob)
        self.assertEqual(claim["one_time_keys"].get(alice["user_id"], {}), {})
        rows = await self.hs.db.run_interaction("left", lambda txn: txn.select_all(
            "SELECT device_id FROM e2e_one_time_keys WHERE user_id = ?", (alice["user_id"],)))
        self.assertEqual(rows, [])

    @inline
    async def test_logout_removes_the_device_keys(self):
        alice = await self.user("alice")
        phone = await self.second_device("alice")
        await self.upload(phone, device_keys=self.device_keys(phone))
        await self.ok("POST", "/logout", {}, who=phone)
        rows = await self.hs.db.run_interaction("left", lambda txn: txn.select_all(
            "SELECT device_id FROM e2e_device_keys WHERE user_id = ?", (alice["user_id"],)))
        self.assertEqual(rows, [])


class DeviceDeletionSqliteTests(DeviceDeletionTests, E2ETestCase):
    engine = "sqlite"


class DeviceDeletionPostgresTests(DeviceDeletionTests, E2ETestCase):
    engine = "postgres"

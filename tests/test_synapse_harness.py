"""The Synapse harness (tests/support/synapse.py): a real Synapse starts on loopback,
takes a registration, a room and a message, serves its keys on the TLS federation
listener, and stops."""

from __future__ import annotations

import os
from urllib.parse import quote

from twisted.trial import unittest

from tests.support.server import inline
from tests.support.synapse import SynapseProcess, synapse_available


class SynapseHarnessTests(unittest.TestCase):
    timeout = 240

    @inline
    async def test_synapse_starts_serves_and_stops(self):
        reason = synapse_available()
        if reason:
            raise unittest.SkipTest(reason)
        synapse = SynapseProcess(os.path.abspath(self.mktemp()))
        self.addCleanup(synapse.cleanup)
        seconds = await synapse.start()
        self.assertTrue(synapse.running())
        self.assertEqual(synapse.server_name, f"127.0.0.1:{synapse.federation_port}")
        self.assertLess(seconds, 90)

        user_id, token = await synapse.register("alice")
        self.assertEqual(user_id, f"@alice:{synapse.server_name}")
        status, body = await synapse.request("GET", "/_matrix/client/v3/account/whoami",
                                             token=token)
        self.assertEqual((status, body.get("user_id")), (200, user_id), body)

        status, body = await synapse.request(
            "POST", "/_matrix/client/v3/createRoom", {"name": "harness", "preset": "public_chat"},
            token=token)
        self.assertEqual(status, 200, body)
        room_id = body["room_id"]
        self.assertTrue(room_id.endswith(":" + synapse.server_name), room_id)  # room version 11

        status, body = await synapse.request(
            "PUT", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/txn1",
            {"msgtype": "m.text", "body": "hello from the harness"}, token=token)
        self.assertEqual(status, 200, body)
        event_id = body["event_id"]
        status, body = await synapse.request(
            "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/event/"
                   f"{quote(event_id, safe='')}", token=token)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["content"]["body"], "hello from the harness")

        keys = await synapse.server_keys()
        self.assertEqual(keys["server_name"], synapse.server_name)
        self.assertTrue(keys["verify_keys"])
        self.assertIn(synapse.server_name, keys["signatures"])

        pid = synapse.pid
        status = await synapse.stop()
        self.assertFalse(synapse.running())
        self.assertIsNotNone(status)
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)

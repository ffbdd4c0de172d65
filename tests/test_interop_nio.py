"""matrix-nio (a client we did not write) registers, creates a room, invites, joins,
sends, syncs and pages history against a running homeserver."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from twisted.internet import threads

from tests.support.server import HomeserverTestCase, inline

SCENARIO = os.path.join(os.path.dirname(__file__), "interop", "nio_scenario.py")


class MatrixNioTests:
    @inline
    async def test_two_nio_clients_talk(self):
        base = f"http://127.0.0.1:{self.hs.listening_port}"
        # In a thread, so the homeserver (on this reactor) keeps answering meanwhile.
        done = await threads.deferToThread(subprocess.run, [sys.executable, SCENARIO, base], capture_output=True,
                                           text=True, timeout=180)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        report = json.loads(done.stdout.strip().splitlines()[-1])
        self.assertTrue(report["login"])
        self.assertTrue(report["bob_invited"])
        self.assertTrue(report["bob_joined"])
        self.assertTrue(report["sent"])
        self.assertIn("hello from nio", report["bob_saw"])
        self.assertEqual(report["bob_room_name"], "nio room")
        self.assertEqual(report["bob_room_topic"], "interop")
        self.assertEqual(report["bob_room_members"], sorted([report["alice"], report["bob"]]))
        self.assertEqual(report["history"][:2], ["hi alice", "hello from nio"])
        self.assertEqual(report["alice_displayname"], "Alice Nio")
        self.assertEqual(report["whoami"], report["bob"])
        self.assertTrue(report["edit_bundled"])
        self.assertEqual(report["thread_count"], 1)
        self.assertEqual(report["reactions"], ["👍"])
        self.assertEqual(report["redacted_content"], {})
        self.assertTrue(report["typing_seen"])
        self.assertTrue(report["receipt_seen"])
        self.assertTrue(report["uploaded"])
        self.assertTrue(report["downloaded_same"])
        self.assertEqual(report["history_count"], 500)
        self.assertTrue(report["history_in_order"])
        self.assertEqual(report["otk_count"], 1)
        self.assertTrue(report["queried_device"])
        self.assertTrue(report["claimed"])
        self.assertEqual(report["to_device"], [["m.test.ping", report["bob"], {"n": 1}]])


class MatrixNioSqliteTests(MatrixNioTests, HomeserverTestCase):
    engine = "sqlite"


class MatrixNioPostgresTests(MatrixNioTests, HomeserverTestCase):
    engine = "postgres"

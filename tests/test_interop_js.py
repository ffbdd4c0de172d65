"""matrix-js-sdk (the library under Element Web) runs its sync loop against a running
homeserver: invite, join, messages both ways, typing, a read receipt."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from twisted.internet import threads

from tests.support.server import HomeserverTestCase, inline

JS_DIR = os.path.join(os.path.dirname(__file__), "interop", "js")


class MatrixJsSdkTests:
    @inline
    async def test_two_js_sdk_clients_talk(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is needed for the matrix-js-sdk interop test")
        self.assertTrue(os.path.isdir(os.path.join(JS_DIR, "node_modules", "matrix-js-sdk")),
                        "run `make test` (it installs matrix-js-sdk with npm ci)")
        base = f"http://127.0.0.1:{self.hs.listening_port}"
        done = await threads.deferToThread(subprocess.run, [node, "scenario.mjs", base], cwd=JS_DIR,
                                           capture_output=True, text=True, timeout=180)
        self.assertEqual(done.returncode, 0, (done.stdout + done.stderr)[-4000:])
        report = json.loads(done.stdout.strip().splitlines()[-1])
        self.assertTrue(report["versions"])
        self.assertTrue(report["bobInvited"])
        self.assertEqual(report["bobReceived"], "hello from js")
        self.assertEqual(report["aliceReceived"], "hi from bob")
        self.assertTrue(report["typingSeen"])
        self.assertTrue(report["receiptSent"])
        self.assertEqual(report["roomName"], "js room")
        self.assertEqual(report["members"], sorted([report["alice"], report["bob"]]))


class MatrixJsSdkSqliteTests(MatrixJsSdkTests, HomeserverTestCase):
    engine = "sqlite"


class MatrixJsSdkPostgresTests(MatrixJsSdkTests, HomeserverTestCase):
    engine = "postgres"

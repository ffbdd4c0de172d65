"""matrix-js-sdk (the library under Element Web) runs its sync loop against a running
homeserver, used through its own high-level API: invite, join, messages both ways, an edit, a
reaction, a threaded reply, a redaction, typing, a read receipt, an image uploaded and
downloaded, 500 messages paged back with scrollback on a new device, device keys and a
to-device message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from twisted.internet import threads

from tests.support.server import HomeserverTestCase, inline

JS_DIR = os.path.join(os.path.dirname(__file__), "interop", "js")


def last_report(stdout: str) -> dict:
    """The JSON report the scenario prints last (the SDK may log before it)."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


class MatrixJsSdkTests:
    @inline
    async def test_two_js_sdk_clients_talk(self):
        node = shutil.which("node")
        self.assertIsNotNone(node, "node is needed for the matrix-js-sdk interop test")
        self.assertTrue(os.path.isdir(os.path.join(JS_DIR, "node_modules", "matrix-js-sdk")),
                        "run `make test` (it installs matrix-js-sdk with npm ci)")
        base = f"http://127.0.0.1:{self.hs.listening_port}"
        # In a thread, so the homeserver (on this reactor) keeps answering meanwhile.
        done = await threads.deferToThread(subprocess.run, [node, "scenario.mjs", base], cwd=JS_DIR,
                                           capture_output=True, text=True, timeout=180)
        report = last_report(done.stdout)
        self.assertEqual(done.returncode, 0, f"failed at step {report.get('step')}: {report.get('error')}\n"
                                             + (done.stdout + done.stderr)[-4000:])
        self.assertNotIn("error", report)
        self.assertEqual(report["step"], "done")
        alice, bob = report["alice"], report["bob"]

        # Invite, join, messages both ways.
        self.assertTrue(report["versions"])
        self.assertTrue(report["bobInvited"])
        self.assertEqual(report["bobReceived"], "hello from js")
        self.assertEqual(report["aliceReceived"], "hi from bob")
        self.assertEqual(report["roomName"], "js room")
        self.assertEqual(report["members"], sorted([alice, bob]))

        # An edit: bob's model shows the new content, and keeps the original.
        self.assertEqual(report["editedBody"], "hello")
        self.assertEqual(report["editOriginalBody"], "helo")
        self.assertTrue(report["editReplacingId"])
        self.assertTrue(report["editIsEdited"])
        # A reaction, aggregated by key in alice's model.
        self.assertEqual(report["reactions"], [["👍", [bob]]])
        self.assertTrue(report["reactionId"])
        # A threaded reply: alice's model has the thread, rooted at the edited message.
        self.assertTrue(report["threadRoot"])
        self.assertTrue(report["threadReplyRootId"])
        self.assertEqual(report["threadReplyBodies"], ["in a thread"])
        self.assertEqual(report["threadRelation"], "m.thread")
        self.assertEqual(report["threadLength"], 1)
        # The server bundles the edit and the thread summary on the root event.
        self.assertTrue(report["bundledEdit"])
        self.assertEqual(report["bundledThreadCount"], 1)
        self.assertTrue(report["bundledThreadLatest"])
        # A redaction: alice's model shows the event redacted, by bob, with the reason.
        self.assertEqual(report["redactedContent"], {})
        self.assertEqual(report["redactedReason"], "typo")
        self.assertEqual(report["redactedBy"], bob)

        # Typing and a (main-timeline) read receipt, seen by the other client.
        self.assertTrue(report["typingSeen"])
        self.assertTrue(report["receiptSent"])
        self.assertTrue(report["receiptSeen"])
        self.assertEqual(report["receiptThreadId"], "main")
        self.assertTrue(report["receiptHasTs"])
        self.assertTrue(report["eventReadUpTo"])

        # An image: uploaded, announced, downloaded through authenticated media.
        self.assertTrue(report["uploadedMxc"])
        self.assertTrue(report["imageUrlSame"])
        self.assertEqual(report["downloadPath"], "/_matrix/client/v1/media/download")
        self.assertEqual(report["downloadStatus"], 200)
        self.assertEqual(report["downloadType"], "image/png")
        self.assertTrue(report["downloadedSame"])
        self.assertEqual(report["downloadWithoutTokenStatus"], 401)

        # 500 messages: a new device's first sync has the last 10, scrollback pages back the
        # other 490 a hundred at a time, in order, down to the room's creation.
        self.assertTrue(report["laterDeviceNew"])
        self.assertEqual(report["historyInitiallySeen"], 10)
        self.assertEqual(report["scrollbackCalls"], 5)
        self.assertEqual(report["historyCount"], 500)
        self.assertTrue(report["historyInOrder"])
        self.assertEqual(report["historyStart"], "m.room.create")

        # Device keys uploaded by alice, queried and claimed by bob; a to-device message.
        device = report["aliceDevice"]
        self.assertEqual(report["otkCount"], 1)
        self.assertEqual(report["queriedKeys"], {f"curve25519:{device}": "c" * 43, f"ed25519:{device}": "e" * 43})
        self.assertEqual(report["queriedAlgorithms"], ["m.olm.v1.curve25519-aes-sha2"])
        self.assertEqual(report["claimed"], {"curve25519:AAAAAQ": "o" * 43})
        self.assertEqual(report["claimedAgain"], {})
        self.assertEqual(report["toDevice"], ["m.test.ping", bob, {"n": 1}])


class MatrixJsSdkSqliteTests(MatrixJsSdkTests, HomeserverTestCase):
    engine = "sqlite"


class MatrixJsSdkPostgresTests(MatrixJsSdkTests, HomeserverTestCase):
    engine = "postgres"

"""The Drocsid web client in a real browser (Debian's Chromium, driven by playwright-core
from node): scenarios in tests/e2e/*.mjs run against a homeserver on this reactor and print a
JSON report, which the test checks. SQLite only: the storage is covered elsewhere.

Screenshots go to $DROCSID_E2E_SCREENSHOTS, else to the test's temporary directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

from twisted.internet import threads

from tests.support.api import API, V3, ApiHelpers, q
from tests.support.server import HomeserverTestCase, inline

E2E_DIR = os.path.join(os.path.dirname(__file__), "e2e")
CHROMIUM = os.environ.get("DROCSID_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery"


def last_report(stdout: str) -> dict:
    """The JSON report the scenario prints last."""
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}


class BrowserTestCase(ApiHelpers, HomeserverTestCase):
    engine = "sqlite"

    def setUp(self):
        # Fail, never skip: a missing browser must not pass quietly.
        self.node = shutil.which("node")
        self.assertIsNotNone(self.node, "node is needed for the browser tests")
        self.assertTrue(os.path.isdir(os.path.join(E2E_DIR, "node_modules", "playwright-core")),
                        "run `make test` (it installs playwright-core in tests/e2e with npm ci)")
        self.assertTrue(os.access(CHROMIUM, os.X_OK),
                        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
        return super().setUp()

    def screenshot_dir(self, name: str) -> str:
        root = os.environ.get("DROCSID_E2E_SCREENSHOTS") or os.path.join(os.path.abspath(self.mktemp()), "screenshots")
        path = os.path.join(root, name)
        os.makedirs(path, exist_ok=True)
        print(f"screenshots: {path}")
        return path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.hs.listening_port}"

    async def run_scenario(self, script: str, arguments: dict, timeout: int = 420) -> dict:
        # In a thread, so the homeserver (on this reactor) keeps answering meanwhile.
        done = await threads.deferToThread(subprocess.run, [self.node, script, json.dumps(arguments)], cwd=E2E_DIR,
                                           capture_output=True, text=True, timeout=timeout)
        report = last_report(done.stdout)
        self.assertEqual(done.returncode, 0, f"{script} failed at step {report.get('step')}: {report.get('error')}\n"
                                             + (done.stdout + done.stderr)[-4000:])
        self.assertNotIn("error", report)
        self.assertEqual(report.get("step"), "done", report)
        return report

    async def seed_messages(self, authors: list[str], channel_id: str, count: int, run: int = 7) -> float:
        """Sends "message 0" .. "message {count-1}" in order, with the content and the event
        sender that POST /api/v1/channels/{id}/messages uses, the authors taking turns every
        ``run`` messages (so the list has both grouped rows and rows with a header); returns
        the seconds taken. In process rather than over HTTP: measured, 10,000 sequential
        HTTP sends take ~27 s here, 16 concurrent ones ~21 s but out of order, this ~18 s."""
        # Imported here: importing it before the homeserver is loaded is a circular import.
        from homeserver.drocsid.messages import _text_content
        started = time.monotonic()
        sender = self.hs.event_sender
        for n in range(count):
            author = authors[(n // run) % len(authors)]
            await sender.send(author, channel_id, "m.room.message", _text_content(f"message {n}", False))
        return time.monotonic() - started


class ScrollTests(BrowserTestCase):
    MESSAGES = 10000

    @inline
    async def test_ten_thousand_messages_scroll(self):
        user, token = await self.user("scroller")
        other, other_token = await self.user("chatter")
        server = await self.ok("POST", f"{API}/servers", {"name": "Scroll"}, token=token)
        space, channel = server["id"], server["channels"][0]["id"]
        await self.ok("POST", f"{V3}/rooms/{q(space)}/invite", {"user_id": other}, token=token)
        await self.ok("POST", f"{V3}/join/{q(space)}", {}, token=other_token)
        await self.ok("POST", f"{API}/channels/{q(channel)}/join", {}, token=other_token)
        seconds = await self.seed_messages([user, other], channel, self.MESSAGES)
        print(f"seeded {self.MESSAGES} messages in {seconds:.1f}s")
        # The newest page answers through /api/v1 as the client will read it.
        newest = await self.ok("GET", f"{API}/channels/{q(channel)}/messages?limit=1", token=token)
        self.assertEqual(newest[0]["content"], f"message {self.MESSAGES - 1}")

        report = await self.run_scenario("scroll.mjs", {
            "base": self.base, "username": "scroller", "password": PASSWORD, "serverId": space,
            "channelId": channel, "screenshots": self.screenshot_dir("scroll"), "expected": self.MESSAGES})
        summary = {k: report.get(k) for k in ("loaded", "loadedSeeded", "maxDom", "maxRows", "loadAllMs",
                                              "scrollUpIterations", "nudges", "wheelSteps", "wheelMs", "frames")}
        print("scroll report:", json.dumps({"seedSeconds": round(seconds, 1), **summary}))

        self.assertEqual(report["pageErrors"], [])
        self.assertEqual(report["loaded"], self.MESSAGES, summary)
        self.assertEqual(report["loadedSeeded"], self.MESSAGES)
        self.assertTrue(report["loadedInOrder"])
        self.assertTrue(report["newestVisibleAtOpen"])
        # Virtualized: a few screens of rows, whatever is loaded (10,000 rendered rows would
        # be well over 50,000 elements).
        self.assertLessEqual(report["maxRows"], 150, summary)
        self.assertLessEqual(report["maxDom"], 3000, summary)
        self.assertTrue(report["channelStartVisible"])
        self.assertTrue(report["oldestVisible"])
        self.assertTrue(report["newestVisible"])
        # Every sample stayed bounded, not only the maximum we kept.
        for sample in report["samples"]:
            self.assertLessEqual(sample["rows"], 150, sample)

"""The web client end to end, two users in two browsers (tests/e2e/chat.mjs): register,
create a server, invite by link, chat both ways with typing, an edit, a reaction, a reply,
an @mention (autocomplete, pill, badge), a thread and an image; a private channel that a
role and an overwrite open to the other user and that taking the role closes again; the
audit log and a webhook; the quick switcher; idle presence; friends, a DM and its
notification; unread badge, divider and jump bar; a category; token refresh; a dropped
gateway connection that resumes with every missed message shown once, in order; themes,
labels, logout; then time to first render and the PWA shell offline. The homeserver's
own records are checked as well as what each user saw."""

from __future__ import annotations

import gzip
import json
import os

from tests.support.api import API, q
from tests.support.server import inline
from tests.test_web_client import BrowserTestCase

STATIC = os.path.join(os.path.dirname(__file__), "..", "homeserver", "webclient", "static")


def bundle_size() -> tuple[int, int]:
    """Bytes of the client's code and styles (JS, CSS, HTML, manifest), raw and gzipped."""
    raw = zipped = 0
    for folder, _dirs, files in os.walk(STATIC):
        for name in files:
            if name.endswith((".js", ".css", ".html", ".webmanifest")):
                with open(os.path.join(folder, name), "rb") as f:
                    data = f.read()
                raw += len(data)
                zipped += len(gzip.compress(data, 9))
    return raw, zipped


class ChatTests(BrowserTestCase):
    # The scenario sends more than the default burst of ten messages.
    config_overrides = {"limits": {"message_send_per_second": 50.0, "message_send_burst": 100,
                                   "register_burst": 20}}

    @inline
    async def test_two_users_chat_in_two_browsers(self):
        report = await self.run_scenario("chat.mjs", {"base": self.base, "shots": self.screenshot_dir("chat")})
        raw, zipped = bundle_size()
        timings = {k: report.get(k) for k in ("loginPageFirstPaintMs", "firstRenderAfterLoginMs",
                                              "firstMessageAfterLoginMs", "transferredBytes")}
        print("web client:", json.dumps({**timings, "bundleBytes": raw, "bundleGzipBytes": zipped}))

        self.assertTrue(report["bobJoined"])
        self.assertEqual((report["bobSaw"], report["aliceSaw"]), (1, 1))
        self.assertEqual(report["editSeen"], 1)
        self.assertEqual(report["reactionCount"], "1")
        self.assertTrue(report["replyPreview"])
        self.assertTrue(report["threadSeen"])
        self.assertEqual(report["imageWidth"], 16)
        # The private channel: hidden, shown with the role's overwrite, hidden again.
        self.assertEqual(report["bobSeesStaffBefore"], 0)
        self.assertTrue(report["bobSeesStaffWithRole"])
        self.assertEqual(report["bobSeesStaffAfter"], 0)
        self.assertTrue(report["switcher"])
        self.assertTrue(report["dm"])
        # The drop: nothing arrived while offline, then each missed message exactly once,
        # in order, on the same resumed session.
        self.assertEqual(report["bobHadMissedWhileOffline"], 0)
        self.assertEqual(report["missedCounts"], [1, 1, 1])
        self.assertEqual(report["missedOrder"], ["missed one", "missed two", "missed three"])
        self.assertGreaterEqual(report["resumed"], 1)
        self.assertTrue(report["sameSession"])
        self.assertEqual(report["darkTheme"], "dark")
        self.assertTrue(report["acceptedInto"])
        self.assertTrue(report["kickedFromSecond"])
        self.assertTrue(report["typingSeen"])
        # The mention: typed as "@bob…" through autocomplete, sent as his user ID, shown as a
        # pill with his name, lighting the server's badge until he read the channel.
        self.assertRegex(report["mentionTyped"], r"^hey @bob\w+ look here$")
        self.assertEqual(report["serverMentionBadge"], "1")
        self.assertTrue(report["mentionHighlighted"])
        self.assertEqual(report["mentionPill"], "@Bob")
        self.assertGreaterEqual(report["auditEntries"], 3)
        self.assertEqual((report["webhookStatus"], report["webhookAuthor"]), (204, "Deploy bot"))
        self.assertEqual(report["webhookInMemberList"], 0)
        self.assertTrue(report["idleSeen"])
        self.assertTrue(report["onlineAgain"])
        self.assertEqual(report["notification"], {"title": "Alice", "body": "a private hello"})
        self.assertEqual(report["consoleErrorsSoFar"], [], report["httpErrorsSoFar"])
        self.assertEqual(report["pageErrors"], [])
        self.assertEqual(report["jumpBar"], "2 new messages · Jump to unread")
        self.assertEqual(report["newDivider"], 1)
        self.assertTrue(report["categoryOnBobsSide"])
        self.assertTrue(report["tokenRefreshed"])
        self.assertTrue(report["refreshStored"])
        self.assertEqual(report["unlabelled"], [])
        self.assertEqual(report["oldTokenAfterLogout"], 401)
        self.assertTrue(report["sessionCleared"])
        # The PWA shell: a service worker holding the shell, which opens offline.
        self.assertTrue(report["serviceWorker"])
        self.assertTrue(report["manifestLinked"])
        self.assertEqual(report["offlineShellTitle"], "Drocsid")

        # The homeserver's side: what the browsers did is what is stored.
        login = await self.ok("POST", f"{API}/auth/login", {"username": report["alice"], "password": report["password"]},
                              token=None)
        token = login["access_token"]
        server = await self.ok("GET", f"{API}/servers/{q(report['server'])}", token=token)
        names = sorted(c["name"] for c in server["channels"])
        self.assertEqual(names, ["Projects", "general", "roadmap", "staff"])
        by_name = {c["name"]: c for c in server["channels"]}
        self.assertEqual(by_name["roadmap"]["parent_id"], by_name["Projects"]["id"])
        self.assertEqual(by_name["Projects"]["type"], "category")
        self.assertTrue(by_name["staff"]["private"])
        general = next(c["id"] for c in server["channels"] if c["name"] == "general")
        messages = await self.ok("GET", f"{API}/channels/{q(general)}/messages?limit=100", token=token)
        by_text = {m["content"]: m for m in messages}
        self.assertIn("hello bob, edited", by_text)
        self.assertIsNotNone(by_text["hello bob, edited"]["edited_at"])
        self.assertEqual(by_text["hello bob, edited"]["reactions"], [{"key": "👍", "count": 1, "me": False}])
        self.assertEqual(by_text["this is a reply"]["reply_to"], by_text["hello bob, edited"]["id"])
        self.assertEqual([a["content_type"] for a in by_text["look at this"]["attachments"]], ["image/png"])
        threads = await self.ok("GET", f"{API}/channels/{q(general)}/threads", token=token)
        self.assertEqual([(t["name"], t["message_count"]) for t in threads], [("Meetup", 1)])
        mention = next(m for m in messages if m["content"].startswith("hey @"))
        self.assertEqual(len(mention["mentions"]), 1)
        self.assertTrue(mention["mentions"][0].startswith("@bob"))
        texts = [m["content"] for m in reversed(messages)]
        self.assertEqual([t for t in texts if t.startswith("missed ")], ["missed one", "missed two", "missed three"])
        roles = await self.ok("GET", f"{API}/servers/{q(report['server'])}/roles", token=token)
        self.assertIn("Staff", [r["name"] for r in roles])

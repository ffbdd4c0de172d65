"""The reset-password and verify-email pages of the web client in a real browser
(tests/e2e/reset_password.mjs, run as tests/test_web_client.py runs its scenarios)."""

from __future__ import annotations

from tests.support.api import API
from tests.support.server import inline
from tests.test_web_client import PASSWORD, BrowserTestCase


class RecordingMailer:
    name = "recording"

    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    async def send(self, to, subject, text, html=None):
        self.sent.append((to, text))


def token_in(text: str, page: str) -> str:
    return text.split(f"/{page}?token=", 1)[1].split()[0]


class ResetPagesTests(BrowserTestCase):
    @inline
    async def test_forgot_reset_and_verify_pages(self):
        mailer = self.hs.email.mailer = RecordingMailer()
        status, account = await self.request("POST", f"{API}/auth/register",
                                             {"username": "alice", "password": PASSWORD, "email": "alice@example.org"})
        self.assertEqual(status, 200, account)
        await self.hs.email.idle()
        await self.ok("POST", f"{API}/auth/verify-email", {"token": token_in(mailer.sent[-1][1], "verify-email")},
                      token=None)

        shots = self.screenshot_dir("reset-password")
        report = await self.run_scenario("reset_password.mjs", {"base": self.base, "shots": shots, "phase": "forgot",
                                                                "email": "alice@example.org"})
        self.assertEqual(report["pageErrors"], [])
        self.assertEqual(report["navigated"], ["/login"])
        await self.hs.email.idle()
        reset_token = token_in(mailer.sent[-1][1], "reset-password")

        # A fresh address to confirm, through the page.
        await self.ok("PUT", f"{API}/users/@me/email", {"email": "new@example.org", "password": PASSWORD},
                      token=account["access_token"])
        await self.hs.email.idle()
        verify_token = token_in(mailer.sent[-1][1], "verify-email")

        report = await self.run_scenario("reset_password.mjs", {
            "base": self.base, "shots": shots, "phase": "reset", "resetToken": reset_token,
            "verifyToken": verify_token, "newPassword": "brand new password"})
        self.assertEqual(report["pageErrors"], [])
        self.assertEqual(report["addressAfterOpen"], "/reset-password")
        self.assertEqual(report["verifyAddressAfterOpen"], "/verify-email")
        self.assertEqual(report["navigated"], ["/login"])
        self.assertTrue(report["reuseRefused"])
        status, _ = await self.request("POST", f"{API}/auth/login",
                                       {"username": "alice", "password": "brand new password"})
        self.assertEqual(status, 200)
        # The session from registration ended with the reset.
        status, _ = await self.request("GET", f"{API}/users/@me", token=account["access_token"])
        self.assertEqual(status, 401)

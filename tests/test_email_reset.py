"""Password reset and address verification by email (docs/email.md), through both
mailers: a real SMTP exchange with an in-process ESMTP server (twisted.mail), and a
local stand-in for Resend's HTTP API. On SQLite and PostgreSQL.

Mail is sent in the background (the answer must not depend on whether an account
exists); ``hs.email.idle()`` waits until every mail started so far has been handed
over, so the tests wait on that, never on time.
"""

from __future__ import annotations

import email
import hashlib
import re
from email import policy

from twisted.internet import defer, reactor
from twisted.mail import smtp
from twisted.trial import unittest
from zope.interface import implementer

from homeserver.mail import MailError, mask_address
from homeserver.mail.smtp import SmtpMailer
from storage.stores.email_tokens import RESET, VERIFY
from tests.support.api import API, ApiHelpers
from tests.support.appservice import FakeAppService
from tests.support.server import HomeserverTestCase, inline

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a new password, long enough"
_LINK = re.compile(r"http://127\.0\.0\.1/(reset-password|verify-email)\?token=([A-Za-z0-9_\-]+)")


# -- a local SMTP server -------------------------------------------------------------

@implementer(smtp.IMessage)
class _Message:
    def __init__(self, box: list, sender: str, recipient: str):
        self._box, self._sender, self._recipient = box, sender, recipient
        self._lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self._lines.append(line)

    def eomReceived(self):
        self._box.append({"from": self._sender, "to": self._recipient, "data": b"\n".join(self._lines)})
        return defer.succeed(None)

    def connectionLost(self) -> None:
        self._lines = []


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, box: list):
        self._box = box

    def receivedHeader(self, helo, origin, recipients):
        return b"Received: from " + (helo[0] or b"?") + b" by the test server"

    def validateFrom(self, helo, origin):
        return origin

    def validateTo(self, user):
        return lambda: _Message(self._box, str(user.orig), str(user.dest))


class FakeSmtpServer(smtp.SMTPFactory):
    """An ESMTP server on 127.0.0.1 that keeps every message (no STARTTLS, no AUTH)."""
    protocol = smtp.ESMTP

    def __init__(self):
        super().__init__()
        self.messages: list[dict] = []
        self._port = reactor.listenTCP(0, self, interface="127.0.0.1")
        self.port = self._port.getHost().port

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        protocol.delivery = _Delivery(self.messages)
        return protocol

    def stop(self):
        return self._port.stopListening()

    def mails(self) -> list[dict]:
        found = []
        for message in self.messages:
            parsed = email.message_from_bytes(message["data"], policy=policy.default)
            html = parsed.get_body(("html",))
            found.append({"to": message["to"], "from": parsed["From"], "subject": parsed["Subject"],
                          "text": parsed.get_body(("plain",)).get_content(),
                          "html": html.get_content() if html is not None else None})
        return found


class FakeResend(FakeAppService):
    def __init__(self):
        super().__init__()

        async def accept(path, body):
            return 200, {"id": f"email-{len(self.requests)}"}
        self.handlers["/emails"] = accept

    def mails(self) -> list[dict]:
        return [{"to": r["body"]["to"][0], "from": r["body"]["from"], "subject": r["body"]["subject"],
                 "text": r["body"]["text"], "html": r["body"].get("html")}
                for r in self.requests if r["method"] == "POST" and r["path"] == "/emails"]


# -- the tests, for either mailer ----------------------------------------------------

class EmailFlowTests(ApiHelpers):
    def mails(self, kind: str | None = None, to: str | None = None) -> list[dict]:
        found = []
        for mail in self.outbox.mails():
            links = _LINK.findall(mail["text"])
            self.assertEqual(len(links), 1, mail["text"])
            page, token = links[0]
            # The HTML alternative carries the same link.
            self.assertIn(f"/{page}?token={token}", mail["html"])
            mail = {**mail, "page": page, "token": token}
            if (kind is None or page == kind) and (to is None or mail["to"] == to):
                found.append(mail)
        return found

    async def api_register(self, name: str, address: str | None = None) -> dict:
        body = {"username": name, "password": PASSWORD}
        if address is not None:
            body["email"] = address
        status, answer = await self.request("POST", f"{API}/auth/register", body)
        self.assertEqual(status, 200, answer)
        return answer

    async def api_login(self, name: str, password: str = PASSWORD):
        return await self.request("POST", f"{API}/auth/login", {"username": name, "password": password})

    async def verified_user(self, name: str, address: str) -> dict:
        """Register with ``address``, then follow the mailed verification link."""
        account = await self.api_register(name, address)
        await self.hs.email.idle()
        mails = self.mails("verify-email", address.lower())
        self.assertEqual(len(mails), 1)
        await self.ok("POST", f"{API}/auth/verify-email", {"token": mails[0]["token"]}, token=None)
        return account

    async def forgot(self, address: str):
        result = await self.request("POST", f"{API}/auth/forgot-password", {"email": address})
        await self.hs.email.idle()
        return result

    async def reset(self, token: str, password: str = NEW_PASSWORD):
        return await self.request("POST", f"{API}/auth/reset-password", {"token": token, "password": password})

    async def reset_token(self, address: str) -> str:
        self.assertEqual(await self.forgot(address), (202, {}))
        return self.mails("reset-password", address)[-1]["token"]

    @inline
    async def test_reset_link_sets_the_password_once_and_ends_every_session(self):
        account = await self.verified_user("alice", "Alice@Example.org")
        user_id = account["user"]["id"]
        status, second = await self.api_login("alice")
        self.assertEqual(status, 200, second)
        self.assertEqual(await self.forgot("alice@example.ORG"), (202, {}))
        [mail] = self.mails("reset-password")
        self.assertEqual(mail["to"], "alice@example.org")
        self.assertIn("Drocsid <noreply@test.local>", mail["from"])
        self.assertIn("password", mail["subject"].lower())
        token = mail["token"]
        # Only the hash is stored.
        [row] = [r for r in await self.hs.email.store.token_rows(user_id) if r[1] == RESET]
        self.assertNotEqual(row[0], token)
        self.assertEqual(row[0], hashlib.sha256(token.encode()).hexdigest())
        self.assertNotIn(token, repr(row))
        # A weak password is refused before the token is used.
        self.assertMatrixError(await self.reset(token, "short"), 400, "M_WEAK_PASSWORD")
        self.assertEqual(await self.reset(token), (200, {}))
        # Every session ended: access tokens and refresh tokens.
        for session in (account, second):
            self.assertMatrixError(await self.request("GET", f"{API}/users/@me", token=session["access_token"]),
                                   401, "M_UNKNOWN_TOKEN")
            self.assertMatrixError(await self.request("POST", f"{API}/auth/refresh",
                                                      {"refresh_token": session["refresh_token"]}),
                                   401, "M_UNKNOWN_TOKEN")
        self.assertEqual(await self.hs.devices.get_devices(user_id), [])
        self.assertMatrixError(await self.api_login("alice"), 403, "M_FORBIDDEN")
        status, fresh = await self.api_login("alice", NEW_PASSWORD)
        self.assertEqual(status, 200, fresh)
        await self.ok("GET", f"{API}/users/@me", token=fresh["access_token"])
        # The link worked once.
        self.assertMatrixError(await self.reset(token, "yet another password"), 400, "M_INVALID_PARAM")
        self.assertMatrixError(await self.api_login("alice", "yet another password"), 403, "M_FORBIDDEN")

    @inline
    async def test_unknown_and_unverified_addresses_get_the_same_answer_and_no_mail(self):
        await self.verified_user("alice", "alice@example.org")
        await self.api_register("bob", "bob@example.org")  # never verified
        await self.hs.email.idle()
        before = len(self.outbox.mails())
        known = await self.forgot("alice@example.org")
        unknown = await self.forgot("nobody@example.org")
        unverified = await self.forgot("bob@example.org")
        self.assertEqual(known, (202, {}))
        self.assertEqual(unknown, known)
        self.assertEqual(unverified, known)
        self.assertEqual([m["to"] for m in self.outbox.mails()[before:]], ["alice@example.org"])
        # A malformed address is the only other answer.
        self.assertMatrixError(await self.forgot("not an address"), 400, "M_INVALID_PARAM")

    @inline
    async def test_an_expired_link_is_refused(self):
        await self.verified_user("alice", "alice@example.org")
        token = await self.reset_token("alice@example.org")
        clock = self.hs.clock
        later = clock.time_ms() + self.hs.config.email.reset_token_ttl_secs * 1000 + 1
        clock.time_ms = lambda: later  # the server's clock, past the token's lifetime
        try:
            self.assertMatrixError(await self.reset(token), 400, "M_INVALID_PARAM")
        finally:
            del clock.time_ms
        self.assertMatrixError(await self.api_login("alice", NEW_PASSWORD), 403, "M_FORBIDDEN")
        # Within its lifetime the same token works: only the time refused it.
        self.assertEqual(await self.reset(token), (200, {}))

    @inline
    async def test_a_new_link_retires_the_older_and_only_one_of_two_racing_resets_wins(self):
        await self.verified_user("alice", "alice@example.org")
        first = await self.reset_token("alice@example.org")
        second = await self.reset_token("alice@example.org")
        self.assertNotEqual(first, second)
        self.assertMatrixError(await self.reset(first), 400, "M_INVALID_PARAM")
        results = await defer.gatherResults([defer.ensureDeferred(self.reset(second, f"racing password {i}"))
                                             for i in range(4)])
        self.assertEqual(sorted(status for status, _ in results), [200, 400, 400, 400], results)
        winner = [i for i, (status, _) in enumerate(results) if status == 200][0]
        status, _ = await self.api_login("alice", f"racing password {winner}")
        self.assertEqual(status, 200)

    @inline
    async def test_a_reset_retires_every_other_reset_link(self):
        account = await self.verified_user("alice", "alice@example.org")
        token = await self.reset_token("alice@example.org")
        # A second outstanding link (the API retires older links when it makes a new one,
        # so this one is stored directly).
        other = "another-outstanding-token"
        now = self.hs.clock.time_ms()
        await self.hs.db.run_interaction("insert", lambda txn: txn.execute(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, address, created_ts, expires_ts)"
            " VALUES (?, ?, 'reset', ?, ?, ?)", (hashlib.sha256(other.encode()).hexdigest(),
                                                 account["user"]["id"], "alice@example.org", now, now + 600_000)))
        self.assertEqual(await self.reset(token), (200, {}))
        self.assertMatrixError(await self.reset(other, "yet another password"), 400, "M_INVALID_PARAM")

    @inline
    async def test_setting_and_verifying_an_address(self):
        account = await self.api_register("alice")
        token = account["access_token"]
        self.assertEqual(await self.ok("GET", f"{API}/users/@me/email", token=token),
                         {"email": None, "verified": False})
        self.assertMatrixError(await self.request("PUT", f"{API}/users/@me/email",
                                                  {"email": "a@example.org", "password": "wrong password"},
                                                  token=token), 403, "M_FORBIDDEN")
        answer = await self.ok("PUT", f"{API}/users/@me/email", {"email": "A@example.org", "password": PASSWORD},
                               token=token)
        self.assertEqual(answer, {"email": "a@example.org", "verified": False})
        await self.hs.email.idle()
        [mail] = self.mails("verify-email", "a@example.org")
        # Unverified: no reset mail yet.
        await self.forgot("a@example.org")
        self.assertEqual(self.mails("reset-password"), [])
        self.assertEqual(await self.ok("POST", f"{API}/auth/verify-email", {"token": mail["token"]}, token=None), {})
        self.assertEqual(await self.ok("GET", f"{API}/users/@me/email", token=token),
                         {"email": "a@example.org", "verified": True})
        self.assertMatrixError(await self.request("POST", f"{API}/auth/verify-email", {"token": mail["token"]}),
                               400, "M_INVALID_PARAM")
        # Another account may type the address in, but cannot verify it: it is alice's.
        bob = await self.api_register("bob", "a@example.org")
        await self.hs.email.idle()
        bob_mail = self.mails("verify-email", "a@example.org")[-1]
        self.assertNotEqual(bob_mail["token"], mail["token"])
        self.assertMatrixError(await self.request("POST", f"{API}/auth/verify-email",
                                                  {"token": bob_mail["token"]}), 400, "M_THREEPID_IN_USE")
        self.assertEqual(await self.ok("GET", f"{API}/users/@me/email", token=bob["access_token"]),
                         {"email": "a@example.org", "verified": False})
        # The reset mail goes to alice's account.
        token_for = await self.reset_token("a@example.org")
        self.assertEqual(await self.reset(token_for), (200, {}))
        status, _ = await self.api_login("alice", NEW_PASSWORD)
        self.assertEqual(status, 200)
        # A changed address is unverified again, and the old link for it is dead.
        status, fresh = await self.api_login("alice", NEW_PASSWORD)
        await self.ok("PUT", f"{API}/users/@me/email", {"email": "b@example.org", "password": NEW_PASSWORD},
                      token=fresh["access_token"])
        self.assertEqual(await self.ok("GET", f"{API}/users/@me/email", token=fresh["access_token"]),
                         {"email": "b@example.org", "verified": False})

    @inline
    async def test_requests_for_one_address_are_rate_limited(self):
        for _ in range(10):
            self.assertEqual(await self.forgot("nobody@example.org"), (202, {}))
        self.assertMatrixError(await self.forgot("nobody@example.org"), 429, "M_LIMIT_EXCEEDED")
        self.assertEqual(await self.forgot("someone.else@example.org"), (202, {}))


class SmtpCase(HomeserverTestCase):
    @inline
    async def setUp(self):
        self.outbox = FakeSmtpServer()
        self.addCleanup(self.outbox.stop)
        self.config_overrides = {"email": {"smtp_host": "127.0.0.1", "smtp_port": self.outbox.port,
                                           "smtp_starttls": False, "from_address": "Drocsid <noreply@test.local>"}}
        await super().setUp()
        self.assertEqual(self.hs.email.mailer.name, "smtp")


class ResendCase(HomeserverTestCase):
    @inline
    async def setUp(self):
        self.outbox = FakeResend()
        self.outbox.start()
        self.addCleanup(lambda: defer.ensureDeferred(self.outbox.stop()))
        # An SMTP host too: the Resend key wins.
        self.config_overrides = {"email": {"resend_api_key": "re_test_key", "resend_base_url": self.outbox.url,
                                           "smtp_host": "127.0.0.1", "smtp_port": 9,
                                           "from_address": "Drocsid <noreply@test.local>"}}
        await super().setUp()
        self.assertEqual(self.hs.email.mailer.name, "resend")


class ResendTests(EmailFlowTests):
    @inline
    async def test_resend_gets_the_key_and_json(self):
        await self.verified_user("alice", "alice@example.org")
        await self.forgot("alice@example.org")
        posts = [r for r in self.outbox.requests if r["path"] == "/emails"]
        self.assertEqual(len(posts), 2)  # verification, then reset
        for post in posts:
            self.assertEqual(post["method"], "POST")
            self.assertEqual(post["auth"], b"Bearer re_test_key")
            self.assertEqual(post["body"]["to"], ["alice@example.org"])
            self.assertEqual(post["body"]["from"], "Drocsid <noreply@test.local>")


class SmtpSqliteTests(EmailFlowTests, SmtpCase):
    engine = "sqlite"


class SmtpPostgresTests(EmailFlowTests, SmtpCase):
    engine = "postgres"


class ResendSqliteTests(ResendTests, ResendCase):
    engine = "sqlite"


class ResendPostgresTests(ResendTests, ResendCase):
    engine = "postgres"


class MailDisabledTests(ApiHelpers, HomeserverTestCase):
    @inline
    async def test_without_a_mailer_requests_answer_the_same(self):
        self.assertIsNone(self.hs.email.mailer)
        status, account = await self.request("POST", f"{API}/auth/register",
                                             {"username": "alice", "password": PASSWORD, "email": "a@example.org"})
        self.assertEqual(status, 200, account)
        self.assertEqual(await self.request("POST", f"{API}/auth/forgot-password", {"email": "a@example.org"}),
                         (202, {}))
        await self.hs.email.idle()
        self.assertEqual(await self.ok("GET", f"{API}/users/@me/email", token=account["access_token"]),
                         {"email": "a@example.org", "verified": False})
        rows = await self.hs.email.store.token_rows(account["user"]["id"])
        self.assertEqual([r[1] for r in rows], [VERIFY])


class SmtpMailerTests(unittest.TestCase):
    def setUp(self):
        self.server = FakeSmtpServer()
        self.addCleanup(self.server.stop)

    @inline
    async def test_starttls_is_required_when_configured(self):
        # The test server offers no STARTTLS: nothing may be sent in the clear.
        mailer = SmtpMailer(reactor, "127.0.0.1", self.server.port, "noreply@test.local", starttls=True)
        with self.assertRaises(MailError):
            await mailer.send("alice@example.org", "subject", "text")
        self.assertEqual(self.server.messages, [])

    @inline
    async def test_auth_is_required_when_a_user_is_configured(self):
        mailer = SmtpMailer(reactor, "127.0.0.1", self.server.port, "noreply@test.local", starttls=False,
                            user="mailer", password="secret")
        with self.assertRaises(MailError) as caught:
            await mailer.send("alice@example.org", "subject", "text")
        self.assertNotIn("secret", str(caught.exception))
        self.assertEqual(self.server.messages, [])

    @inline
    async def test_plain_session_delivers_text_and_html(self):
        mailer = SmtpMailer(reactor, "127.0.0.1", self.server.port, "noreply@test.local", starttls=False)
        await mailer.send("alice@example.org", "Hello", "plain body", "<p>html body</p>")
        [mail] = self.server.mails()
        self.assertEqual((mail["to"], mail["subject"]), ("alice@example.org", "Hello"))
        self.assertEqual(mail["text"].strip(), "plain body")
        self.assertIn("<p>html body</p>", mail["html"])

    def test_addresses_are_masked_in_logs(self):
        self.assertEqual(mask_address("alice@example.org"), "a***@example.org")

"""SMTP through Twisted's ESMTP client (``twisted.mail.smtp.ESMTPSenderFactory``).

With ``email.smtp_starttls`` on, the session must be upgraded with STARTTLS and the
relay's certificate must match ``smtp_host``, or nothing is sent; off, the session
stays in the clear (a relay on the same host). AUTH is used, and required, when
``smtp_user`` is set.
"""

from __future__ import annotations

import io
from email.utils import parseaddr

from twisted.internet import defer
from twisted.internet.ssl import optionsForClientTLS
from twisted.mail import smtp

from homeserver.mail import MailError
from homeserver.mail.message import build_message

TIMEOUT_SECS = 30
CLOSE_GRACE_SECS = 5


class SmtpMailer:
    name = "smtp"

    def __init__(self, reactor, host: str, port: int, from_address: str, *, user: str = "", password: str = "",
                 starttls: bool = True, helo_name: str = "localhost"):
        self._reactor = reactor
        self._host, self._port = host, port
        self._from = from_address
        self._user, self._password = user, password
        self._starttls = starttls
        self._helo_name = helo_name

    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        message = build_message(self._from, to, subject, text, html, domain=self._helo_name)
        done = defer.Deferred()
        factory = _SenderFactory(
            self._user.encode() if self._user else None,
            self._password.encode() if self._user else None,
            parseaddr(self._from)[1], [to], io.BytesIO(message), done, retries=0, timeout=TIMEOUT_SECS,
            contextFactory=optionsForClientTLS(self._host) if self._starttls else None,
            requireAuthentication=bool(self._user), requireTransportSecurity=self._starttls,
            hostname=self._host if self._starttls else None)
        factory.domain = self._helo_name.encode("ascii", "ignore") or b"localhost"
        connector = self._reactor.connectTCP(self._host, self._port, factory, timeout=TIMEOUT_SECS)
        try:
            await done
        except smtp.SMTPClientError as error:
            # The relay's reply code says what went wrong; its text may quote the address.
            raise MailError(f"SMTP relay refused the message (code {error.code})")
        except Exception as error:
            raise MailError(f"SMTP relay could not be reached ({type(error).__name__})")
        finally:
            await self._closed(factory, connector)

    async def _closed(self, factory: "_SenderFactory", connector) -> None:
        """Return once the session is gone (the client QUITs on success and on refusals);
        a relay that does not hang up in time is cut off."""
        if factory.closed.called:
            return
        cut = self._reactor.callLater(CLOSE_GRACE_SECS, connector.disconnect)
        try:
            await factory.closed
        finally:
            if cut.active():
                cut.cancel()


class _SenderFactory(smtp.ESMTPSenderFactory):
    """Twisted's sender, telling when its connection has closed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.closed = defer.Deferred()

    def clientConnectionFailed(self, connector, reason):
        super().clientConnectionFailed(connector, reason)
        self._close()

    def clientConnectionLost(self, connector, reason):
        super().clientConnectionLost(connector, reason)
        self._close()

    def _close(self) -> None:
        if not self.closed.called:
            self.closed.callback(None)

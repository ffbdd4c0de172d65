"""Outgoing mail: one small interface, two transports (SMTP and Resend's HTTP API),
chosen from the ``email`` section of the configuration.

``build_mailer(config)`` answers a Resend mailer when ``email.resend_api_key`` is set,
else an SMTP mailer when ``email.smtp_host`` is set, else None (mail is disabled).
"""

from __future__ import annotations

from typing import Protocol


class MailError(Exception):
    """The message could not be handed over. The text never holds addresses or secrets."""


class Mailer(Protocol):
    name: str

    async def send(self, to: str, subject: str, text: str, html: str | None = None) -> None:
        """Hand one message to the transport; raises MailError when that fails."""


def mask_address(address: str) -> str:
    """An address as it may appear in a log: enough to tell mails apart, not to read it."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def build_mailer(config, reactor) -> Mailer | None:
    email = config.email
    host = config.server_name.split(":")[0]
    sender = email.from_address or f"noreply@{host}"
    if email.resend_api_key:
        from homeserver.mail.resend import ResendMailer
        return ResendMailer(email.resend_base_url, email.resend_api_key, sender)
    if email.smtp_host:
        from homeserver.mail.smtp import SmtpMailer
        return SmtpMailer(reactor, email.smtp_host, email.smtp_port, sender, user=email.smtp_user,
                          password=email.smtp_password, starttls=email.smtp_starttls, helo_name=host)
    return None

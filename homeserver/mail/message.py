"""A MIME message from a subject, a plain-text body and an optional HTML alternative."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from email import policy


def build_message(from_address: str, to: str, subject: str, text: str, html: str | None,
                  domain: str = "localhost") -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = from_address
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=domain or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()

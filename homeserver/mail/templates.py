"""The mails the server sends: subject, plain text and simple HTML. Pure functions."""

from __future__ import annotations

from html import escape
from urllib.parse import quote


def link(public_baseurl: str, page: str, token: str) -> str:
    return f"{public_baseurl.rstrip('/')}/{page}?token={quote(token, safe='')}"


def _html(paragraphs: list[str], url: str, button: str) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return ("<!doctype html><html><body style=\"font-family: sans-serif; line-height: 1.5\">"
            f"{body}<p><a href=\"{escape(url, quote=True)}\">{escape(button)}</a></p>"
            f"<p style=\"color: #666; font-size: 0.9em\">{escape(url)}</p></body></html>")


def reset_mail(instance_name: str, url: str, ttl_secs: int) -> tuple[str, str, str]:
    minutes = max(1, ttl_secs // 60)
    subject = f"Reset your {instance_name} password"
    lines = [f"Someone asked to reset the password of your {instance_name} account.",
             f"The link works once, within {minutes} minutes. Resetting logs out every session.",
             "If it was not you, ignore this mail: your password stays as it is."]
    text = "\n\n".join([lines[0], f"Choose a new password: {url}", *lines[1:]]) + "\n"
    return subject, text, _html(lines, url, "Choose a new password")


def verify_mail(instance_name: str, url: str) -> tuple[str, str, str]:
    subject = f"Confirm your email address for {instance_name}"
    lines = [f"This address was given for a {instance_name} account.",
             "Confirming it lets you reset your password by email.",
             "If it was not you, ignore this mail."]
    text = "\n\n".join([lines[0], f"Confirm it: {url}", *lines[1:]]) + "\n"
    return subject, text, _html(lines, url, "Confirm this address")

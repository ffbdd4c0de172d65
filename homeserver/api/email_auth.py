"""Password reset and email verification (issue 9): see homeserver/mail/."""

from __future__ import annotations


def register(api, hs) -> None:
    """No routes yet."""

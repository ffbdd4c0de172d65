"""GIF search through the server (issue 9): see homeserver/gif/."""

from __future__ import annotations


def register(api, hs) -> None:
    """No routes yet."""

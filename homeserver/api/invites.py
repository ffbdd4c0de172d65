"""/api/v1 routes: invites (being written)."""

from __future__ import annotations


def register(api, hs) -> None:
    pass

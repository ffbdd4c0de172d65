"""/api/v1 routes: moderation (being written)."""

from __future__ import annotations


def register(api, hs) -> None:
    pass

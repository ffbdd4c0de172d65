"""/api/v1 routes: channel_activity (being written)."""

from __future__ import annotations


def register(api, hs) -> None:
    pass
